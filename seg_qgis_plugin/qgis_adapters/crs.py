"""QgsCoordinateReferenceSystem <-> the core's CRS strings ("EPSG:n" or WKT, anything pyproj reads)."""
from __future__ import annotations

from qgis.core import QgsCoordinateReferenceSystem

from ..core.errors import CrsError


def crs_to_core(crs: QgsCoordinateReferenceSystem) -> str:
    """The CRS as a string pyproj reads: its authority id when it has one (exact and short), else
    WKT2. An invalid CRS is an error, never a silent default."""
    if crs is None or not crs.isValid():
        raise CrsError("The layer has no valid CRS; set one in Layer Properties > Source.")
    auth = crs.authid()
    if auth and auth.upper().startswith("EPSG:"):
        return auth
    return crs.toWkt(QgsCoordinateReferenceSystem.WktVariant.WKT_PREFERRED)


def crs_from_core(text: str) -> QgsCoordinateReferenceSystem:
    """An "EPSG:n" or WKT string (as the core and rasterio give it) as a QgsCoordinateReferenceSystem."""
    if not text:
        raise CrsError("A CRS is missing.")
    crs = QgsCoordinateReferenceSystem(text) if text.upper().startswith("EPSG:") else QgsCoordinateReferenceSystem.fromWkt(text)
    if not crs.isValid():
        from pyproj import CRS

        epsg = CRS.from_user_input(text).to_epsg()
        crs = QgsCoordinateReferenceSystem(f"EPSG:{epsg}") if epsg else crs
    if not crs.isValid():
        raise CrsError(f"QGIS does not understand the CRS {text[:60]!r}.")
    return crs
