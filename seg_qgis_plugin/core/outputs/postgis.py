"""PostGIS as a team's label store: several annotators append at once, reviews never overwrite
each other silently.

A target is `postgresql://USER[:PASSWORD]@HOST:PORT/DB?table=labels` (other query parameters go to
libpq, e.g. `sslmode=require`) or a GDAL-style `PG:dbname=DB host=HOST user=USER table=labels`
(`tables=` is accepted too). The table defaults to `labels` and may be `schema.table`; each part
is letters, digits, `_` or `-` and is always quoted (so `Labels_Mixed` stays mixed-case, and no
name can carry SQL). `display_target` shows a target with its password hidden.

Table: `fid` bigserial key, `geom` geometry(MultiPolygon, SRID) with a GiST index, the Seg fields
(labels.FIELDS: text, double precision, bigint) and `version` integer (1 when inserted, +1 on every
update). Geometries travel as WKB, in the table's SRID (labels are reprojected to it).

- Appends (`PostgisLabelWriter`, used by vectors.LabelWriter for these targets) are one
  transaction per writer, committed on close and rolled back on any failure or cancel: concurrent
  appenders each add all their rows or none, and never lose another's (plain INSERTs need no lock;
  only creating the table takes an advisory lock).
- Review edits (`update_label`) use optimistic locking: the UPDATE applies only where `version`
  still equals the version the editor read, else StaleLabelError tells them to reload.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import OutputError, SegError
from ..engine.labels import FIELDS, Label, check_field_types

SQL_TYPES = {"str": "text", "float": "double precision", "int": "bigint"}
DEFAULT_TABLE = "labels"
_NAME_PART = re.compile(r"^[^\W\d]\w*(?:-\w+)*$")


class StaleLabelError(OutputError):
    """A review edit was made on a label that someone else changed since it was read."""


def is_postgis(target) -> bool:
    """Whether an output names a PostGIS table rather than a file."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://", "PG:"))


def parse_target(target: str) -> Tuple[str, str]:
    """(libpq connection string, table) of a postgresql:// URL or a PG: string. OutputError in
    one sentence for a URL that cannot be read or a table name that is not a plain name."""
    if target.startswith("PG:"):
        parts, table = [], DEFAULT_TABLE
        for item in target[3:].split():
            key, _, value = item.partition("=")
            if key in ("table", "tables"):
                table = value.strip("'\"").split(",")[0]
            else:
                parts.append(item)
        return " ".join(parts), check_table_name(table)
    try:
        url = urlsplit(target)
        url.port  # noqa: B018 (reading it checks it)
    except ValueError as exc:
        raise OutputError(f"{display_target(target)} is not a PostgreSQL URL Seg can read ({exc}); write "
                          "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB?table=NAME.") from None
    query = parse_qsl(url.query, keep_blank_values=True)
    table = next((v for k, v in query if k == "table"), DEFAULT_TABLE)
    rest = urlencode([(k, v) for k, v in query if k != "table"])
    return urlunsplit((url.scheme, url.netloc, url.path, rest, "")), check_table_name(table)


def check_table_name(table: str) -> str:
    """`table` (or `schema.table`) when each part is a plain name: letters, digits, `_` and `-`,
    not starting with a digit, at most 63 bytes; else OutputError in one sentence."""
    parts = table.split(".")
    if len(parts) > 2 or not all(_NAME_PART.match(p) and len(p.encode("utf-8")) <= 63 for p in parts):
        raise OutputError(f"{table!r} is not a table name Seg accepts; use letters, digits, '_' and '-' "
                          "(not first), optionally as schema.table.")
    return table


def display_target(target: str) -> str:
    """`target` as it may be shown: the password of a URL (or of a PG: string or a query
    parameter) replaced by ***; anything else as it is."""
    if not is_postgis(target):
        return target
    hidden = re.sub(r"(?i)(password\s*=\s*)('[^']*'|[^\s&]*)", r"\1***", target)
    return re.sub(r"^(postgres(?:ql)?://[^:/@?#\[]*:)[^@/?#]*@", r"\1***@", hidden)


def describe(target: str) -> str:
    """The target without its password, for messages."""
    try:
        dsn, table = parse_target(target)
    except OutputError:
        return display_target(target)
    try:
        from psycopg2.extensions import parse_dsn

        p = parse_dsn(dsn)
    except Exception:
        return f"table {table}"
    return f"table {table} in database {p.get('dbname', '?')} on {p.get('host', 'localhost')}:{p.get('port', 5432)}"


def connect(target: str):
    """An open psycopg2 connection (autocommit off) to a database with PostGIS. Raises OutputError
    in one sentence when psycopg2 is missing, the server refuses, or PostGIS is not installed."""
    try:
        import psycopg2
    except ImportError as exc:
        from ..errors import MissingDependency

        raise MissingDependency("Writing to PostGIS needs psycopg2; install python3-psycopg2 or `pip install psycopg2-binary`.") from exc
    dsn, _ = parse_target(target)
    try:
        conn = psycopg2.connect(dsn, connect_timeout=10)
    except psycopg2.Error as exc:
        first = (str(exc).strip().splitlines() or ["no reason given"])[0]
        raise OutputError(f"The database for {describe(target)} refused the connection ({first}).") from exc
    with conn.cursor() as cur:
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
        has_postgis = cur.fetchone() is not None
    conn.rollback()
    if not has_postgis:
        conn.close()
        raise OutputError(f"The database for {describe(target)} lacks PostGIS; run CREATE EXTENSION postgis in it as its owner.")
    return conn


def _ident(table: str):
    from psycopg2 import sql

    return sql.Identifier(*check_table_name(table).split(".", 1))


def table_srid(conn, table: str) -> Optional[int]:
    """The SRID of the table's `geom` column, or None when the table does not exist. The name is
    looked up quoted, as it is created (mixed case kept). OutputError in one sentence when the
    table has no PostGIS geometry column `geom` with an SRID."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (_ident(table).as_string(conn),))
        oid = cur.fetchone()[0]
        if oid is None:
            return None
        cur.execute("SELECT format_type(atttypid, atttypmod), postgis_typmod_srid(atttypmod) FROM pg_attribute "
                    "WHERE attrelid = %s::regclass AND attname = 'geom' AND NOT attisdropped", (oid,))
        row = cur.fetchone()
    if row is None or not str(row[0]).startswith("geometry"):
        raise OutputError(f"The table {table} has no PostGIS geometry column 'geom'; choose a table Seg made, or a new one.")
    if not row[1]:
        raise OutputError(f"The geometry column of the table {table} has no SRID; give it one (geometry(MultiPolygon, EPSG code)).")
    return int(row[1])


def check_postgis_output(target: str, mode: str = "create") -> Optional[dict]:
    """Before any work: the database is reachable, has PostGIS, and the table fits `mode`
    ("create": it must not exist). Returns {"crs": ...} of an existing table when appending."""
    conn = connect(target)
    try:
        _, table = parse_target(target)
        srid = table_srid(conn, table)
        conn.rollback()
    finally:
        conn.close()
    if srid is None or mode == "overwrite":
        return None
    if mode == "create":
        raise OutputError(f"The {describe(target)} already exists; choose another table, append to it or overwrite it.")
    return {"crs": f"EPSG:{srid}", "has_layer": True}


def _srid_of(crs: str) -> int:
    from pyproj import CRS

    code = CRS.from_user_input(crs).to_epsg()
    if code is None:
        raise OutputError("PostGIS needs an EPSG code for the labels' CRS, and this CRS has none; reproject the raster first.")
    return int(code)


class PostgisLabelWriter:
    """LabelWriter's interface (add / close / discard, a context manager) over one PostGIS
    transaction: rows are inserted in batches as labels come (memory holds one batch) and become
    visible to others only at commit on close; an exception or discard rolls everything back."""

    def __init__(self, target: str, crs: Optional[str] = None, layer: Optional[str] = None, mode: str = "create",
                 batch: int = 512, fields: Optional[Sequence] = None, layer_metadata: Optional[Dict[str, str]] = None,
                 style=None):
        self.target, self.mode, self.batch = target, mode, batch
        self.fields = tuple(fields) if fields else FIELDS
        self.path = target
        dsn, self.table = parse_target(target)
        if layer:
            self.table = layer
        self.existing = check_postgis_output(target, mode)
        self.crs = (self.existing or {}).get("crs") or crs
        self.count = 0
        self._pending: List[Label] = []
        self._conn = None
        self._srid: Optional[int] = None

    def __enter__(self) -> "PostgisLabelWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def add(self, label: Label) -> None:
        check_field_types(label.attributes, self.fields)
        self._pending.append(label)
        self.count += 1
        if len(self._pending) >= self.batch:
            self._guard(self._flush)

    def close(self) -> str:
        self._guard(self._flush)
        try:
            self._conn.commit()
        except Exception as exc:
            self.discard()
            raise OutputError(f"The {describe(self.target)} did not take the labels ({_first(exc)}); nothing was added.") from exc
        self._conn.close()
        self._conn = None
        return self.target

    def discard(self) -> None:
        if self._conn is not None:
            try:
                self._conn.rollback()
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def _guard(self, fn) -> None:
        import psycopg2

        try:
            fn()
        except psycopg2.Error as exc:
            self.discard()
            raise OutputError(f"Writing to the {describe(self.target)} failed ({_first(exc)}); nothing was added.") from exc
        except BaseException:
            self.discard()
            raise

    def _open(self) -> None:
        from psycopg2 import sql

        self._conn = connect(self.target)
        self.crs = self.crs or (self._pending[0].crs if self._pending else None)
        if self.crs is None:
            raise OutputError("There are no labels to write and no CRS for an empty table.")
        with self._conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
            srid = table_srid(self._conn, self.table)
            if srid is not None and self.mode == "overwrite":
                cur.execute(sql.SQL("DROP TABLE {}").format(_ident(self.table)))
                srid = None
            elif srid is not None and self.mode == "create":
                raise OutputError(f"The {describe(self.target)} was made by another program meanwhile; choose another table or append to it.")
            if srid is None:
                srid = _srid_of(self.crs)
                columns = [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(SQL_TYPES[k])) for n, k, _ in self.fields]
                cur.execute(sql.SQL("CREATE TABLE {} (fid bigserial PRIMARY KEY, geom geometry(MultiPolygon, {}), {}, "
                                    "version integer NOT NULL DEFAULT 1)").format(
                    _ident(self.table), sql.Literal(srid), sql.SQL(", ").join(columns)))
                cur.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(_ident(self.table)))
        self._srid = srid
        self.crs = f"EPSG:{srid}"

    def _flush(self) -> None:
        from psycopg2 import sql
        from psycopg2.extras import execute_values
        from ..geo.wkb import to_wkb
        from shapely.geometry import MultiPolygon

        from ..geo.vectorize import reproject_geometry

        if self._conn is None:
            self._open()
        if not self._pending:
            return
        names = [n for n, _, _ in self.fields]
        rows = []
        for lab in self._pending:
            geom = reproject_geometry(lab.geometry, lab.crs, self.crs)
            if geom.geom_type == "Polygon":
                geom = MultiPolygon([geom])
            rows.append((to_wkb(geom, hex=False), *[lab.attributes.get(n) for n in names]))
        query = sql.SQL("INSERT INTO {} (geom, {}) VALUES %s").format(
            _ident(self.table), sql.SQL(", ").join(map(sql.Identifier, names)))
        template = "(ST_GeomFromWKB(%s, " + str(int(self._srid)) + ")" + ", %s" * len(names) + ")"
        with self._conn.cursor() as cur:
            execute_values(cur, query, [(_binary(r[0]), *r[1:]) for r in rows], template=template, page_size=200)
        self._pending = []


def read_postgis(target: str) -> List[Label]:
    """Every row of the table as Labels (CRS EPSG:srid); attributes hold the Seg fields present
    plus `fid` and `version` (what update_label needs), ordered by fid."""
    from psycopg2 import sql
    from shapely import from_wkb

    conn = connect(target)
    _, table = parse_target(target)
    try:
        srid = table_srid(conn, table)
        if srid is None:
            raise SegError(f"The {describe(target)} does not exist.")
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT ST_AsBinary(geom), * FROM {} ORDER BY fid").format(_ident(table)))
            names = [d.name for d in cur.description][1:]
            labels = []
            for row in cur.fetchall():
                attrs = {n: v for n, v in zip(names, row[1:]) if n != "geom"}
                labels.append(Label(from_wkb(bytes(row[0])), f"EPSG:{srid}", attrs))
        conn.rollback()
        return labels
    finally:
        conn.close()


def update_label(conn, fid: int, changes: Dict[str, object], expected_version: int, table: Optional[str] = None) -> int:
    """Apply a review edit to label `fid` only if nobody changed it since it was read at
    `expected_version`; returns the new version. `conn`: a psycopg2 connection or a target string
    (then the table comes from it). changes: column -> value (a "geometry" key takes a shapely
    geometry in the table's SRID). Commits on success; raises StaleLabelError (nothing changed)
    when the stored version differs, SegError when the label does not exist."""
    from psycopg2 import sql
    from ..geo.wkb import to_wkb

    owned = isinstance(conn, str)
    if owned:
        target = conn
        table = table or parse_target(target)[1]
        conn = connect(target)
    table = table or DEFAULT_TABLE
    try:
        sets, values = [], []
        for name, value in changes.items():
            if name in ("fid", "version"):
                raise SegError(f"The {name} of a label cannot be edited.")
            if name == "geometry":
                sets.append(sql.SQL("geom = ST_Multi(ST_SetSRID(ST_GeomFromWKB(%s), %s))"))
                values += [_binary(to_wkb(value)), table_srid(conn, table)]
            else:
                sets.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
                values.append(value)
        sets.append(sql.SQL("version = version + 1"))
        with conn.cursor() as cur:
            cur.execute(sql.SQL("UPDATE {} SET {} WHERE fid = %s AND version = %s RETURNING version").format(
                _ident(table), sql.SQL(", ").join(sets)), values + [fid, expected_version])
            row = cur.fetchone()
            if row is None:
                cur.execute(sql.SQL("SELECT version FROM {} WHERE fid = %s").format(_ident(table)), (fid,))
                now = cur.fetchone()
                conn.rollback()
                if now is None:
                    raise SegError(f"Label {fid} is not in table {table}; it may have been deleted.")
                raise StaleLabelError(f"Label {fid} was changed by someone else since you read it (version {now[0]}, "
                                      f"yours {expected_version}); reload it and make your edit again.")
        conn.commit()
        return int(row[0])
    except BaseException:
        if not conn.closed:
            conn.rollback()
        raise
    finally:
        if owned:
            conn.close()


def _binary(data: bytes):
    import psycopg2

    return psycopg2.Binary(data)


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
