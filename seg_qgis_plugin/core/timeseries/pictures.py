"""Small PNG pictures of a drift map and of a change report, for people who would rather look
than read a table. Drawn with OpenCV (no plotting library), written atomically."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from .change import COLOURS, ChangeReport
from .drift import DriftResult

PANEL = 360   # longer side of one panel, pixels
TITLE = 42    # title band height (two lines), pixels


def drift_png(result: DriftResult, reference: str, path: str) -> str:
    """One panel per consecutive pair: the earliest raster in grey, each tile coloured by its drift
    over its pair's threshold (dark blue 0 .. yellow at the largest ratio, at least 2), flagged
    tiles outlined in red; a colour bar below. Returns `path`."""
    import cv2

    from ..geo.radiometry import compute_radiometry
    from ..geo.raster import RasterSource

    with RasterSource(reference) as src:
        radiometry = compute_radiometry(src)
        factor = max(src.width, src.height) / PANEL
        shape = (max(1, round(src.height / factor)), max(1, round(src.width / factor)))
        data, valid = src.read(radiometry.bands, (0, 0, src.width, src.height), out_shape=shape)
        inverse = ~src.transform
    grey = cv2.cvtColor(radiometry.apply(data, valid), cv2.COLOR_RGB2GRAY)
    base = cv2.cvtColor((grey * 0.6).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    top = max([t.attributes["drift_ratio"] for t in result.tiles] + [2.0])
    panels = []
    for pair in result.summary["pairs"]:
        layer, edges = base.copy(), []
        for t in result.tiles:
            if (t.attributes["date_from"], t.attributes["date_to"]) != (pair["date_from"], pair["date_to"]):
                continue
            x0, y0, x1, y1 = t.geometry.bounds
            c0, r1 = inverse * (x0, y0)
            c1, r0 = inverse * (x1, y1)
            p0 = (int(round(min(c0, c1) / factor)), int(round(min(r0, r1) / factor)))
            p1 = (int(round(max(c0, c1) / factor)) - 1, int(round(max(r0, r1) / factor)) - 1)
            colour = _colour(t.attributes["drift_ratio"] / top)
            cv2.rectangle(layer, p0, p1, colour, -1)
            if t.attributes["flagged"]:
                edges.append((p0, p1))
        panel = cv2.addWeighted(layer, 0.55, base, 0.45, 0)
        for p0, p1 in edges:
            cv2.rectangle(panel, p0, p1, (40, 40, 230), 2)
        mean = "no data" if pair["mean"] is None else f"{pair['flagged']} flagged above {pair['threshold']:.3f}"
        panels.append(_titled(panel, f"{pair['date_from']} > {pair['date_to']}", mean))
    picture = np.vstack([_row(panels), _colour_bar(_row(panels).shape[1], top)])
    return _write_png(picture, path)


def change_png(report: ChangeReport, path: str) -> str:
    """One panel per consecutive pair: gained areas green, lost areas red, uncertain grey, on the
    extent of all changes, with the areas in the title. Returns `path`."""
    from rasterio.features import rasterize
    from rasterio.transform import from_bounds
    from shapely import union_all

    geometries = [c.geometry for c in report.changes]
    if not geometries:
        extent = (0.0, 0.0, 1.0, 1.0)
    else:
        x0, y0, x1, y1 = union_all(geometries).bounds
        pad = 0.05 * max(x1 - x0, y1 - y0, 1e-9)
        extent = (x0 - pad, y0 - pad, x1 + pad, y1 + pad)
    width_m, height_m = extent[2] - extent[0], extent[3] - extent[1]
    scale = PANEL / max(width_m, height_m)
    shape = (max(1, round(height_m * scale)), max(1, round(width_m * scale)))
    transform = from_bounds(*extent, shape[1], shape[0])
    panels = []
    for d0, d1 in zip(report.dates, report.dates[1:]):
        panel = np.full(shape + (3,), 245, np.uint8)
        for change, rgb in COLOURS.items():
            parts = [c.geometry for c in report.changes if c.attributes["date_from"] == d0 and c.attributes["change"] == change]
            if parts:
                mask = rasterize(parts, out_shape=shape, transform=transform, all_touched=True).astype(bool)
                panel[mask] = rgb[::-1]
        rows = [r for r in report.rows if r["date_from"] == d0]
        gained, lost, unsure = (sum(r[k] or 0.0 for r in rows) for k in ("gained", "lost", "uncertain"))
        note = f", uncertain {unsure:,.0f} m2" if unsure else ""
        panels.append(_titled(panel, f"{d0} > {d1}", f"gained {gained:,.0f} m2, lost {lost:,.0f} m2{note}"))
    if not panels:
        panels = [_titled(np.full((PANEL // 2, PANEL, 3), 245, np.uint8), "no pairs of dates")]
    return _write_png(_row(panels), path)


def _colour(value: float):
    import cv2

    level = np.uint8(round(255 * float(np.clip(value, 0, 1))))
    bgr = cv2.applyColorMap(np.array([[level]], np.uint8), cv2.COLORMAP_VIRIDIS)[0, 0]
    return tuple(int(v) for v in bgr)


def _titled(panel: np.ndarray, title: str, subtitle: str = "") -> np.ndarray:
    import cv2

    band = np.full((TITLE, max(panel.shape[1], 8 * max(len(title), len(subtitle))), 3), 255, np.uint8)
    cv2.putText(band, title, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (20, 20, 20), 1, cv2.LINE_AA)
    cv2.putText(band, subtitle, (6, 34), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (60, 60, 60), 1, cv2.LINE_AA)
    body = np.full((panel.shape[0], band.shape[1], 3), 255, np.uint8)
    body[:, :panel.shape[1]] = panel
    return np.vstack([band, body])


def _row(panels: Sequence[np.ndarray]) -> np.ndarray:
    height = max(p.shape[0] for p in panels)
    padded: List[np.ndarray] = []
    for p in panels:
        out = np.full((height, p.shape[1] + 8, 3), 255, np.uint8)
        out[:p.shape[0], :p.shape[1]] = p
        padded.append(out)
    return np.hstack(padded)


def _colour_bar(width: int, top: float) -> np.ndarray:
    import cv2

    bar = np.full((40, width, 3), 255, np.uint8)
    span = min(width - 20, 300)
    for x in range(span):
        bar[6:18, 10 + x] = _colour(x / max(span - 1, 1))
    tx = 10 + int(span * min(1.0 / top, 1.0))
    cv2.line(bar, (tx, 2), (tx, 22), (40, 40, 230), 2)
    cv2.putText(bar, f"local drift / threshold 0 .. {top:.1f}; red line: the threshold", (10, 34), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (20, 20, 20), 1, cv2.LINE_AA)
    return bar


def _write_png(picture: np.ndarray, path: str) -> str:
    import cv2

    from ..outputs.atomic import atomic_path

    ok, encoded = cv2.imencode(".png", picture)
    if not ok:
        from ..errors import OutputError

        raise OutputError(f"Cannot encode the picture {path}.")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(encoded.tobytes())
    return path
