"""Shared borders: a new object is cut by the labels already there, so neighbours meet exactly.

The cut happens on the raster's pixel grid: the new geometry and the existing labels near it are
rasterized in the new object's window (pixel centres inside, the inverse of vectorize.py), the
existing pixels are removed from the new mask, and what is left is vectorized on that grid. Labels
made by Seg on the same grid therefore share their border vertex for vertex: the union of the
neighbours is exactly the region they cover, with no overlap, gap or sliver. Existing labels that
are not on the grid (drawn by hand, another resolution) are also subtracted as vectors, so nothing
overlaps; a sub-pixel gap to them can remain, which `snap` (map units) closes by moving the new
outline's vertices onto theirs.

Simplification (`simplify`) is applied to the new outline only, after the cut; it keeps the result
free of overlaps but can open small gaps, so exact shared borders want simplify 0 (the default).
Cost: one rasterization of the object's window (its bounding box on the grid) per object.
"""
from __future__ import annotations

import math
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
from affine import Affine

from .layers import data_layer
from .vectorize import clean_polygons, mask_to_geometry, reproject_geometry


def window_on_grid(bounds: Tuple[float, float, float, float], grid: Affine) -> Tuple[int, int, int, int]:
    """(col0, row0, width, height) of the smallest whole-pixel window of `grid` covering map `bounds`."""
    x0, y0, x1, y1 = bounds
    inverse = ~grid
    corners = [inverse * (x, y) for x in (x0, x1) for y in (y0, y1)]
    cols, rows = [c for c, _ in corners], [r for _, r in corners]
    c0, r0 = math.floor(min(cols) + 1e-9), math.floor(min(rows) + 1e-9)
    c1, r1 = math.ceil(max(cols) - 1e-9), math.ceil(max(rows) - 1e-9)
    return c0, r0, max(1, c1 - c0), max(1, r1 - r0)


def burn(geometries: Sequence, shape: Tuple[int, int], transform: Affine) -> np.ndarray:
    """bool (H, W): pixels of the grid `transform` whose centre lies inside any of `geometries`."""
    from rasterio.features import rasterize

    shapes = [(g, 1) for g in geometries if g is not None and not g.is_empty]
    if not shapes:
        return np.zeros(shape, bool)
    return rasterize(shapes, out_shape=shape, transform=transform, fill=0, dtype="uint8").astype(bool)


def share_borders(geometry, grid: Affine, existing: Sequence, snap: float = 0.0, simplify: float = 0.0,
                  min_area: float = 0.0, fill_holes: float = 0.0):
    """`geometry` (shapely polygon(s)) minus the `existing` geometries, cut on the pixel grid `grid`
    (an affine transform of the raster or of its working level; everything in the grid's CRS).
    Returns a MultiPolygon or None when nothing is left. See the module docstring."""
    from shapely import STRtree

    if geometry is None or geometry.is_empty:
        return None
    near = [g for g in existing if g is not None and not g.is_empty]
    if near:
        tree = STRtree(near)
        reach = geometry.buffer(snap) if snap > 0 else geometry
        near = [near[int(i)] for i in tree.query(reach, predicate="intersects")]
    if not near:
        return clean_polygons(geometry, simplify, min_area, fill_holes)
    c0, r0, width, height = window_on_grid(geometry.bounds, grid)
    transform = grid * Affine.translation(c0, r0)
    return share_mask_borders(burn([geometry], (height, width), transform), transform, near, snap, simplify,
                              min_area, fill_holes)


def share_mask_borders(mask: np.ndarray, transform: Affine, near: Sequence, snap: float = 0.0, simplify: float = 0.0,
                       min_area: float = 0.0, fill_holes: float = 0.0):
    """The same cut for a mask bool (H, W) already on the grid `transform` (a model's answer: no
    polygon to burn first, which costs seconds for a noisy mask). `near`: the existing geometries
    that may touch it. Returns a MultiPolygon or None."""
    from shapely import snap as snap_to, union_all

    taken = burn(near, mask.shape, transform)
    result = mask_to_geometry(np.asarray(mask, bool) & ~taken, transform, 0.0, 0.0, fill_holes)
    if result is not None and fill_holes:  # a filled hole may be a neighbour: its pixels go back to it
        result = mask_to_geometry(burn([result], mask.shape, transform) & ~taken, transform)
    # Neighbours on this grid are cut exactly by the pixels; only the others (or a simplified
    # outline) need vector overlays, slow against a ragged neighbour with thousands of holes.
    vector_near = near if simplify else [g for g in near if not on_grid(g, transform)]
    if result is None or not vector_near:
        return clean_polygons(result, simplify, min_area) if result is not None else None
    others = union_all(vector_near)
    if snap > 0:
        result = snap_to_edges(snap_to(result, others, snap), others, snap)
    if simplify:
        result = clean_polygons(result, simplify)
    if result is not None and not result.is_valid:
        result = result.buffer(0)
    if result is not None and result.intersection(others).area > 0:
        result = result.difference(others)
    return clean_polygons(_polygons(result), 0.0, min_area)  # holes left now are neighbours: keep them


def on_grid(geometry, grid: Affine, tolerance: float = 1e-6) -> bool:
    """Whether every vertex of `geometry` lies on a pixel corner of `grid` (within `tolerance` pixels)."""
    from shapely import get_coordinates

    xy = get_coordinates(geometry)
    inverse = ~grid
    cols = inverse.a * xy[:, 0] + inverse.b * xy[:, 1] + inverse.c
    rows = inverse.d * xy[:, 0] + inverse.e * xy[:, 1] + inverse.f
    return bool(np.all(np.abs(cols - np.rint(cols)) < tolerance) and np.all(np.abs(rows - np.rint(rows)) < tolerance))


def snap_to_edges(geometry, reference, tolerance: float):
    """`geometry` with each vertex closer than `tolerance` to the outline of `reference` moved onto
    that outline (its nearest point), so an edge between two moved vertices lies on the neighbour's
    edge. shapely.snap only snaps to the neighbour's vertices; this closes gaps along its edges."""
    import shapely

    outline = reference.boundary

    def move(xy: np.ndarray) -> np.ndarray:
        points = shapely.points(xy)
        near = np.flatnonzero(shapely.distance(points, outline) <= tolerance)
        if len(near):
            xy = xy.copy()
            xy[near] = shapely.get_coordinates(shapely.shortest_line(points[near], outline))[1::2]
        return xy

    return shapely.transform(geometry, move)


def resolve_overlaps(labels: Sequence, grid: Affine, existing: Sequence = (), snap: float = 0.0,
                     simplify: float = 0.0, min_area: float = 0.0, fill_holes: float = 0.0,
                     score: str = "score") -> List:
    """Labels (engine.labels.Label, all in the grid's CRS) that do not overlap one another or
    `existing`: a higher `score` attribute wins (missing scores lose; ties keep the input order),
    existing geometries win over all. Returns the labels that keep an area, in input order, with
    their geometries cut. Memory: every geometry at once."""
    from shapely import STRtree

    order = sorted(range(len(labels)), key=lambda i: -_score(labels[i].attributes.get(score)))
    kept: dict = {}
    taken = list(existing)
    tree, tree_size = None, -1
    for i in order:
        label = labels[i]
        if label.geometry is None or label.geometry.is_empty:
            continue
        if tree_size != len(taken):
            tree, tree_size = (STRtree(taken) if taken else None), len(taken)
        near = [taken[int(k)] for k in tree.query(label.geometry.buffer(snap) if snap > 0 else label.geometry)] if tree else []
        geometry = share_borders(label.geometry, grid, near, snap, simplify, min_area, fill_holes)
        if geometry is not None:
            label.geometry = geometry
            kept[i] = label
            taken.append(geometry)
    return [kept[i] for i in sorted(kept)]


def share_borders_with_layer(labels: Sequence, grid: Affine, path: Optional[str], layer: Optional[str] = None,
                             snap: float = 0.0, simplify: float = 0.0, min_area: float = 0.0,
                             fill_holes: float = 0.0) -> List:
    """`resolve_overlaps` of `labels` against each other and against the labels already in the
    target layer (`path`, `layer`; none when the file does not exist yet), which win."""
    from shapely import union_all

    labels = [lab for lab in labels if lab.geometry is not None and not lab.geometry.is_empty]
    if not labels:
        return []
    existing = []
    if path:
        x0, y0, x1, y1 = union_all([lab.geometry for lab in labels]).bounds
        existing = nearby_labels(path, (x0 - snap, y0 - snap, x1 + snap, y1 + snap), labels[0].crs, layer)
    return resolve_overlaps(labels, grid, existing, snap, simplify, min_area, fill_holes)


def nearby_labels(path: str, bounds: Tuple[float, float, float, float], crs: str, layer: Optional[str] = None) -> List:
    """Geometries of the labels in the layer at `path` that reach into `bounds` (in `crs`),
    reprojected to `crs`. An absent file gives none. Reads only features whose extent meets the
    bounds (the layer's spatial index), not the whole layer."""
    import os

    import pyogrio
    from shapely import from_wkb
    from shapely.geometry import box

    if not os.path.exists(path):
        return []
    layers = [name for name, _ in pyogrio.list_layers(path)]
    if layer is not None and layer not in layers:
        return []
    layer = data_layer(path, layer)
    meta = pyogrio.read_info(path, layer=layer)
    layer_crs = meta.get("crs") or crs
    area = reproject_geometry(box(*bounds), crs, layer_crs)
    _, _, wkbs, _ = pyogrio.raw.read(path, layer=layer, bbox=tuple(area.bounds), columns=[])
    geometries = [from_wkb(w) for w in wkbs if w is not None]
    return [reproject_geometry(g, layer_crs, crs) for g in geometries]


def _polygons(geometry) -> Iterable:
    if geometry is None or geometry.is_empty:
        return []
    if geometry.geom_type == "Polygon":
        return [geometry]
    return [g for part in getattr(geometry, "geoms", []) for g in _polygons(part)]


def _score(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return -math.inf
    return -math.inf if math.isnan(value) else value
