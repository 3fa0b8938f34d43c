"""QgsGeometry <-> shapely, through WKB (exact: no rounding, holes and multi-parts kept)."""
from __future__ import annotations

from qgis.core import QgsGeometry


def to_shapely(geometry: QgsGeometry):
    """A QgsGeometry as a shapely geometry (None for a null or empty one)."""
    from shapely import from_wkb

    if geometry is None or geometry.isNull() or geometry.isEmpty():
        return None
    return from_wkb(bytes(geometry.asWkb()))


def from_shapely(geometry) -> QgsGeometry:
    """A shapely geometry as a QgsGeometry (null for None)."""
    from ..core.geo.wkb import to_wkb

    out = QgsGeometry()
    if geometry is None or geometry.is_empty:
        return out
    out.fromWkb(to_wkb(geometry))
    return out
