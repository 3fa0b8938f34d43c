"""Writing and reading label layers: GeoPackage (default), GeoJSON, FlatGeobuf, Shapefile.

Every write happens in a temporary folder beside the output and is moved into place only when it
is whole, so a full disk or a cancelled run never leaves a half-written file, and appending never
loses the features already there. Appended features are reprojected to the layer's own CRS.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import OutputError, SegError
from ..engine.labels import FIELDS, Label
from ..geo.vectorize import reproject_geometry

DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".fgb": "FlatGeobuf", ".shp": "ESRI Shapefile"}
SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix")


def driver_for(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in DRIVERS:
        raise OutputError(f"Cannot tell the format of {path}; use one of {', '.join(sorted(DRIVERS))}.")
    return DRIVERS[ext]


def check_output(path: str, layer: Optional[str] = None, mode: str = "create") -> Optional[dict]:
    """Check, before any work, that `path` can take labels in `mode`. Returns what is known of the
    existing layer when appending (its CRS, and its features for formats rewritten whole), else
    None. Raises OutputError with one sentence."""
    from pyogrio.errors import DataSourceError

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
        return _existing_layer(path, layer, driver)  # append, or a new layer in an existing GeoPackage
    except DataSourceError as exc:
        raise OutputError(f"{path} exists but is not a readable {driver} file; choose another name.") from exc


class LabelWriter:
    """Labels written to `path` as they come. A GeoPackage is filled in batches of at most `batch`
    labels or `batch_vertices` vertices, so memory holds one batch, not the layer; the other formats cannot be appended to and are written
    whole on close. Everything goes to a temporary folder beside `path` and is moved into place on
    close, so `path` appears or changes only when complete. As a context manager, an exception
    discards the work and leaves `path` as it was.

    mode: "create" (the file, or the GeoPackage layer, must not exist), "append" (add to the layer,
    creating it if needed; existing features are kept, new ones reprojected to its CRS) or
    "overwrite". crs: the CRS of a new layer (default: the first label's)."""

    def __init__(self, path: str, crs: Optional[str] = None, layer: Optional[str] = None, mode: str = "create",
                 batch: int = 512, batch_vertices: int = 1_000_000):
        self.existing = check_output(path, layer, mode)
        self.driver = driver_for(path)
        self.path = os.path.abspath(path)
        self.layer = layer or os.path.splitext(os.path.basename(path))[0]
        self.crs = (self.existing or {}).get("crs") or crs
        self.batch, self.batch_vertices = batch, batch_vertices
        self.count = 0
        self._pending: List[Label] = []
        self._pending_vertices = 0
        folder = os.path.dirname(self.path)
        try:
            self._tmpdir = tempfile.mkdtemp(dir=folder, prefix=".seg-write-")
        except OSError as exc:
            raise OutputError(f"Cannot write in {folder}: {exc.strerror or exc}.") from exc
        self._tmp = os.path.join(self._tmpdir, os.path.basename(self.path))
        self._started = False  # whether the temporary file holds the layer yet
        if self.existing and self.driver == "GPKG":
            self._guard(shutil.copy2, self.path, self._tmp)
            self._started = self.existing["has_layer"]

    def __enter__(self) -> "LabelWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def add(self, label: Label) -> None:
        from shapely import get_num_coordinates

        self._pending.append(label)
        self._pending_vertices += int(get_num_coordinates(label.geometry))
        self.count += 1
        if self.driver == "GPKG" and (len(self._pending) >= self.batch or self._pending_vertices >= self.batch_vertices):
            self._guard(self._flush)

    def close(self) -> str:
        try:
            self._guard(self._finish)
        finally:
            self.discard()
        return self.path

    def discard(self) -> None:
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def _flush(self) -> None:
        geoms, columns = self._columns(self._pending)
        _write(self._tmp, self.layer, self.driver, self.crs, geoms, columns, append=self._started)
        self._started = True
        self._pending, self._pending_vertices = [], 0

    def _finish(self) -> None:
        self.crs = self.crs or (self._pending[0].crs if self._pending else None)
        if self.crs is None and not self._started:
            raise OutputError("There are no labels to write and no CRS for an empty layer.")
        if self.driver == "GPKG":
            if self._pending or not self._started:
                self._flush()
        else:
            geoms, columns = self._columns(self._pending)
            if self.existing:
                old_geoms, old = self.existing["geometries"], self.existing["features"]
                for n in set(old) - set(columns):
                    columns[n] = [None] * len(geoms)
                columns = {n: list(old.get(n, [None] * len(old_geoms))) + columns[n] for n in columns}
                geoms = old_geoms + geoms
            _write(self._tmp, self.layer, self.driver, self.crs, geoms, columns, append=False)
        _move_into_place(self._tmpdir, self.path, self.driver)

    def _columns(self, labels: Sequence[Label]):
        self.crs = self.crs or labels[0].crs
        names = [name if self.driver != "ESRI Shapefile" else short for name, _, short in FIELDS]
        geoms = [reproject_geometry(lab.geometry, lab.crs, self.crs) for lab in labels]
        return geoms, {n: [lab.attributes.get(name) for lab in labels] for n, (name, _, _) in zip(names, FIELDS)}

    def _guard(self, fn, *args) -> None:
        """Run a step; an OS failure (full disk, permissions) discards the work in one sentence."""
        try:
            fn(*args)
        except OSError as exc:
            self.discard()
            if isinstance(exc, OutputError):
                raise
            raise OutputError(f"Cannot write {self.path}: {exc.strerror or exc}; nothing was changed.") from exc


def write_labels(labels: Sequence[Label], path: str, crs: Optional[str] = None, layer: Optional[str] = None,
                 mode: str = "create") -> str:
    """Write `labels` to `path` atomically (see LabelWriter for the modes). Returns the path."""
    with LabelWriter(path, crs, layer, mode) as writer:
        for label in labels:
            writer.add(label)
    return writer.path


def read_labels(path: str, layer: Optional[str] = None) -> List[Label]:
    """Every feature of a polygon layer as Labels (geometry in the layer's CRS)."""
    import pyogrio
    from shapely import from_wkb

    if not os.path.exists(path):
        raise SegError(f"{path} does not exist.")
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


def _write(path, layer, driver, crs, geoms, columns: Dict[str, list], append: bool) -> None:
    import pyogrio.raw
    from shapely import to_wkb

    types = {name: kind for name, kind, _ in FIELDS}
    types.update({short: kind for _, kind, short in FIELDS})
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
    pyogrio.raw.write(path, wkb, data, fields, layer=layer if driver == "GPKG" else None, driver=driver,
                      geometry_type="MultiPolygon", crs=crs, append=append, promote_to_multi=True, **kwargs)


def _has_layer(path: str, layer: str) -> bool:
    import pyogrio

    return layer in [name for name, _ in pyogrio.list_layers(path)]


def _existing_layer(path: str, layer: str, driver: str) -> dict:
    import pyogrio

    has_layer = driver != "GPKG" or _has_layer(path, layer)
    info = {"has_layer": has_layer, "crs": None, "features": None}
    if not has_layer:
        return info
    meta = pyogrio.read_info(path, layer=layer if driver == "GPKG" else None)
    expected = {(name if driver != "ESRI Shapefile" else short).lower() for name, _, short in FIELDS}
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


def _move_into_place(tmpdir: str, path: str, driver: str) -> None:
    if driver == "ESRI Shapefile":
        stem = os.path.splitext(path)[0]
        for ext in SIDECARS:
            src = os.path.join(tmpdir, os.path.basename(stem) + ext)
            if os.path.exists(src):
                os.replace(src, stem + ext)
    else:
        os.replace(os.path.join(tmpdir, os.path.basename(path)), path)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
