"""Label QA: what is wrong with a label layer, as findings a person can look at on the map.

Kinds (KINDS): `invalid` (self-intersection and other invalidity, with GEOS's reason), `empty`
(null or empty geometry), `duplicate` (the same geometry more than once, whatever its start vertex
or ring orientation), `overlap` (intersection area over a tolerance; between any labels or only
within a class), `sliver` (4*pi*area/perimeter^2 under a tolerance, or thinner than a width: an
inward buffer by half the width leaves nothing), `gap` (uncovered space narrower than a width
between two neighbouring labels: what a morphological closing of the pair fills beyond the closing
of each label alone), `hole` (interior rings smaller than an area), `area_outlier` (robust z-score
0.6745 * (ln a - median ln a) / MAD of the log area within a class, for classes of at least
`min_class_size` labels) and `missing_attribute` (class null or blank).

Tolerances are in metres and square metres whatever the layer's CRS (see table.metric_frame).
Everything is vectorised over shapely arrays with one STRtree; pairwise work runs in chunks, so
memory stays bounded by the chunk, not by the number of pairs. The gap check is the expensive one
(a few buffers per pair of neighbours within the gap width).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import SettingError
from ..progress import Progress, check_canceled
from .table import LabelTable, metric_frame, write_layer

KINDS = ("invalid", "empty", "duplicate", "overlap", "sliver", "gap", "hole", "area_outlier", "missing_attribute")
SCOPES = ("any", "class")
PAIR_CHUNK = 20_000  # pairs handled at once: bounds the memory of pairwise geometry work


@dataclass(frozen=True)
class Tolerances:
    """Thresholds in metres / square metres (defaults suit labels of objects a few metres wide)."""

    overlap_area: float = 0.01
    gap_width: float = 1.0
    sliver_compactness: float = 0.05
    sliver_width: float = 0.5
    hole_area: float = 1.0
    outlier_z: float = 5.0
    overlap_scope: str = "any"
    min_class_size: int = 5

    def __post_init__(self):
        from ..ranges import check_number

        for name in ("overlap_area", "gap_width", "sliver_compactness", "sliver_width", "hole_area", "outlier_z"):
            check_number(name, getattr(self, name), f"The {name.replace('_', ' ')}")
        if self.overlap_scope not in SCOPES:
            raise SettingError(f"The overlap scope must be one of {', '.join(SCOPES)}, not {self.overlap_scope!r}.")
        for name in ("overlap_area", "gap_width", "sliver_compactness", "sliver_width", "hole_area", "outlier_z"):
            if getattr(self, name) < 0:
                raise SettingError(f"The tolerance {name} must not be negative.")


@dataclass(frozen=True)
class Finding:
    """kind: one of KINDS; fids: the layer's feature ids involved; detail: one sentence; value: the
    measure behind it (m2 for overlap, gap and hole; compactness for sliver; z for area_outlier;
    0 otherwise); geometry: where it is, in the layer CRS (None for an empty geometry)."""

    kind: str
    fids: Tuple[int, ...]
    detail: str
    value: float
    geometry: object = None


def check_labels(table: LabelTable, tolerances: Tolerances = Tolerances(), class_field: Optional[str] = "class",
                 progress: Optional[Progress] = None) -> List[Finding]:
    """Every finding in `table`, ordered by kind (as KINDS) then by first fid."""
    import shapely

    geoms, fids = table.geometries, table.fids
    classes = _class_values(table, class_field)
    findings: List[Finding] = []
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    findings += [Finding("empty", (int(fids[i]),), "null geometry" if geoms[i] is None else "empty geometry", 0.0, None)
                 for i in np.flatnonzero(missing)]
    present = np.flatnonzero(~missing)
    valid = shapely.is_valid(geoms[present])
    for i in present[~valid]:
        findings.append(Finding("invalid", (int(fids[i]),), shapely.is_valid_reason(geoms[i]), 0.0, geoms[i]))
    work = geoms[present].copy()
    work[~valid] = [polygonal(g) for g in shapely.make_valid(work[~valid])]
    polygonal_ok = ~shapely.is_empty(work)
    present, work = present[polygonal_ok], work[polygonal_ok]
    _report(progress, 10)
    frame = metric_frame(work, table.crs)
    metric = frame.to_metric(work)
    _report(progress, 20)

    groups = duplicate_groups(geoms[present])
    same_group = np.full(len(present), -1)
    for g, members in enumerate(groups):
        same_group[members] = g
        findings.append(Finding("duplicate", tuple(int(fids[present[m]]) for m in members),
                                f"{len(members)} labels with the same geometry", 0.0, geoms[present[members[0]]]))
    measured = Measured(metric, present, fids, same_group, frame, shapely.STRtree(metric))
    findings += _overlaps(measured, classes, tolerances, progress)
    _report(progress, 45)
    compactness, thin = sliver_measures(metric, tolerances)
    for k in np.flatnonzero((compactness < tolerances.sliver_compactness) | thin):
        i = present[k]
        why = (f"compactness 4*pi*area/perimeter^2 = {compactness[k]:.3f} (under {tolerances.sliver_compactness:g})"
               if compactness[k] < tolerances.sliver_compactness else f"thinner than {tolerances.sliver_width:g} m")
        findings.append(Finding("sliver", (int(fids[i]),), why, float(compactness[k]), geoms[i]))
    _report(progress, 55)
    findings += _gaps(measured, tolerances, progress)
    _report(progress, 85)
    findings += _holes(metric, present, fids, tolerances, frame)
    findings += _area_outliers(metric, present, fids, geoms, classes, tolerances)
    if classes is None:
        findings += [Finding("missing_attribute", (int(fids[i]),), f"the layer has no {class_field!r} field", 0.0, geoms[i])
                     for i in range(len(fids))]
    else:
        findings += [Finding("missing_attribute", (int(fids[i]),), f"{class_field} is empty", 0.0, geoms[i])
                     for i, c in enumerate(classes) if c is None]
    _report(progress, 100)
    order = {k: n for n, k in enumerate(KINDS)}
    return sorted(findings, key=lambda f: (order[f.kind], f.fids))


def polygonal(geometry):
    """The polygonal part of a geometry (MultiPolygon, Polygon or an empty Polygon)."""
    import shapely
    from shapely.geometry import MultiPolygon, Polygon

    if geometry is None:
        return Polygon()
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [p for p in shapely.get_parts(geometry) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys = [q for p in parts for q in (p.geoms if p.geom_type == "MultiPolygon" else [p])]
    return MultiPolygon(polys) if polys else Polygon()


def duplicate_groups(geometries: np.ndarray) -> List[np.ndarray]:
    """Positions of geometries equal after normalisation (same vertices, any start or
    orientation), one int array per group of two or more, in order of first appearance. Only
    geometries sharing bounds and vertex count (what any duplicate shares) are normalised."""
    import shapely

    from ..geo.wkb import to_wkb

    if not len(geometries):
        return []
    cheap = np.column_stack([shapely.bounds(geometries), shapely.get_num_coordinates(geometries)])
    _, inverse, counts = np.unique(cheap, axis=0, return_inverse=True, return_counts=True)
    suspects = np.flatnonzero(counts[inverse.ravel()] > 1)
    keys = to_wkb(shapely.normalize(geometries[suspects]))
    first: Dict[bytes, int] = {}
    members: Dict[int, List[int]] = {}
    for position, key in zip(suspects.tolist(), keys):
        head = first.setdefault(key, position)
        if head != position:
            members.setdefault(head, [head]).append(position)
    return [np.asarray(members[h]) for h in sorted(members)]


def sliver_measures(metric: np.ndarray, tolerances: Tolerances) -> Tuple[np.ndarray, np.ndarray]:
    """(compactness 4*pi*A/P^2, thinner-than-sliver_width bool) for polygons in metres."""
    import shapely

    area, perimeter = shapely.area(metric), shapely.length(metric)
    with np.errstate(divide="ignore", invalid="ignore"):
        compactness = np.where(perimeter > 0, 4 * math.pi * area / perimeter ** 2, 0.0)
    thin = np.zeros(len(metric), bool)
    if tolerances.sliver_width > 0:
        # the largest inscribed disc is at most the equal-area disc: those are thin for sure;
        # an inner point half the width away from the boundary proves the others are not
        surely = 2 * np.sqrt(area / math.pi) < tolerances.sliver_width
        inner = shapely.point_on_surface(metric)
        roomy = shapely.distance(inner, shapely.boundary(metric)) >= tolerances.sliver_width / 2
        todo = np.flatnonzero(~surely & ~roomy)
        thin[surely] = True
        eroded = shapely.buffer(metric[todo], -tolerances.sliver_width / 2, quad_segs=2)
        thin[todo] = shapely.is_empty(eroded)
    return compactness, thin


def pairs(tree, metric: np.ndarray, predicate: str, **kwargs) -> np.ndarray:
    """(2, k) int array of positions i < j related by `predicate` (an STRtree query)."""
    found = tree.query(metric, predicate=predicate, **kwargs)
    keep = found[0] < found[1]
    return found[:, keep]


def _chunks(candidates: np.ndarray, progress) -> Iterator[np.ndarray]:
    for start in range(0, candidates.shape[1], PAIR_CHUNK):
        check_canceled(progress)
        yield candidates[:, start:start + PAIR_CHUNK]


@dataclass(frozen=True)
class Measured:
    """The labels QA measures pairwise: metric, their polygons in metres; present, their positions
    in the table; fids, the table's feature ids; same_group, each one's duplicate group (-1: none);
    frame, the way back to the layer CRS; tree, an STRtree of `metric`."""

    metric: np.ndarray
    present: np.ndarray
    fids: np.ndarray
    same_group: np.ndarray
    frame: object
    tree: object


def _overlaps(m: Measured, classes, tol: Tolerances, progress) -> List[Finding]:
    import shapely

    tree, metric, present, fids, same_group, frame = m.tree, m.metric, m.present, m.fids, m.same_group, m.frame
    candidates = pairs(tree, metric, "intersects")
    keep = (same_group[candidates[0]] < 0) | (same_group[candidates[0]] != same_group[candidates[1]])
    if tol.overlap_scope == "class" and classes is not None:
        cls = np.asarray([classes[p] for p in present], dtype=object)
        keep &= cls[candidates[0]] == cls[candidates[1]]
    candidates = candidates[:, keep]
    out = []
    for chunk in _chunks(candidates, progress):
        inter = shapely.intersection(metric[chunk[0]], metric[chunk[1]])
        area = shapely.area(inter)
        big = np.flatnonzero(area > tol.overlap_area)
        shapes = frame.from_metric(np.asarray([polygonal(g) for g in inter[big]], dtype=object))
        for k, shape in zip(big, shapes):
            a, b = present[chunk[0, k]], present[chunk[1, k]]
            out.append(Finding("overlap", (int(fids[a]), int(fids[b])), f"overlap of {area[k]:.4g} m2", float(area[k]), shape))
    return out


def _gaps(m: Measured, tol: Tolerances, progress) -> List[Finding]:
    """Pairs within gap_width: clip both to where they are near each other, close their union with
    a disc of diameter gap_width, and keep the filled pieces that touch both labels."""
    import shapely

    tree, metric, present, fids, same_group, frame = m.tree, m.metric, m.present, m.fids, m.same_group, m.frame
    if tol.gap_width <= 0:
        return []
    r = tol.gap_width / 2
    min_area = max(1e-6, 0.01 * tol.gap_width ** 2)  # below this it is buffer arithmetic, not a gap
    candidates = pairs(tree, metric, "dwithin", distance=tol.gap_width)
    keep = (same_group[candidates[0]] < 0) | (same_group[candidates[0]] != same_group[candidates[1]])
    candidates = candidates[:, keep]
    bounds = shapely.bounds(metric)
    out = []
    for chunk in _chunks(candidates, progress):
        bi, bj = bounds[chunk[0]], bounds[chunk[1]]
        near = shapely.box(np.maximum(bi[:, 0], bj[:, 0]) - tol.gap_width, np.maximum(bi[:, 1], bj[:, 1]) - tol.gap_width,
                           np.minimum(bi[:, 2], bj[:, 2]) + tol.gap_width, np.minimum(bi[:, 3], bj[:, 3]) + tol.gap_width)
        gi, gj = shapely.intersection(metric[chunk[0]], near), shapely.intersection(metric[chunk[1]], near)
        pair = shapely.union(gi, gj)
        closed = _closing(pair, r)
        filled = np.full(len(pair), None, dtype=object)
        grew = np.flatnonzero(shapely.area(closed) - shapely.area(pair) > min_area)
        filled[grew] = shapely.difference(closed[grew], pair[grew])
        # keep the pieces the closing put between the two, not into one label's own concavities
        pieces, owner = shapely.get_parts(filled, return_index=True)
        if not len(pieces):
            continue
        eps = 1e-6 * tol.gap_width
        between = (shapely.distance(pieces, gi[owner]) < eps) & (shapely.distance(pieces, gj[owner]) < eps)
        between &= shapely.area(pieces) > min_area / 10
        gap = np.full(len(chunk[0]), None, dtype=object)
        kept, at = pieces[between], owner[between]
        for k in np.unique(at):
            gap[k] = shapely.union_all(kept[at == k])
        area = np.asarray([0.0 if g is None else g.area for g in gap])
        found = np.flatnonzero(area > min_area)
        if not len(found):
            continue
        distance = shapely.distance(metric[chunk[0, found]], metric[chunk[1, found]])
        shapes = frame.from_metric(np.asarray([polygonal(g) for g in gap[found]], dtype=object))
        for k, d, shape in zip(found, distance, shapes):
            a, b = present[chunk[0, k]], present[chunk[1, k]]
            out.append(Finding("gap", (int(fids[a]), int(fids[b])), f"gap of {area[k]:.4g} m2, {d:.3g} m apart at the closest",
                               float(area[k]), shape))
    return out


def _closing(geometries, r):
    import shapely

    return shapely.buffer(shapely.buffer(geometries, r, quad_segs=4), -r, quad_segs=4)


def _holes(metric, present, fids, tol, frame) -> List[Finding]:
    import shapely

    parts, owner = shapely.get_parts(metric, return_index=True)
    counts = shapely.get_num_interior_rings(parts)
    part_of_ring = np.repeat(np.arange(len(parts)), counts)
    if not len(part_of_ring):
        return []
    ring_number = np.arange(len(part_of_ring)) - np.repeat(np.cumsum(counts) - counts, counts)
    rings = shapely.get_interior_ring(parts[part_of_ring], ring_number)
    holes = shapely.polygons(rings)
    area = shapely.area(holes)
    small = np.flatnonzero(area < tol.hole_area)
    shapes = frame.from_metric(holes[small])
    return [Finding("hole", (int(fids[present[owner[part_of_ring[k]]]]),), f"hole of {area[k]:.4g} m2", float(area[k]), shape)
            for k, shape in zip(small, shapes)]


def _area_outliers(metric, present, fids, geoms, classes, tol) -> List[Finding]:
    import shapely

    if classes is None:
        return []
    area = shapely.area(metric)
    cls = np.asarray([classes[p] for p in present], dtype=object)
    out = []
    for name in sorted({c for c in cls if c is not None}):
        members = np.flatnonzero((cls == name) & (area > 0))
        if len(members) < tol.min_class_size:
            continue
        log_area = np.log(area[members])
        median = np.median(log_area)
        mad = np.median(np.abs(log_area - median))
        if mad == 0:
            continue
        z = 0.6745 * (log_area - median) / mad
        for k in np.flatnonzero(np.abs(z) > tol.outlier_z):
            i = present[members[k]]
            out.append(Finding("area_outlier", (int(fids[i]),),
                               f"{area[members[k]]:.4g} m2 against a {name} median of {math.exp(median):.4g} m2 (robust z {z[k]:+.1f})",
                               float(z[k]), geoms[i]))
    return out


def _class_values(table: LabelTable, class_field: Optional[str]) -> Optional[List[Optional[str]]]:
    """The class of each label as text, None where null or blank; None when there is no such field."""
    values = table.column(class_field)
    if values is None:
        return None
    return [None if v is None or str(v).strip() == "" else str(v) for v in values]


def _report(progress, percent):
    if progress is not None:
        check_canceled(progress)
        progress.set_progress(percent)


def report(findings: Sequence[Finding], table: LabelTable, tolerances: Tolerances = Tolerances()) -> dict:
    """The qa.json document: findings (kind, fids, detail, value), counts per kind, the number of
    labels and the tolerances used."""
    counts = {kind: 0 for kind in KINDS}
    for f in findings:
        counts[f.kind] += 1
    return {
        "findings": [{"kind": f.kind, "fids": list(f.fids), "detail": f.detail, "value": round(f.value, 6)} for f in findings],
        "counts": counts,
        "labels": len(table),
        "tolerances": asdict(tolerances),
    }


def write_findings(findings: Sequence[Finding], path: str, crs: str, overwrite: bool = False) -> str:
    """The findings as a polygon layer (kind, fids as "3,7", detail, value), atomically."""
    columns = {"kind": [f.kind for f in findings], "fids": [",".join(map(str, f.fids)) for f in findings],
               "detail": [f.detail for f in findings], "value": [float(f.value) for f in findings]}
    geometries = [None if f.geometry is None else polygonal(f.geometry) for f in findings]
    return write_layer(path, geometries, columns, crs, overwrite=overwrite)
