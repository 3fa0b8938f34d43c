"""A label layer as columns: the form QA and agreement work on.

`LabelTable` holds shapely geometries (object ndarray, None for a null geometry), the layer's
feature ids (int64) and the attribute columns (lists), in one CRS. `metric_frame` gives the same
geometries in a frame measured in metres: the layer's own CRS scaled to metres when it is
projected, or a local Lambert azimuthal equal-area projection centred on the data when it is
geographic (areas exact; lengths within 0.5 % up to ~600 km from the centre).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import CrsError, SegError
from ..geo.layers import data_layer
from ..outputs.atomic import SHAPEFILE_SIDECARS, atomic_path


@dataclass
class LabelTable:
    """geometries: object ndarray (n,) of shapely geometries or None; fids: int64 (n,) feature ids
    as the layer (and QGIS) numbers them; columns: attribute name -> list of n plain values;
    crs: WKT or "EPSG:n"."""

    geometries: np.ndarray
    fids: np.ndarray
    crs: str
    columns: Dict[str, list] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.fids)

    def column(self, name: Optional[str]) -> Optional[list]:
        return self.columns.get(name) if name else None

    def subset(self, index) -> "LabelTable":
        index = np.asarray(index, dtype=np.int64)
        return LabelTable(self.geometries[index], self.fids[index], self.crs,
                          {n: [v[i] for i in index] for n, v in self.columns.items()})


def read_table(path: str, layer: Optional[str] = None) -> LabelTable:
    """Every feature of a vector layer, null geometries included. Raises SegError in one sentence
    when the file is missing, unreadable or has no CRS."""
    import pyogrio
    from shapely import from_wkb

    if not os.path.exists(path):
        raise SegError(f"{path} does not exist.")
    try:
        meta, fids, wkb, data = pyogrio.raw.read(path, layer=data_layer(path, layer), return_fids=True)
    except Exception as exc:
        raise SegError(f"{path} is not a vector layer GDAL can read ({str(exc).splitlines()[0]}).") from exc
    if not meta.get("crs"):
        raise CrsError(f"{path} has no CRS; assign one before checking it.")
    geometries = np.empty(len(wkb), dtype=object)
    geometries[:] = list(from_wkb(wkb))
    columns = {name: [_plain(v) for v in values] for name, values in zip(meta["fields"], data)}
    return LabelTable(geometries, np.asarray(fids, dtype=np.int64), meta["crs"], columns)


def to_crs(geometries: np.ndarray, src_crs: str, dst_crs: str) -> np.ndarray:
    """Geometries (object ndarray, None allowed) from `src_crs` to `dst_crs`."""
    import shapely
    from pyproj import Transformer

    src, dst = _crs(src_crs), _crs(dst_crs)
    if src == dst:
        return geometries
    transformer = Transformer.from_crs(src, dst, always_xy=True)
    out = shapely.transform(geometries, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
    return np.asarray(out, dtype=object)


@dataclass(frozen=True)
class MetricFrame:
    """Where lengths are metres. crs: the frame's CRS (WKT); to_metric: callable(geometries) ->
    geometries in the frame; from_metric: the way back to the layer CRS."""

    crs: str
    scale: float  # metres per frame unit before scaling (1 for a local projection)
    to_metric: object
    from_metric: object


def metric_frame(geometries: np.ndarray, crs: str) -> MetricFrame:
    """A frame in metres for `geometries` (in `crs`); see the module docstring."""
    import shapely

    source = _crs(crs)
    if source.is_projected:
        factor = source.axis_info[0].unit_conversion_factor if source.axis_info else 1.0
        if abs(factor - 1.0) < 1e-12:
            return MetricFrame(source.to_wkt(), 1.0, lambda g: g, lambda g: g)
        return MetricFrame(source.to_wkt(), factor, lambda g: np.asarray(shapely.transform(g, lambda xy: xy * factor), dtype=object),
                           lambda g: np.asarray(shapely.transform(g, lambda xy: xy / factor), dtype=object))
    if not source.is_geographic:
        raise CrsError(f"The CRS {source.name!r} is neither projected nor geographic; reproject the labels first.")
    present = geometries[~shapely.is_missing(geometries)] if len(geometries) else geometries
    bounds = shapely.total_bounds(present) if len(present) else np.array([0.0, 0.0, 0.0, 0.0])
    lon, lat = (0.0, 0.0) if np.isnan(bounds).any() else ((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    local = f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
    wkt = _crs(local).to_wkt()
    return MetricFrame(wkt, 1.0, lambda g: to_crs(g, crs, wkt), lambda g: to_crs(g, wkt, crs))


def write_layer(path: str, geometries: Sequence, columns: Dict[str, list], crs: str, overwrite: bool = False,
                layer: Optional[str] = None, geometry_type: str = "MultiPolygon") -> str:
    """Write a layer atomically: into a temporary folder beside `path`, moved into place whole.
    A new layer of an existing GeoPackage (not `overwrite`) is added to that file through its own
    transactions (geopackage.add_layer), never by replacing it, so its other layers stay.
    Column types follow the values (float, int or text; None stays NULL)."""
    import pyogrio.raw
    from ..geo.wkb import to_wkb

    from ..outputs.vectors import check_output, driver_for

    check_output(path, layer, mode="overwrite" if overwrite else "create")
    driver = driver_for(path)
    path = os.path.abspath(path)
    names = list(columns)
    data = [_array(columns[n]) for n in names]
    wkb = np.array([None if g is None else to_wkb(g) for g in geometries], dtype=object)
    layer = (layer or os.path.splitext(os.path.basename(path))[0]) if driver == "GPKG" else None

    def write(target: str, rows: bool = True, append: bool = False) -> None:
        pyogrio.raw.write(target, wkb if rows else wkb[:0], [d if rows else d[:0] for d in data], names, layer=layer,
                          driver=driver, geometry_type=geometry_type, crs=crs, promote_to_multi=geometry_type.startswith("Multi"),
                          append=append)

    if driver == "GPKG" and not overwrite and os.path.exists(path):
        from ..outputs.geopackage import add_layer

        add_layer(path, layer, write)
        return path
    sidecars = SHAPEFILE_SIDECARS if driver == "ESRI Shapefile" else ()
    with atomic_path(path, sidecars=sidecars) as tmp:  # also held back by publish.outputs_together
        write(tmp)
    return path


def _array(values: List) -> np.ndarray:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        return np.array([int(bool(v)) if v is not None else 0 for v in values], dtype=np.int32)
    if present and all(isinstance(v, (int, np.integer)) for v in present) and len(present) == len(values):
        return np.array(values, dtype=np.int64)
    if present and all(isinstance(v, (int, float, np.number)) for v in present):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return np.array([None if v is None else str(v) for v in values], dtype=object)


def _crs(crs):
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise CrsError(f"Unknown CRS: {str(exc).splitlines()[0]}.") from exc


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value
