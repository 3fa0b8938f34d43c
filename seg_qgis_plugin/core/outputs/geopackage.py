"""Appending to a GeoPackage through SQLite's own transactions, never by replacing the file.

A GeoPackage is an SQLite database that other programs (QGIS, another `seg` run) may hold open.
New features are first written whole into a private staging GeoPackage (by GDAL, in batches, so
memory follows a batch), then copied into the target layer with one `INSERT ... SELECT` inside one
`BEGIN IMMEDIATE` transaction: either every new feature lands or none does, the file keeps its
identity (a QGIS that has it open sees the new rows), and two writers wait for each other (SQLite's
busy timeout) instead of one overwriting the other. The layer's spatial index is kept by its own
triggers (the ST_* functions they call are provided here), its feature count by GDAL's count
trigger, and its extent in gpkg_contents is widened in the same transaction.

Cost: the copy reads the staged rows once; the target is never read whole.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import struct
from typing import Callable, List, Optional, Tuple
from urllib.request import pathname2url

from ..errors import OutputError
from .atomic import write_error

_ENVELOPE_DOUBLES = {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}


def append_geopackage(staging: str, target: str, layer: str, timeout: float = 60.0) -> int:
    """Copy every feature of `layer` in the GeoPackage `staging` into the existing `layer` of
    `target` in one transaction. Columns are matched by name (case-insensitive; target columns
    that staging lacks stay NULL); geometries must already be in the target layer's CRS (their
    srs_id is set to the target's). Waits up to `timeout` seconds for other writers.
    Returns the number of features added. Raises OutputError with one sentence; on any failure
    the target is unchanged."""
    target = os.path.abspath(target)
    try:
        conn = sqlite3.connect(_uri(target, "rw"), timeout=timeout, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise write_error(exc, target, True) from exc
    try:
        _register_functions(conn)
        conn.execute("ATTACH DATABASE ? AS staging", (_uri(os.path.abspath(staging), "ro"),))
        conn.execute("BEGIN IMMEDIATE")
        try:
            added = _copy_rows(conn, layer, target)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return added
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise OutputError(f"Another program has been writing {target} for over {timeout:g} s; "
                              "nothing was changed; try again when it is done.") from exc
        raise write_error(exc, target, True) from exc
    except sqlite3.Error as exc:
        raise write_error(exc, target, True) from exc
    finally:
        conn.close()


def _copy_rows(conn: sqlite3.Connection, layer: str, target: str) -> int:
    table, geom, srs_id = _geometry_column(conn, "main", layer, target)
    staged_table, staged_geom, _ = _geometry_column(conn, "staging", layer, "the staged features")
    target_columns = {c.lower(): c for c in _columns(conn, "main", table)}
    pairs = [(target_columns[c.lower()], c) for c in _columns(conn, "staging", staged_table)
             if c.lower() != "fid" and c != staged_geom and c.lower() in target_columns]
    names = ", ".join(_q(t) for t, _ in pairs)
    values = ", ".join(_q(s) for _, s in pairs)
    extent = conn.execute(
        f"SELECT min(ST_MinX(g)), min(ST_MinY(g)), max(ST_MaxX(g)), max(ST_MaxY(g)), count(*) FROM "
        f"(SELECT {_q(staged_geom)} AS g FROM staging.{_q(staged_table)}) WHERE g IS NOT NULL AND NOT ST_IsEmpty(g)").fetchone()
    cursor = conn.execute(
        f"INSERT INTO main.{_q(table)} ({names}{', ' if names else ''}{_q(geom)}) "
        f"SELECT {values}{', ' if values else ''}seg_with_srs({_q(staged_geom)}, ?) FROM staging.{_q(staged_table)} ORDER BY fid",
        (srs_id,))
    if extent[4]:
        conn.execute(
            "UPDATE main.gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), "
            "min_x = min(coalesce(min_x, :x0), :x0), min_y = min(coalesce(min_y, :y0), :y0), "
            "max_x = max(coalesce(max_x, :x1), :x1), max_y = max(coalesce(max_y, :y1), :y1) WHERE lower(table_name) = lower(:t)",
            {"x0": extent[0], "y0": extent[1], "x1": extent[2], "y1": extent[3], "t": table})
    else:
        conn.execute("UPDATE main.gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                     "WHERE lower(table_name) = lower(?)", (table,))
    return cursor.rowcount


def _geometry_column(conn: sqlite3.Connection, schema: str, layer: str, where: str) -> Tuple[str, str, int]:
    row = conn.execute(f"SELECT table_name, column_name, srs_id FROM {schema}.gpkg_geometry_columns "
                       "WHERE lower(table_name) = lower(?)", (layer,)).fetchone()
    if row is None:
        raise OutputError(f"{where} has no layer {layer} with geometries.")
    return row[0], row[1], int(row[2])


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> List[str]:
    return [row[1] for row in conn.execute(f"PRAGMA {schema}.table_info({_q(table)})")]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _uri(path: str, mode: str) -> str:
    return f"file:{pathname2url(path)}?mode={mode}"


def _register_functions(conn: sqlite3.Connection) -> None:
    """The functions GDAL's spatial-index triggers call (SpatiaLite or GDAL normally provide them)."""
    conn.create_function("ST_IsEmpty", 1, lambda blob: None if blob is None else int(_parse(blob)[0]), deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MinY", "ST_MaxX", "ST_MaxY")):
        conn.create_function(name, 1, lambda blob, i=i: None if blob is None else _bounds(blob)[i], deterministic=True)
    conn.create_function("seg_with_srs", 2, _with_srs, deterministic=True)


def _parse(blob: bytes) -> Tuple[bool, Optional[Tuple[float, float, float, float]], int]:
    """GeoPackage geometry blob -> (empty, (minx, miny, maxx, maxy) from its envelope or None,
    offset of the WKB)."""
    blob = bytes(blob)
    if len(blob) < 8 or blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry")
    flags = blob[3]
    order = "<" if flags & 1 else ">"
    doubles = _ENVELOPE_DOUBLES.get((flags >> 1) & 7, 0)
    envelope = None
    if doubles:
        minx, maxx, miny, maxy = struct.unpack_from(order + "4d", blob, 8)
        envelope = (minx, miny, maxx, maxy)
    return bool(flags & 0x10), envelope, 8 + 8 * doubles


def _bounds(blob: bytes) -> Tuple[float, float, float, float]:
    empty, envelope, offset = _parse(blob)
    if envelope is not None:
        return envelope
    from shapely import from_wkb

    return tuple(from_wkb(bytes(blob)[offset:]).bounds)


def _with_srs(blob: Optional[bytes], srs_id: int) -> Optional[bytes]:
    if blob is None:
        return None
    blob = bytes(blob)
    order = "<" if blob[3] & 1 else ">"
    return blob[:4] + struct.pack(order + "i", int(srs_id)) + blob[8:]


def add_layer(target: str, layer: str, write: Callable[..., None]) -> int:
    """Add the new `layer` to the existing GeoPackage `target` without replacing the file, so its
    other layers stay as they are and a program holding it open keeps it. `write(path, rows=True,
    append=False)` writes the layer into the GeoPackage `path` (rows=False: its fields only). The
    rows are staged in a private GeoPackage beside `target`, the empty layer is made in `target`
    (GDAL's own transaction), then the rows are copied in one transaction (append_geopackage).
    Returns the number of rows added; OutputError in one sentence when `target` already has the
    layer (made by another program meanwhile) or cannot be written. If the copy fails the layer
    stays in `target`, empty."""
    import pyogrio

    from .atomic import staging_folder

    target = os.path.abspath(target)
    folder = staging_folder(os.path.dirname(target))
    try:
        staged = os.path.join(folder, "layer.gpkg")
        write(staged)
        if layer.lower() in (name.lower() for name, _ in pyogrio.list_layers(target)):
            raise OutputError(f"The layer {layer} was added to {target} by another program meanwhile; choose another layer name.")
        try:
            write(target, rows=False, append=True)
        except (OSError, RuntimeError) as exc:  # pyogrio's errors are RuntimeErrors
            raise write_error(exc, target, True) from exc
        return append_geopackage(staged, target, layer)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["append_geopackage", "add_layer"]
