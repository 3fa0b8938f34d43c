"""PostGIS label tables as QGIS layers: a team's shared target for the Seg dock and the Review panel.

A target is what core/outputs/postgis.py parses: `postgresql://USER[:PASSWORD]@HOST:PORT/DB?table=NAME`
or `PG:dbname=DB host=HOST ... table=NAME`. A table Seg made (fid bigserial key, geom
MultiPolygon, the Seg fields, `version`) is opened as a `postgres` provider layer; a table that does
not exist yet is created empty first, with the Seg schema, in the CRS given. Without a password in
the target, libpq (psycopg2 and QGIS alike) takes it from ~/.pgpass or PGPASSWORD.

Accepted masks go straight to the database through the provider (gui/label_layer.AddLabelCommand:
one INSERT, committed at once, version 1); review edits go through core update_label, which
refuses an edit of a row someone else changed since it was shown (optimistic locking on `version`).
"""
from __future__ import annotations

from typing import Optional
from urllib.parse import quote, urlencode

from qgis.core import QgsDataSourceUri, QgsVectorLayer, QgsWkbTypes

from ..core.errors import OutputError
from ..core.outputs.postgis import PostgisLabelWriter, connect, describe, parse_target, table_srid
from ..qgis_adapters.crs import crs_to_core

SEG_COLUMNS = ("fid", "geom", "version")


def postgis_label_layer(target: str, crs=None, name: Optional[str] = None) -> QgsVectorLayer:
    """The PostGIS label table `target` as a valid QgsVectorLayer (provider "postgres", key fid,
    geometry geom, the table's SRID), named `name` or after the table. A missing table is created
    empty in `crs` (a QgsCoordinateReferenceSystem with an EPSG code). Raises OutputError in one
    sentence when the database refuses the connection or lacks PostGIS, when the table is not a Seg
    label table, or when QGIS cannot open it."""
    dsn, table = parse_target(target)
    conn = connect(target)
    try:
        srid = table_srid(conn, table)
        if srid is not None:
            schema, name_only, columns = _table_columns(conn, table)
        conn.rollback()
    finally:
        conn.close()
    if srid is None:
        if crs is None:
            raise OutputError(f"The {describe(target)} does not exist and there is no CRS to create it in; choose a raster first.")
        PostgisLabelWriter(target, crs=crs_to_core(crs), mode="create").close()
        return postgis_label_layer(target, crs, name)
    missing = [c for c in SEG_COLUMNS if c not in columns]
    if missing:
        raise OutputError(f"The {describe(target)} is not a Seg label table (it lacks the column {', '.join(missing)}); "
                          "choose another table or a new one.")
    uri = _connection_uri(dsn)
    uri.setDataSource(schema, name_only, "geom", "", "fid")
    uri.setSrid(str(srid))
    uri.setWkbType(QgsWkbTypes.Type.MultiPolygon)
    layer = QgsVectorLayer(uri.uri(False), name or name_only, "postgres")
    if not layer.isValid():
        error = layer.dataProvider().error().summary() if layer.dataProvider() else ""
        raise OutputError(f"QGIS cannot open the {describe(target)} as a layer ({(error.strip().splitlines() or ['no reason given'])[0]}).")
    return layer


def is_versioned_postgis(layer) -> bool:
    """Whether review edits of `layer` go through optimistic locking: a PostGIS layer with the
    Seg key `fid` and a `version` column."""
    return (isinstance(layer, QgsVectorLayer) and layer.isValid() and layer.providerType() == "postgres"
            and all(layer.fields().lookupField(c) >= 0 for c in ("fid", "version")))


def target_of_layer(layer: QgsVectorLayer) -> str:
    """A `postgresql://...?table=schema.table` target (for core/outputs/postgis.py) naming the same
    table, on the same database, as the PostGIS `layer`. A QGIS authentication configuration
    (authcfg) is not expanded: libpq then needs the password from ~/.pgpass or PGPASSWORD."""
    uri = QgsDataSourceUri(layer.source())
    netloc = quote(uri.username(), safe="")
    if uri.password():
        netloc += ":" + quote(uri.password(), safe="")
    netloc = (netloc + "@" if netloc else "") + uri.host() + (":" + uri.port() if uri.port() else "")
    query = [("table", f"{uri.schema()}.{uri.table()}" if uri.schema() else uri.table())]
    if uri.service():
        query.append(("service", uri.service()))
    if uri.sslMode() != QgsDataSourceUri.SslMode.SslPrefer:
        query.append(("sslmode", QgsDataSourceUri.encodeSslMode(uri.sslMode())))
    return f"postgresql://{netloc}/{quote(uri.database(), safe='')}?{urlencode(query)}"


def _connection_uri(dsn: str) -> QgsDataSourceUri:
    """libpq connection string or URL -> a QgsDataSourceUri with the same connection."""
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(dsn)
    uri = QgsDataSourceUri()
    ssl = QgsDataSourceUri.decodeSslMode(params["sslmode"]) if "sslmode" in params else QgsDataSourceUri.SslMode.SslPrefer
    if "service" in params:
        uri.setConnection(params["service"], params.get("dbname", ""), params.get("user", ""), params.get("password", ""), ssl)
    else:
        uri.setConnection(params.get("host", ""), params.get("port", ""), params.get("dbname", ""), params.get("user", ""),
                          params.get("password", ""), ssl)
    return uri


def _table_columns(conn, table: str):
    """(schema, table name, column names) of an existing table (`table` as given, maybe schema-qualified)."""
    with conn.cursor() as cur:
        cur.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.oid = to_regclass(%s)", (table,))
        schema, name = cur.fetchone()
        cur.execute("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
                    (table,))
        return schema, name, {row[0] for row in cur.fetchall()}
