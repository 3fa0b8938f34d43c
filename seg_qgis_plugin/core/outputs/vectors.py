"""Writing and reading label layers: GeoPackage (default), GeoJSON, FlatGeobuf, Shapefile.

New files are made in a temporary folder beside the output and moved into place only when whole
(atomic.py); appends to a GeoPackage are one SQLite transaction into the file (geopackage.py); the
other formats are rewritten whole under a lock file. So a full disk or a cancelled run never leaves
a half-written file, and appending, also from several processes at once, never loses features.
Appended features are reprojected to the layer's own CRS.
"""
from __future__ import annotations

import os
import sqlite3
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..geo.layers import data_layer
from ..errors import OutputError, SegError
from ..engine.labels import FIELDS, Label, check_field_types
from ..geo.vectorize import reproject_geometry
from .atomic import SHAPEFILE_SIDECARS, StagedPath, file_lock, write_error
from .geopackage import append_geopackage
from .postgis import check_postgis_output, is_postgis
from .styles import StyleChoice, extend_geopackage_labels_style, layer_qml, qml_beside, save_vector_style, vector_style

DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".fgb": "FlatGeobuf", ".shp": "ESRI Shapefile"}


def driver_for(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in DRIVERS:
        raise OutputError(f"Cannot tell the format of {path}; use one of {', '.join(sorted(DRIVERS))}.")
    return DRIVERS[ext]


def check_output(path: str, layer: Optional[str] = None, mode: str = "create", fields: Optional[Sequence] = None) -> Optional[dict]:
    """Check, before any work, that `path` can take labels in `mode`. Returns what is known of the
    existing layer when appending (its CRS, and its features for formats rewritten whole), else
    None. Raises OutputError with one sentence. fields: the schema appended features need
    (default FIELDS)."""
    from pyogrio.errors import DataSourceError

    if is_postgis(path):
        return check_postgis_output(path, mode)
    driver = driver_for(path)
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    layer = layer or os.path.splitext(os.path.basename(path))[0]
    if not os.path.isdir(folder):
        raise OutputError(f"The folder {folder} does not exist.")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"The folder {folder} is not writable.")
    if not os.path.exists(path) or mode == "overwrite":
        return None
    try:
        if mode == "create" and (driver != "GPKG" or _has_layer(path, layer)):
            raise OutputError(f"{path} already exists; choose another name, append to it or overwrite it.")
        return _existing_layer(path, layer, driver, fields or FIELDS)  # append, or a new layer in an existing GeoPackage
    except DataSourceError as exc:
        raise OutputError(f"{path} exists but is not a readable {driver} file; choose another name.") from exc


class LabelWriter:
    """Labels written to `path` as they come, so `path` appears or changes only when complete.

    New labels are staged in a temporary file beside `path` (a GeoPackage is filled in batches of
    at most `batch` labels or BATCH_VERTICES vertices, so memory holds one batch, not the layer;
    the other formats are written whole on close). On close:
    - a new file (or "overwrite") is moved into place with os.replace;
    - an append to an existing GeoPackage is one SQLite transaction into that file (see
      geopackage.py): never a copy or a replacement, so QGIS may hold it open, and two writers wait
      for each other (busy timeout) instead of losing features;
    - an append to GeoJSON, FlatGeobuf or Shapefile (formats without transactions) rewrites the
      file whole and replaces it, under a lock file beside it, so concurrent Seg appenders take
      turns and none loses the others' features (a program that ignores the lock, such as QGIS
      editing the same file, is not held off).
    A failure (full disk, permissions, GDAL or SQLite errors) or an exception in the `with` block
    leaves `path` as it was and no temporary file behind, and raises OutputError in one sentence.

    mode: "create" (the file, or the GeoPackage layer, must not exist), "append" (add to the layer,
    creating it if needed; existing features are kept, new ones reprojected to its CRS) or
    "overwrite". crs: the CRS of a new layer (default: the first label's).
    fields: the schema, (name, "str" | "float" | "int", Shapefile name) triples (default FIELDS;
    pass FIELDS + extras to add columns, e.g. a time series' track_id); layer_metadata: str -> str
    stored as the layer's GDAL metadata (GeoPackage); style: how the layer opens in QGIS (styles.py):
    "labels" (default: outlines by class), "series", "drift", a styles.VectorStyle, None (no
    style), or a function called with the path of the file this writer makes, once it is whole and
    before it is moved into place. A GeoPackage keeps the style as its layer's default style (in the
    staged file, or in `path` after the commit when the layer is new in an existing GeoPackage);
    other formats get `<name>.qml` beside them when new or overwritten. An append to an existing
    layer keeps its style."""

    BATCH_VERTICES = 1_000_000

    def __new__(cls, path: str, *args, **kwargs):
        if is_postgis(path):  # postgresql:// URLs and PG: strings: one PostGIS transaction (postgis.py)
            from .postgis import PostgisLabelWriter

            return PostgisLabelWriter(path, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, path: str, crs: Optional[str] = None, layer: Optional[str] = None, mode: str = "create",
                 batch: int = 512, fields: Optional[Sequence] = None, layer_metadata: Optional[Dict[str, str]] = None,
                 style: StyleChoice = "labels"):
        self.fields = tuple(fields) if fields else FIELDS
        self.layer_metadata, self.style = layer_metadata, style if callable(style) else vector_style(style)
        self._classes = set()
        self.existing = check_output(path, layer, mode, self.fields)
        self.mode = mode
        self.driver = driver_for(path)
        self.path = os.path.abspath(path)
        self.layer = layer or os.path.splitext(os.path.basename(path))[0]
        self.crs = (self.existing or {}).get("crs") or crs
        self.batch = batch
        self.count = 0
        self._pending: List[Label] = []
        self._pending_vertices = self._vertices = 0
        self._staged = StagedPath(self.path, SHAPEFILE_SIDECARS if self.driver == "ESRI Shapefile" else ())
        self._tmp = self._staged.tmp
        self._started = False  # whether the staged GeoPackage holds the layer yet

    def __enter__(self) -> "LabelWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def add(self, label: Label) -> None:
        from shapely import get_num_coordinates

        check_field_types(label.attributes, self.fields)
        self._classes.add(label.attributes.get("class"))
        self._pending.append(label)
        vertices = int(get_num_coordinates(label.geometry))
        self._pending_vertices += vertices
        self._vertices += vertices
        self.count += 1
        if self.driver == "GPKG" and (len(self._pending) >= self.batch or self._pending_vertices >= self.BATCH_VERTICES):
            self._guard(self._flush)

    def close(self) -> str:
        try:
            self._guard(self._finish)
        finally:
            self.discard()
        return self.path

    def discard(self) -> None:
        self._staged.discard()

    def _flush(self) -> None:
        geoms, columns = self._columns(self._pending)
        _write(self._tmp, self.layer, self.crs, geoms, columns, append=self._started, fields=self.fields,
               layer_metadata=None if self._started else self.layer_metadata)
        self._started = True
        self._pending, self._pending_vertices = [], 0

    def _finish(self) -> None:
        self.crs = self.crs or (self._pending[0].crs if self._pending else None)
        if self.crs is None and not self._started:
            raise OutputError("There are no labels to write and no CRS for an empty layer.")
        if self.driver == "GPKG" and (self._pending or not self._started):
            self._flush()
        with file_lock(self.path):  # decides "new file or append" and publishes without a race
            exists = os.path.exists(self.path) and self.mode != "overwrite"
            if self.driver == "GPKG" and exists:
                self._append_to_geopackage()
                return
            if exists and self.mode == "create":
                raise OutputError(f"{self.path} was made by another program meanwhile; choose another name, append to it or overwrite it.")
            if self.driver != "GPKG":
                self._write_whole(_existing_layer(self.path, self.layer, self.driver, self.fields) if exists else None)
            if self.driver == "GPKG" or callable(self.style):
                self._save_style(self._tmp)
            self._staged.commit()
            if self.driver != "GPKG" and not callable(self.style) and not (exists and os.path.exists(qml_beside(self.path))):
                self._save_style(self.path)

    def _append_to_geopackage(self) -> None:
        has_layer = _has_layer(self.path, self.layer)
        if has_layer and self.mode == "create":
            raise OutputError(f"The layer {self.layer} was added to {self.path} by another program meanwhile; choose another layer name.")
        if has_layer and not (self.existing or {}).get("has_layer"):
            crs = _existing_layer(self.path, self.layer, self.driver, self.fields)["crs"]
            if not _same_crs(crs, self.crs):
                raise OutputError(f"The layer {self.layer} was made in {self.path} by another program meanwhile, in another CRS; nothing was added.")
        if not has_layer:
            names = [name for name, _, _ in self.fields]
            _write(self.path, self.layer, self.crs, [], {n: [] for n in names}, append=True, fields=self.fields,
                   layer_metadata=self.layer_metadata)
        append_geopackage(self._tmp, self.path, self.layer)
        if not has_layer:
            self._save_style(self.path)
        elif self.style is not None and not callable(self.style) and self.style.kind == "labels":
            extend_geopackage_labels_style(self.path, self.layer, self._classes, self.style.colours)

    def _save_style(self, target: str) -> None:
        """The layer's style into the GeoPackage `target`, or beside `target` for other formats."""
        if callable(self.style):
            self.style(target)
            return
        qml = layer_qml(self.style, [name for name, _, _ in self.fields], self._classes)
        if qml is not None:
            save_vector_style(target, self.layer, qml)

    def _write_whole(self, existing: Optional[dict]) -> None:
        if existing:
            self.crs = existing["crs"] or self.crs
        geoms, columns = self._columns(self._pending)
        if existing:
            old_geoms, old = existing["geometries"], existing["features"]
            for n in set(old) - set(columns):
                columns[n] = [None] * len(geoms)
            columns = {n: list(old.get(n, [None] * len(old_geoms))) + columns[n] for n in columns}
            geoms = old_geoms + geoms
        _write(self._tmp, self.layer, self.crs, geoms, columns, append=False, fields=self.fields,
               layer_metadata=self.layer_metadata)

    def _columns(self, labels: Sequence[Label]):
        self.crs = self.crs or labels[0].crs
        names = [name if self.driver != "ESRI Shapefile" else short for name, _, short in self.fields]
        geoms = [reproject_geometry(lab.geometry, lab.crs, self.crs) for lab in labels]
        return geoms, {n: [lab.attributes.get(name) for lab in labels] for n, (name, _, _) in zip(names, self.fields)}

    def _guard(self, fn, *args) -> None:
        """Run a step; any failure discards the staged work. OS, GDAL and SQLite failures (full
        disk, permissions) become an OutputError in one sentence."""
        try:
            fn(*args)
        except BaseException as exc:
            if isinstance(exc, SegError) or not isinstance(exc, (OSError, RuntimeError, sqlite3.Error)):
                self.discard()
                raise  # ours already, KeyboardInterrupt, or a programming error that keeps its traceback
            # before discarding: is the disk full? (GDAL's I/O errors do not say; its temporary copies need twice the data)
            error = write_error(exc, self.path, os.path.exists(self.path), needed=32 * self._vertices, tmp=self._tmp)
            self.discard()
            raise error from exc


def write_labels(labels: Sequence[Label], path: str, crs: Optional[str] = None, layer: Optional[str] = None,
                 mode: str = "create", fields: Optional[Sequence] = None, layer_metadata: Optional[Dict[str, str]] = None,
                 style: StyleChoice = "labels") -> str:
    """Write `labels` to `path` atomically (see LabelWriter for the modes, fields, layer_metadata
    and style). Returns the path."""
    with LabelWriter(path, crs, layer, mode, fields=fields, layer_metadata=layer_metadata, style=style) as writer:
        for label in labels:
            writer.add(label)
    return writer.path


def read_labels(path: str, layer: Optional[str] = None) -> List[Label]:
    """Every feature of a polygon layer as Labels (geometry in the layer's CRS)."""
    import pyogrio
    from shapely import from_wkb

    if is_postgis(path):
        from .postgis import read_postgis

        return read_postgis(path)
    if not os.path.exists(path):
        raise SegError(f"{path} does not exist.")
    layer = data_layer(path, layer)  # its first layer, not the styles table
    try:
        meta, _, geometry, field_data = pyogrio.raw.read(path, layer=layer)
    except Exception as exc:
        raise SegError(f"{path} is not a vector layer GDAL can read ({str(exc).splitlines()[0]}).") from exc
    if not meta.get("crs"):
        raise SegError(f"{path} has no CRS; assign one before using it.")
    names = list(meta["fields"])
    labels = []
    for i, wkb in enumerate(geometry):
        if wkb is None:
            continue
        labels.append(Label(from_wkb(wkb), meta["crs"], {n: _plain(field_data[k][i]) for k, n in enumerate(names)}))
    return labels


def _write(path, layer, crs, geoms, columns: Dict[str, list], append: bool, fields: Sequence = FIELDS,
           layer_metadata: Optional[Dict[str, str]] = None) -> None:
    """Write or append `geoms` and their `columns` as `layer` of `path`, in the format its extension names."""
    import pyogrio.raw
    from ..geo.wkb import to_wkb

    driver = driver_for(path)

    types = {name: kind for name, kind, _ in fields}
    types.update({short: kind for _, kind, short in fields})
    fields, data = [], []
    for name, values in columns.items():
        kind = types.get(name, "str")
        if kind == "float":
            arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        elif kind == "int":
            arr = np.array([0 if v is None else int(v) for v in values], dtype=np.int64)
        else:
            arr = np.array(["" if v is None else str(v) for v in values], dtype=object)
        fields.append(name)
        data.append(arr)
    wkb = np.array([to_wkb(g) if g is not None else None for g in geoms], dtype=object)
    kwargs = {"spatial_index": True} if driver in ("GPKG", "FlatGeobuf") and not append else {}
    if layer_metadata and driver == "GPKG":
        kwargs["layer_metadata"] = layer_metadata
    pyogrio.raw.write(path, wkb, data, fields, layer=layer if driver == "GPKG" else None, driver=driver,
                      geometry_type="MultiPolygon", crs=crs, append=append, promote_to_multi=True, **kwargs)


def _has_layer(path: str, layer: str) -> bool:
    import pyogrio

    return layer in [name for name, _ in pyogrio.list_layers(path)]


def _existing_layer(path: str, layer: str, driver: str, fields: Sequence = FIELDS) -> dict:
    import pyogrio

    has_layer = driver != "GPKG" or _has_layer(path, layer)
    info = {"has_layer": has_layer, "crs": None, "features": None}
    if not has_layer:
        return info
    meta = pyogrio.read_info(path, layer=layer if driver == "GPKG" else None)
    expected = {(name if driver != "ESRI Shapefile" else short).lower() for name, _, short in fields}
    missing = expected - {f.lower() for f in meta["fields"]}
    if missing:
        raise OutputError(f"The layer {layer} in {path} lacks the Seg fields {', '.join(sorted(missing))}; choose a Seg layer or a new file.")
    info["crs"] = meta["crs"]
    if driver != "GPKG":
        from shapely import from_wkb

        m, _, geometry, field_data = pyogrio.raw.read(path)
        info["features"] = {n: list(field_data[k]) for k, n in enumerate(m["fields"])}
        info["geometries"] = [from_wkb(g) if g is not None else None for g in geometry]
    return info


def _same_crs(a, b) -> bool:
    from pyproj import CRS

    try:
        return CRS.from_user_input(a) == CRS.from_user_input(b)
    except Exception:
        return a == b


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
