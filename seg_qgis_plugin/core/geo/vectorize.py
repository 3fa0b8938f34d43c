"""Masks to polygons with exact pixel-edge georeferencing, and geometry clean-up.

Polygon vertices lie on pixel corners: a pixel-aligned square mask becomes exactly that square in
map coordinates, and rasterizing the polygon back on the same grid (pixel centres inside) gives the
same pixels. Cost grows with the number of boundary pixels; noisy masks with many specks are the
expensive case, which `min_area` keeps in check.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from affine import Affine

from ..errors import CrsError, SettingError


def mask_to_geometry(mask: np.ndarray, transform: Affine, simplify: float = 0.0, min_area: float = 0.0,
                     fill_holes: float = 0.0):
    """mask bool (H, W) on the grid `transform` -> shapely MultiPolygon in that grid's CRS, or
    None when nothing is left.

    simplify: tolerance in map units (0 keeps every pixel corner); min_area: parts smaller than
    this (map units squared) are dropped; fill_holes: holes smaller than this are filled
    (float('inf') fills all).
    """
    from rasterio.features import shapes
    from shapely.geometry import shape

    mask = np.asarray(mask, bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    crop = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    crop_transform = transform * Affine.translation(int(cols[0]), int(rows[0]))
    parts = [shape(geom) for geom, _ in shapes(crop.view(np.uint8), mask=crop, connectivity=4, transform=crop_transform)]
    return clean_polygons(parts, simplify, min_area, fill_holes)


def clean_polygons(polygons, simplify: float = 0.0, min_area: float = 0.0, fill_holes: float = 0.0):
    """Polygons (an iterable, or a Polygon / MultiPolygon) -> MultiPolygon or None: holes under
    `fill_holes` filled, simplified with `simplify` map units, parts under `min_area` dropped."""
    from shapely.geometry import MultiPolygon, Polygon

    check_cleanup(simplify, min_area, fill_holes)
    if hasattr(polygons, "geom_type"):
        polygons = list(polygons.geoms) if polygons.geom_type == "MultiPolygon" else [polygons]
    kept = []
    for poly in polygons:
        if poly.geom_type != "Polygon":
            continue
        if fill_holes:
            poly = Polygon(poly.exterior, [h for h in poly.interiors if Polygon(h).area >= fill_holes])
        if simplify:
            poly = poly.simplify(simplify, preserve_topology=True)
        if poly.is_empty or poly.area == 0 or poly.area < min_area:
            continue
        kept.extend(poly.geoms if poly.geom_type == "MultiPolygon" else [poly])
    return MultiPolygon(kept) if kept else None


def check_cleanup(simplify: float = 0.0, min_area: float = 0.0, fill_holes: float = 0.0) -> None:
    """Raise SettingError (one sentence) unless every clean-up size is a number of 0 or more."""
    for name, value in (("simplification tolerance", simplify), ("minimum area", min_area), ("hole size to fill", fill_holes)):
        if not (value >= 0):  # also catches NaN
            raise SettingError(f"The {name} must be 0 or more (map units), not {value:g}.")


@dataclass(frozen=True)
class Cleanup:
    """How a mask's polygons are cleaned (see clean_polygons): `simplify` tolerance in map units,
    parts under `min_area` dropped and holes under `fill_holes` filled (map units squared)."""

    simplify: float = 0.0
    min_area: float = 0.0
    fill_holes: float = 0.0

    def __post_init__(self):
        check_cleanup(self.simplify, self.min_area, self.fill_holes)

    def geometry(self, mask: np.ndarray, transform: Affine):
        """mask_to_geometry with this clean-up."""
        return mask_to_geometry(mask, transform, self.simplify, self.min_area, self.fill_holes)


def reproject_geometry(geometry, src_crs, dst_crs, max_segment: Optional[float] = None):
    """Reproject a shapely geometry. Straight pixel edges are densified first (max_segment map
    units; default one hundredth of the geometry's size) so they stay true after projection."""
    import shapely
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError

    try:
        src, dst = CRS.from_user_input(src_crs), CRS.from_user_input(dst_crs)
    except CRSError as exc:
        raise CrsError(f"Unknown CRS: {exc}.") from exc
    if src == dst or geometry is None:
        return geometry
    if max_segment is None:
        x0, y0, x1, y1 = geometry.bounds
        max_segment = max(x1 - x0, y1 - y0) / 100 or 1.0
    transformer = Transformer.from_crs(src, dst, always_xy=True)
    dense = shapely.segmentize(geometry, max_segment)
    return shapely.transform(dense, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
