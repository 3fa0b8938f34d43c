"""Geometries as WKB, the same whichever GEOS the process loaded first."""
from __future__ import annotations


def to_wkb(geometry, hex: bool = False):
    """shapely.to_wkb with at most three dimensions (a 2D geometry stays 2D, Z is kept).

    shapely 2.1 and later ask GEOS for four (M) by default; inside QGIS 3.22 the shapely wheel's GEOS
    calls resolve to the GEOS 3.11 QGIS loaded first, which refuses that ("WKB output dimension must
    be 2 or 3")."""
    import shapely

    return shapely.to_wkb(geometry, hex=hex, output_dimension=3)
