"""Agreement between two label layers (two annotators, or labels against a reference).

Objects are matched one to one: candidate pairs (A, B) whose IoU reaches the threshold are taken
greedily from the highest IoU down (with a threshold of 0.5 or more on layers without overlaps
this is the only possible matching). Then, with A as the reference:

- matched; precision = matched / |B|; recall = matched / |A|; f1 (None where undefined);
- mean_iou over matched pairs; boundary_iou: Boundary IoU (Cheng et al., 2021) of each matched
  pair, averaged: the IoU of the inner bands g - buffer(g, -d) of both, d = boundary_distance
  metres, or 2 % of the diagonal of the pair's bounding box (the paper's dilation ratio);
- dice: 2 |UA & UB| / (|UA| + |UB|) for the unions UA, UB of each layer (area agreement);
- kappa: Cohen's kappa of the two layers burnt on one grid (pixel centres; later features win):
  the grid of `like` (a raster path), or a grid of `resolution` metres over both layers, or by
  default one of 2048 pixels along the longer side. Over presence (label or not), or over the
  classes when `by_class`. Per class: that class against the rest.

Everything is measured in metres (see table.metric_frame); B is reprojected to A's CRS first.
The grid is burnt in blocks of rows, so memory follows the block, not the grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import SettingError
from ..progress import Progress, check_canceled
from .qa import PAIR_CHUNK, polygonal
from .table import LabelTable, metric_frame, to_crs

AUTO_GRID_PIXELS = 2048
BLOCK_PIXELS = 4_000_000


@dataclass
class Matching:
    """a, b: int positions of matched pairs; iou: float64 per pair; best_a/best_b: the highest
    IoU each object reached with any object of the other side (0 when it touched none)."""

    a: np.ndarray
    b: np.ndarray
    iou: np.ndarray
    best_a: np.ndarray
    best_b: np.ndarray


@dataclass
class Agreement:
    """summary: the agreement.json document; matching of the overall comparison; a, b: the two
    tables as compared (B in A's CRS, empty geometries dropped)."""

    summary: dict
    matching: Matching
    a: LabelTable
    b: LabelTable
    classes: Dict[str, Matching] = field(default_factory=dict)


def match_objects(ma: np.ndarray, mb: np.ndarray, threshold: float = 0.5, progress: Optional[Progress] = None) -> Matching:
    """One-to-one matching of polygons `ma` to `mb` (same CRS) at IoU >= threshold."""
    import shapely

    area_a, area_b = shapely.area(ma), shapely.area(mb)
    best_a, best_b = np.zeros(len(ma)), np.zeros(len(mb))
    found = []
    candidates = shapely.STRtree(mb).query(ma, predicate="intersects") if len(ma) and len(mb) else np.zeros((2, 0), int)
    for start in range(0, candidates.shape[1], PAIR_CHUNK):
        check_canceled(progress)
        ia, ib = candidates[:, start:start + PAIR_CHUNK]
        inter = shapely.area(shapely.intersection(ma[ia], mb[ib]))
        union = area_a[ia] + area_b[ib] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        np.maximum.at(best_a, ia, iou)
        np.maximum.at(best_b, ib, iou)
        keep = (iou >= threshold) & (iou > 0)
        found.append((ia[keep], ib[keep], iou[keep]))
    ia = np.concatenate([f[0] for f in found]) if found else np.zeros(0, np.int64)
    ib = np.concatenate([f[1] for f in found]) if found else np.zeros(0, np.int64)
    iou = np.concatenate([f[2] for f in found]) if found else np.zeros(0)
    taken_a, taken_b = np.zeros(len(ma), bool), np.zeros(len(mb), bool)
    pairs = []
    for k in np.lexsort((ib, ia, -iou)):
        if not taken_a[ia[k]] and not taken_b[ib[k]]:
            taken_a[ia[k]] = taken_b[ib[k]] = True
            pairs.append(k)
    pairs = np.asarray(pairs, dtype=np.int64)
    order = np.argsort(ia[pairs], kind="stable") if len(pairs) else pairs
    pairs = pairs[order]
    return Matching(ia[pairs].astype(np.int64), ib[pairs].astype(np.int64), iou[pairs], best_a, best_b)


def boundary_iou(ga: np.ndarray, gb: np.ndarray, distance: Optional[float] = None) -> np.ndarray:
    """Boundary IoU of each pair (ga[k], gb[k]) in metres; see the module docstring for d."""
    import shapely

    if not len(ga):
        return np.zeros(0)
    if distance is None:
        ba, bb = shapely.bounds(ga), shapely.bounds(gb)
        lo, hi = np.minimum(ba[:, :2], bb[:, :2]), np.maximum(ba[:, 2:], bb[:, 2:])
        d = 0.02 * np.hypot(*(hi - lo).T)
    else:
        d = np.full(len(ga), float(distance))
    band_a = shapely.difference(ga, shapely.buffer(ga, -d, quad_segs=4))
    band_b = shapely.difference(gb, shapely.buffer(gb, -d, quad_segs=4))
    inter = shapely.area(shapely.intersection(band_a, band_b))
    union = shapely.area(shapely.union(band_a, band_b))
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass(frozen=True)
class AgreementOptions:
    """How two layers are compared: iou_threshold, the IoU at which two objects match (0..1];
    class_field, the field holding each object's class; by_class, also per class (kappa over the
    classes); like, a raster whose grid kappa is burnt on, or resolution, the grid's metres (None:
    AUTO_GRID_PIXELS along the longer side); boundary_distance, the Boundary IoU band width in
    metres (None: 2 % of each pair's diagonal). Checked when made."""

    iou_threshold: float = 0.5
    class_field: Optional[str] = "class"
    by_class: bool = False
    like: Optional[str] = None
    resolution: Optional[float] = None
    boundary_distance: Optional[float] = None

    def __post_init__(self):
        from ..ranges import check_number

        check_number("iou", self.iou_threshold, "The IoU threshold")
        check_number("resolution", self.resolution, "The resolution")
        check_number("boundary_distance", self.boundary_distance, "The boundary distance")
        if not 0 < self.iou_threshold <= 1:
            raise SettingError(f"The IoU threshold must be in (0, 1], not {self.iou_threshold}.")
        if self.resolution is not None and self.resolution <= 0:
            raise SettingError("The resolution must be a positive number of metres.")
        if self.like and self.resolution:
            raise SettingError("Give kappa either a raster's grid (like) or a resolution, not both.")


def compare(a: LabelTable, b: LabelTable, options: AgreementOptions = AgreementOptions(),
            progress: Optional[Progress] = None) -> Agreement:
    """Agreement of `b` with `a` (the reference); see the module docstring for every figure."""
    iou_threshold, class_field, by_class = options.iou_threshold, options.class_field, options.by_class
    boundary_distance = options.boundary_distance
    if by_class and (a.column(class_field) is None or b.column(class_field) is None):
        raise SettingError(f"Comparing by class needs a {class_field!r} field in both layers.")
    a, b = _usable(a), _usable(b)
    b.geometries = to_crs(b.geometries, b.crs, a.crs)
    b.crs = a.crs
    frame = metric_frame(np.concatenate([a.geometries, b.geometries]), a.crs)
    ma, mb = frame.to_metric(a.geometries), frame.to_metric(b.geometries)
    ca, cb = _classes(a, class_field), _classes(b, class_field)
    names = sorted((set(ca) | set(cb)) - {""}) if by_class else []
    grid_crs, grid = _grid(options.like, options.resolution, a.crs, frame.crs, np.concatenate([ma, mb]))
    ga_, gb_ = (ma, mb) if grid_crs is None else (to_crs(a.geometries, a.crs, grid_crs), to_crs(b.geometries, a.crs, grid_crs))
    codes = {name: k + 1 for k, name in enumerate(names)}
    va = np.array([codes.get(c, 0) for c in ca] if by_class else np.ones(len(a)), dtype=np.int64)
    vb = np.array([codes.get(c, 0) for c in cb] if by_class else np.ones(len(b)), dtype=np.int64)
    confusion = _confusion(ga_, va, gb_, vb, grid, len(names) + 1 if by_class else 2, progress)
    overall = match_objects(ma, mb, iou_threshold, progress)
    summary = _metrics(ma, mb, overall, boundary_distance)
    summary["kappa"] = _kappa(confusion)
    summary.update({"iou_threshold": iou_threshold, "grid": grid["describe"],
                    "boundary_distance": boundary_distance if boundary_distance is not None else "2% of each pair's diagonal"})
    per_class = {}
    if by_class:
        summary["classes"] = {}
        for name in names:
            check_canceled(progress)
            ia, ib = np.flatnonzero(np.asarray(ca) == name), np.flatnonzero(np.asarray(cb) == name)
            m = match_objects(ma[ia], mb[ib], iou_threshold, progress)
            per_class[name] = Matching(ia[m.a], ib[m.b], m.iou, m.best_a, m.best_b)
            doc = _metrics(ma[ia], mb[ib], m, boundary_distance)
            doc["kappa"] = _kappa(_one_against_rest(confusion, codes[name]))
            summary["classes"][name] = doc
    if progress is not None:
        progress.set_progress(100)
    return Agreement(summary, overall, a, b, per_class)


def unmatched(result: Agreement, class_field: Optional[str] = "class") -> Tuple[List, Dict[str, list]]:
    """(geometries in A's CRS, columns side / source_fid / class / best_iou) of every object left
    unmatched by the overall matching: side "a" (missed by B) then side "b" (extra in B)."""
    geoms, cols = [], {"side": [], "source_fid": [], "class": [], "best_iou": []}
    for side, table, matched, best in (("a", result.a, result.matching.a, result.matching.best_a),
                                       ("b", result.b, result.matching.b, result.matching.best_b)):
        classes = table.column(class_field) or [None] * len(table)
        for k in sorted(set(range(len(table))) - set(matched.tolist())):
            geoms.append(table.geometries[k])
            cols["side"].append(side)
            cols["source_fid"].append(int(table.fids[k]))
            cols["class"].append(classes[k])
            cols["best_iou"].append(round(float(best[k]), 6))
    return geoms, cols


def _metrics(ma, mb, m: Matching, boundary_distance) -> dict:
    import shapely

    n, na, nb = len(m.a), len(ma), len(mb)
    precision = n / nb if nb else None
    recall = n / na if na else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if nb and na else None)
    ua, ub = shapely.union_all(ma), shapely.union_all(mb)
    total = ua.area + ub.area
    biou = boundary_iou(ma[m.a], mb[m.b], boundary_distance)
    return {"objects_a": na, "objects_b": nb, "matched": n, "precision": _r(precision), "recall": _r(recall), "f1": _r(f1),
            "mean_iou": _r(float(m.iou.mean()) if n else None),
            "dice": _r(2 * ua.intersection(ub).area / total if total else None),
            "boundary_iou": _r(float(biou.mean()) if n else None)}


def _grid(like, resolution, layer_crs, metric_crs, metric_geoms):
    """(CRS the layers are burnt in, or None for the metric frame; grid dict with transform,
    width, height and a JSON description)."""
    import shapely
    from affine import Affine

    if like:
        from ..geo.raster import RasterSource

        with RasterSource(like) as src:
            return src.crs.to_wkt(), {"transform": src.transform, "width": src.width, "height": src.height,
                                      "describe": {"like": like, "width": src.width, "height": src.height}}
    present = metric_geoms[~shapely.is_empty(metric_geoms)]
    x0, y0, x1, y1 = shapely.total_bounds(present) if len(present) else (0.0, 0.0, 1.0, 1.0)
    r = resolution or max(x1 - x0, y1 - y0, 1e-9) / AUTO_GRID_PIXELS
    x0, y0 = math.floor(x0 / r) * r, math.floor(y0 / r) * r
    width, height = max(1, math.ceil(round((x1 - x0) / r, 9))), max(1, math.ceil(round((y1 - y0) / r, 9)))
    transform = Affine(r, 0, x0, 0, -r, y0 + height * r)
    return None, {"transform": transform, "width": width, "height": height,
                  "describe": {"resolution": r, "width": width, "height": height}}


def _confusion(ga, va, gb, vb, grid, k: int, progress) -> np.ndarray:
    """k x k pixel counts: rows A's value, columns B's (0 = nothing)."""
    import shapely
    from rasterio.features import rasterize

    transform, width, height = grid["transform"], grid["width"], grid["height"]
    confusion = np.zeros((k, k), np.int64)
    trees = [(shapely.STRtree(g), g, v) for g, v in ((ga, va), (gb, vb))]
    rows = max(1, BLOCK_PIXELS // width)
    for row in range(0, height, rows):
        check_canceled(progress)
        h = min(rows, height - row)
        block = transform * transform.translation(0, row)
        x0, y1 = block * (0, 0)
        x1, y0 = block * (width, h)
        area = shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        burnt = []
        for tree, geoms, values in trees:
            hit = np.sort(tree.query(area, predicate="intersects"))
            shapes = [(geoms[i], int(values[i])) for i in hit if values[i] > 0]
            burnt.append(rasterize(shapes, out_shape=(h, width), transform=block, fill=0, dtype="int32")
                         if shapes else np.zeros((h, width), np.int32))
        confusion += np.bincount((burnt[0].ravel() * k + burnt[1].ravel()), minlength=k * k).reshape(k, k)
    return confusion


def _kappa(confusion: np.ndarray) -> Optional[float]:
    total = confusion.sum()
    if total == 0:
        return None
    po = np.trace(confusion) / total
    pe = float((confusion.sum(axis=1) * confusion.sum(axis=0)).sum()) / total ** 2
    if pe == 1:
        return 1.0 if po == 1 else None
    return _r((po - pe) / (1 - pe))


def _one_against_rest(confusion: np.ndarray, code: int) -> np.ndarray:
    inside = np.zeros(len(confusion), bool)
    inside[code] = True
    return np.array([[confusion[np.ix_(ra, cb)].sum() for cb in (~inside, inside)] for ra in (~inside, inside)])


def _usable(table: LabelTable) -> LabelTable:
    """A copy without null or empty geometries, the rest made valid (polygonal part)."""
    import shapely

    g = table.geometries
    keep = np.flatnonzero(~(shapely.is_missing(g) | shapely.is_empty(g)))
    out = table.subset(keep)
    bad = ~shapely.is_valid(out.geometries)
    out.geometries[bad] = [polygonal(x) for x in shapely.make_valid(out.geometries[bad])]
    return out


def _classes(table: LabelTable, class_field) -> List[str]:
    values = table.column(class_field) or [None] * len(table)
    return ["" if v is None else str(v).strip() for v in values]


def _r(value):
    return None if value is None else round(float(value), 6)
