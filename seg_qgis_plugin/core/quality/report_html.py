"""HTML reports for `seg qa` and `seg agreement`: one self-contained file (images embedded as
base64 PNG) with the counts, a per-class table, histograms of score and IoU, and thumbnails of the
worst cases cut from a raster when one is given.

Histograms and thumbnails need matplotlib (drawn with its Agg backend, no display); without it
the report still has every table and says what is missing. Thumbnails read one small decimated
window each (RasterSource), stretched with the raster's global radiometry.
"""
from __future__ import annotations

import base64
import html
import io
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import OutputError
from ..outputs.atomic import write_text_atomic
from .table import LabelTable, to_crs

THUMBNAILS = 12
THUMB_PIXELS = 220
SEVERITY = {"invalid": 0, "overlap": 1, "gap": 2, "sliver": 3, "duplicate": 4, "area_outlier": 5, "hole": 6,
            "missing_attribute": 7, "empty": 8}
CSS = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
       "td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}"
       ".grid{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0;width:240px;font-size:.8em}.note{color:#777}")


def qa_html(doc: dict, table: LabelTable, findings: Sequence, path: str, raster: Optional[str] = None,
            class_field: Optional[str] = "class", score_field: str = "score", overwrite: bool = False) -> str:
    """The QA report for `doc` (qa.report's document) over `table` and its `findings`."""
    classes = _texts(table.column(class_field), len(table))
    class_of = dict(zip(table.fids.tolist(), classes))
    kinds = list(doc["counts"])
    per_class: Dict[str, Dict[str, int]] = {}
    for name in classes:
        per_class.setdefault(name, {"labels": 0, **{k: 0 for k in kinds}})["labels"] += 1
    for f in findings:
        for name in {class_of[fid] for fid in f.fids}:
            per_class[name][f.kind] += 1
    parts = [f"<h1>Label QA</h1><p>{doc['labels']} labels, {len(findings)} findings.</p>",
             _table(["kind", "findings"], [[k, n] for k, n in doc["counts"].items()]),
             "<h2>Per class</h2>", _table(["class", "labels"] + kinds, [[c] + list(v.values()) for c, v in sorted(per_class.items())])]
    scores = _numbers(table.column(score_field))
    flagged = {fid for f in findings for fid in f.fids}
    flagged_scores = _numbers([s for s, fid in zip(table.column(score_field) or [], table.fids.tolist()) if fid in flagged])
    parts.append("<h2>Score</h2>" + _histogram([scores, flagged_scores], ["all labels", "labels with findings"], score_field,
                                               "no score field" if not len(scores) else None))
    worst = sorted((f for f in findings if f.geometry is not None),
                   key=lambda f: (SEVERITY.get(f.kind, 9), f.value if f.kind == "sliver" else -abs(f.value)))
    picked = _spread(worst, THUMBNAILS)
    geometry_of = dict(zip(table.fids.tolist(), table.geometries))
    items = [(f"{f.kind} {','.join(map(str, f.fids))}: {f.detail}", [f.geometry], [geometry_of[fid] for fid in f.fids])
             for f in picked]
    parts.append("<h2>Worst cases</h2><p class=note>The finding in blue, the labels involved in orange.</p>"
                 + _thumbnails(raster, table.crs, items))
    parts.append(f"<h2>Tolerances</h2>{_table(['tolerance', 'value'], [[k, v] for k, v in doc.get('tolerances', {}).items()])}")
    return _write(path, "Seg label QA", parts, overwrite)


def agreement_html(result, path: str, raster: Optional[str] = None, class_field: Optional[str] = "class",
                   score_field: str = "score", overwrite: bool = False) -> str:
    """The agreement report for an agreement.Agreement."""
    s = result.summary
    keys = ["objects_a", "objects_b", "matched", "precision", "recall", "f1", "mean_iou", "dice", "kappa", "boundary_iou"]
    parts = ["<h1>Agreement</h1><p>A is the reference; B is compared with it.</p>",
             _table(["measure", "value"], [[k, _fmt(s.get(k))] for k in keys])]
    if "classes" in s:
        parts += ["<h2>Per class</h2>", _table(["class"] + keys, [[c] + [_fmt(v.get(k)) for k in keys] for c, v in s["classes"].items()])]
    m = result.matching
    parts.append("<h2>IoU</h2>" + _histogram([m.best_a, m.iou], ["best IoU of each A object", "matched pairs"], "IoU", None,
                                             (0.0, 1.0)))
    scores = _numbers(result.b.column(score_field))
    if len(scores):
        parts.append("<h2>Score of B</h2>" + _histogram([scores], ["B"], score_field, None))
    missed = sorted(set(range(len(result.a))) - set(m.a.tolist()), key=lambda k: m.best_a[k])
    extra = sorted(set(range(len(result.b))) - set(m.b.tolist()), key=lambda k: m.best_b[k])
    weakest = np.argsort(m.iou)[: THUMBNAILS // 3]
    items = [(f"A {result.a.fids[k]} missed (best IoU {m.best_a[k]:.2f})", [result.a.geometries[k]], []) for k in missed[:4]]
    items += [(f"B {result.b.fids[k]} extra (best IoU {m.best_b[k]:.2f})", [], [result.b.geometries[k]]) for k in extra[:4]]
    items += [(f"A {result.a.fids[m.a[k]]} / B {result.b.fids[m.b[k]]}: IoU {m.iou[k]:.2f}",
               [result.a.geometries[m.a[k]]], [result.b.geometries[m.b[k]]]) for k in weakest]
    parts.append("<h2>Worst cases</h2><p class=note>A in blue, B in orange.</p>" + _thumbnails(raster, result.a.crs, items))
    return _write(path, "Seg agreement", parts, overwrite)


def _spread(findings: List, count: int) -> List:
    """Up to `count` findings, the worst of each kind first, then the next worst of each, ..."""
    by_kind: Dict[str, List] = {}
    for f in findings:
        by_kind.setdefault(f.kind, []).append(f)
    out, depth = [], 0
    while len(out) < count and any(len(v) > depth for v in by_kind.values()):
        out += [v[depth] for v in by_kind.values() if len(v) > depth][: count - len(out)]
        depth += 1
    return out


def _histogram(series: Sequence, names: Sequence[str], xlabel: str, missing: Optional[str],
               limits: Optional[Tuple[float, float]] = None) -> str:
    if missing:
        return f"<p class=note>{html.escape(missing)}.</p>"
    plt = _pyplot()
    if plt is None:
        return "<p class=note>Histograms need matplotlib (pip install matplotlib).</p>"
    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=90)
    values = [np.asarray(v, float) for v in series]
    lo, hi = limits or (min((v.min() for v in values if len(v)), default=0.0), max((v.max() for v in values if len(v)), default=1.0))
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 26)
    for v, name in zip(values, names):
        if len(v):
            ax.hist(v, bins=bins, alpha=0.6, label=f"{name} ({len(v)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return f"<img alt='{html.escape(xlabel)} histogram' src='data:image/png;base64,{_png(fig, plt)}'>"


def _thumbnails(raster: Optional[str], crs: str, items: List[Tuple[str, list, list]]) -> str:
    """Figures of the raster around each item's geometries (A outlines blue, B orange)."""
    if not items:
        return "<p class=note>Nothing to show.</p>"
    if not raster:
        return "<p class=note>Give a raster (--raster) to see thumbnails.</p>"
    plt = _pyplot()
    if plt is None:
        return "<p class=note>Thumbnails need matplotlib (pip install matplotlib).</p>"
    from ..geo.radiometry import compute_radiometry
    from ..geo.raster import RasterSource

    figures = []
    with RasterSource(raster) as src:
        radiometry = compute_radiometry(src)
        wkt = src.crs.to_wkt()
        for caption, a, b in items:
            image, shapes = _cut(src, radiometry, [to_crs(np.asarray(g, dtype=object), crs, wkt) for g in (a, b)])
            if image is None:
                continue
            fig, ax = plt.subplots(figsize=(2.6, 2.6), dpi=90)
            ax.imshow(image, extent=(0, image.shape[1], image.shape[0], 0))
            for outlines, color in reversed(list(zip(shapes, ("#1f77ff", "#ff8c00")))):  # the first group on top
                for x, y in outlines:
                    ax.plot(x, y, color=color, linewidth=1.4)
            ax.set_axis_off()
            fig.tight_layout(pad=0)
            figures.append(f"<figure><img src='data:image/png;base64,{_png(fig, plt)}'><figcaption>{html.escape(caption)}"
                           "</figcaption></figure>")
    if not figures:
        return "<p class=note>No worst case lies on the raster.</p>"
    return "<div class=grid>" + "".join(figures) + "</div>"


def _cut(src, radiometry, groups):
    """(uint8 image (h, w, 3), per group the outlines as (x, y) in image pixels) or (None, None)."""
    import shapely

    geoms = [g for group in groups for g in group if g is not None and not g.is_empty]
    if not geoms:
        return None, None
    x0, y0, x1, y1 = shapely.total_bounds(np.asarray(geoms, dtype=object))
    inverse = ~src.transform
    cols, rows = zip(*(inverse * (x, y) for x in (x0, x1) for y in (y0, y1)))
    half = max(8.0, 0.65 * max(max(cols) - min(cols), max(rows) - min(rows)))  # a square with a margin
    cx, cy = (min(cols) + max(cols)) / 2, (min(rows) + max(rows)) / 2
    c0, r0 = max(0, int(math.floor(cx - half))), max(0, int(math.floor(cy - half)))
    c1, r1 = min(src.width, int(math.ceil(cx + half))), min(src.height, int(math.ceil(cy + half)))
    if c1 <= c0 or r1 <= r0:
        return None, None
    scale = max(1.0, max(c1 - c0, r1 - r0) / THUMB_PIXELS)
    shape = (max(1, round((r1 - r0) / scale)), max(1, round((c1 - c0) / scale)))
    data, valid = src.read(radiometry.bands, (c0, r0, c1 - c0, r1 - r0), out_shape=shape)
    image = radiometry.apply(data, valid)
    sx, sy = shape[1] / (c1 - c0), shape[0] / (r1 - r0)
    outlines = []
    for group in groups:
        lines = []
        for g in group:
            if g is None or g.is_empty:
                continue
            for ring in shapely.get_rings(shapely.get_parts(g)):
                xy = np.asarray(ring.coords)
                col, row = inverse * (xy[:, 0], xy[:, 1])
                lines.append(((np.asarray(col) - c0) * sx, (np.asarray(row) - r0) * sy))
        outlines.append(lines)
    return image, outlines


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _png(fig, plt) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _write(path: str, title: str, parts: Sequence[str], overwrite: bool) -> str:
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        raise OutputError(f"{path} already exists; choose another name or overwrite it.")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise OutputError(f"The folder {folder} does not exist.")
    page = (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style>"
            f"</head><body>{''.join(parts)}</body></html>\n")
    return write_text_atomic(path, page)  # also held back by publish.outputs_together


def _numbers(values) -> np.ndarray:
    if not values:
        return np.zeros(0)
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if not math.isnan(f):
            out.append(f)
    return np.asarray(out)


def _texts(values, n: int) -> List[str]:
    return ["(none)" if v is None or str(v).strip() == "" else str(v) for v in (values or [None] * n)]


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

