"""A request's inputs, whichever door gave them: a vector layer as a file path (with its layer), a
GeoDataFrame (the API) or a sequence of Labels (Processing, the dock), always read as Labels with
their CRS (or as a quality LabelTable); lists of names and paths; and the one check that file
outputs other than layers do not exist yet (without overwrite)."""
from __future__ import annotations

import math
import os
from typing import List, Optional, Sequence, Tuple

from ..errors import CrsError, OutputError


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


def label_table(value, layer: Optional[str] = None):
    """A core.quality.table.LabelTable from a file path, a LabelTable, a GeoDataFrame or Labels
    (rows numbered from 1 in their order, as a GeoPackage numbers a layer written whole)."""
    import numpy as np

    from ..quality.table import LabelTable, read_table

    if is_path(value):
        return read_table(os.fspath(value), layer)
    if isinstance(value, LabelTable):
        return value
    frame_crs = getattr(value, "crs", None)
    labels = read_layer(value)
    crs = labels[0].crs if labels else frame_crs.to_wkt() if frame_crs is not None else None
    if crs is None:
        raise CrsError("The layer has no CRS; set one (GeoDataFrame.set_crs) first.")
    geometries = np.empty(len(labels), dtype=object)
    geometries[:] = [lab.geometry for lab in labels]
    columns = {}
    for lab in labels:
        columns.update({name: [] for name in lab.attributes if name not in columns})
    for name, values in columns.items():
        values.extend(lab.attributes.get(name) for lab in labels)
    return LabelTable(geometries, np.arange(1, len(labels) + 1, dtype=np.int64), crs, columns)


def names(value) -> Optional[Tuple[str, ...]]:
    """"a, b" or a sequence -> ("a", "b"); None or nothing -> None."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    found = tuple(v.strip() for v in items if v.strip())
    return found or None


def paths(value) -> Tuple[str, ...]:
    """One path or a sequence of them -> a tuple of str."""
    return (os.fspath(value),) if is_path(value) else tuple(os.fspath(v) for v in value)


def refuse_existing(targets: Sequence[Optional[str]], overwrite: bool) -> None:
    """Refuse, before any work, a file output that exists when it may not be overwritten."""
    for path in targets:
        if path and os.path.exists(path) and not overwrite:
            raise OutputError(f"{os.path.abspath(path)} already exists; choose another name or overwrite it.")


def _plain(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    item = getattr(value, "item", None)  # numpy scalars
    return item() if callable(item) and not isinstance(value, (str, bytes)) else value
