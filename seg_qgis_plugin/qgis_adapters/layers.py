"""The layer a user picked -> what the core reads: a GDAL path for rasters, Labels or prompt
features for vector sources."""
from __future__ import annotations

import os
from typing import List, Optional

from qgis.core import QgsFeatureRequest, QgsRasterLayer

from ..core.errors import RasterError
from ..core.engine.labels import Label
from .crs import crs_to_core
from .geometry import to_shapely


def raster_layer_path(layer: Optional[QgsRasterLayer]) -> str:
    """The GDAL path of a raster layer. Refuses layers the core cannot open (WMS/XYZ, memory,
    other providers) with one sentence."""
    if layer is None or not layer.isValid():
        raise RasterError("The raster layer is missing or invalid.")
    provider = layer.providerType()
    if provider != "gdal":
        raise RasterError(f"The layer {layer.name()!r} comes from the {provider} provider; Seg reads only rasters GDAL opens from a "
                          "file (GeoTIFF, VRT, ...): save it as a GeoTIFF first (Export > Save As).")
    source = layer.source().split("|")[0]
    if not (os.path.exists(source) or source.startswith("/vsi")):
        raise RasterError(f"The layer {layer.name()!r} is not a local raster file ({source[:80]}); save it as a GeoTIFF first.")
    return source


def source_crs(source) -> str:
    return crs_to_core(source.sourceCrs())


def source_to_labels(source, feedback=None) -> List[Label]:
    """Every feature of a QgsFeatureSource as a Label: shapely geometry in the source CRS and its
    attributes (plain Python values; NULL becomes None). Features without geometry are dropped."""
    crs = source_crs(source)
    names = source.fields().names()
    labels = []
    for feature in source.getFeatures(QgsFeatureRequest()):
        if feedback is not None and feedback.isCanceled():
            break
        geometry = to_shapely(feature.geometry())
        if geometry is None:
            continue
        labels.append(Label(geometry, crs, {n: plain(feature[n]) for n in names}))
    return labels


def plain(value):
    """A QVariant-ish attribute value as a plain Python value (NULL -> None, QDate -> ISO text)."""
    if value is None:
        return None
    try:
        from qgis.PyQt.QtCore import QDate, QDateTime, QVariant

        if isinstance(value, QVariant):
            return None if value.isNull() else value.value()
        if isinstance(value, QDateTime):
            return value.toString("yyyy-MM-ddThh:mm:ss")
        if isinstance(value, QDate):
            return value.toString("yyyy-MM-dd")
    except ImportError:
        pass
    return value
