"""A request's vector inputs, whichever door gave them: a file path (with its layer), a GeoDataFrame
(the API) or a sequence of Labels (Processing, the dock), always as Labels with their CRS."""
from __future__ import annotations

import math
import os
from typing import List, Optional

from ..errors import CrsError


def is_path(value) -> bool:
    return isinstance(value, (str, bytes, os.PathLike))


def read_layer(value, layer: Optional[str] = None) -> List:
    """Labels of `value`: a vector file (its `layer` in a multi-layer file), a GeoDataFrame or a
    sequence of Labels (returned as a list)."""
    if is_path(value):
        from ..outputs.vectors import read_labels

        return read_labels(os.fspath(value), layer)
    if hasattr(value, "geometry") and hasattr(value, "iterrows"):
        return frame_labels(value)
    return list(value)


def frame_labels(frame) -> List:
    """A GeoDataFrame's rows as Labels (its CRS; NaN values become None)."""
    from ..engine.labels import Label

    if frame.crs is None and len(frame):
        raise CrsError("The table has no CRS; set one (GeoDataFrame.set_crs) so it can be placed on the raster.")
    crs = frame.crs.to_wkt() if frame.crs is not None else None
    geometry_column = frame.geometry.name
    columns = [c for c in frame.columns if c != geometry_column]
    labels = []
    for geometry, values in zip(frame.geometry, frame[columns].itertuples(index=False, name=None)):
        if geometry is None or geometry.is_empty:
            continue
        labels.append(Label(geometry, crs, {c: _plain(v) for c, v in zip(columns, values)}))
    return labels


def _plain(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    item = getattr(value, "item", None)  # numpy scalars
    return item() if callable(item) and not isinstance(value, (str, bytes)) else value
