"""Which layer of a vector file holds the features: the one named, else the first, never the
`layer_styles` table in which QGIS (and Seg) keep a GeoPackage's styles."""
from __future__ import annotations

from typing import Optional

STYLES_TABLE = "layer_styles"


def data_layer(path: str, layer: Optional[str] = None) -> Optional[str]:
    """`layer`, or for a GeoPackage its first layer that is not the styles table (None: the file's only layer)."""
    if layer is not None or not str(path).lower().endswith(".gpkg"):
        return layer
    import pyogrio

    try:
        return next((str(name) for name, _ in pyogrio.list_layers(path) if name != STYLES_TABLE), None)
    except Exception:  # unreadable: the reader that follows says so in its own words
        return None
