"""PostGIS as a label store, against a real PostgreSQL + PostGIS (tools/start_postgis.sh starts one;
SEG_TEST_PG overrides the database URL). Skipped, with the reason, when no server answers."""
from __future__ import annotations

import multiprocessing
import os
import uuid

import pytest
from shapely.geometry import MultiPolygon, box

from seg_qgis_plugin.core.engine.labels import FIELD_NAMES, Label, attributes
from seg_qgis_plugin.core.errors import OutputError, SegError

URL = os.environ.get("SEG_TEST_PG", "postgresql://seg:seg@localhost:5432/seg_test")
CRS = "EPSG:32633"


@pytest.fixture
def target():
    psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2 is not installed")
    try:
        psycopg2.connect(URL, connect_timeout=3).close()
    except psycopg2.Error as exc:
        pytest.skip(f"no PostgreSQL server at {URL} (run tools/start_postgis.sh): {str(exc).splitlines()[0]}")
    table = "t_" + uuid.uuid4().hex[:12]
    yield f"{URL}?table={table}"
    conn = psycopg2.connect(URL)
    with conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    conn.close()


def _labels(n: int, writer: int = 0):
    out = []
    for i in range(n):
        x = 500000 + 10 * i
        y = 4650000 - 10 * writer
        out.append(Label(box(x, y, x + 5, y + 5), CRS, attributes("tree", {"annotator": f"w{writer}", "note": "é"},
                                                                   score=0.5 + i / 1000, stability=0.9, prompt_type="point",
                                                                   prompt_count=i, model="vit_b", source="ortho.tif")))
    return out


def _append(target: str, writer: int, n: int) -> None:
    from seg_qgis_plugin.core.outputs.vectors import write_labels

    write_labels(_labels(n, writer), target, mode="append")


def test_four_processes_appending_at_once_lose_nothing(target):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(target, w, 150)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    from seg_qgis_plugin.core.outputs.vectors import read_labels

    labels = read_labels(target)
    assert len(labels) == 600
    per_writer = {}
    for lab in labels:
        per_writer.setdefault(lab.attributes["annotator"], set()).add(lab.attributes["prompt_count"])
    assert per_writer == {f"w{w}": set(range(150)) for w in range(4)}
    assert {lab.attributes["version"] for lab in labels} == {1}


def test_attribute_table_round_trip(target):
    from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels

    written = _labels(3, writer=2)
    write_labels(written, target)
    back = read_labels(target)
    assert len(back) == 3
    for w, b in zip(written, back):
        assert b.crs == CRS
        assert b.geometry.equals(MultiPolygon([w.geometry]))
        assert {n: b.attributes[n] for n in FIELD_NAMES} == w.attributes
    with pytest.raises(OutputError, match="already exists"):
        write_labels(written, target)  # create mode refuses an existing table


def test_stale_review_is_refused(target):
    from seg_qgis_plugin.core.outputs.postgis import StaleLabelError, connect, update_label
    from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels

    write_labels(_labels(2), target)
    first = read_labels(target)[0]
    fid, version = first.attributes["fid"], first.attributes["version"]
    conn = connect(target)
    try:
        assert update_label(target, fid, {"status": "accepted", "class": "palm"}, version) == version + 1
        with pytest.raises(StaleLabelError, match="changed by someone else"):
            update_label(target, fid, {"status": "rejected"}, version)  # a second reviewer read version 1 too
        with pytest.raises(SegError, match="not in table"):
            update_label(target, 10 ** 9, {"status": "rejected"}, 1)
    finally:
        conn.close()
    now = {lab.attributes["fid"]: lab.attributes for lab in read_labels(target)}[fid]
    assert (now["status"], now["class"], now["version"]) == ("accepted", "palm", version + 1)


def test_refused_connection_is_one_sentence():
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed")
    from seg_qgis_plugin.core.outputs.vectors import check_output

    with pytest.raises(OutputError, match="refused the connection"):
        check_output("PG:host=127.0.0.1 port=1 dbname=nope user=nobody table=labels", mode="append")


def test_database_without_postgis_is_one_sentence(target):
    import psycopg2

    from seg_qgis_plugin.core.outputs.postgis import connect

    conn = psycopg2.connect(URL)
    with conn.cursor() as cur:
        cur.execute("SELECT current_user")
        user = cur.fetchone()[0]
    conn.close()
    bare = URL.rsplit("/", 1)[0] + "/postgres"  # the maintenance database has no PostGIS
    try:
        psycopg2.connect(bare).close()
    except psycopg2.Error:
        pytest.skip(f"role {user} may not connect to the postgres database")
    with pytest.raises(OutputError, match="lacks PostGIS"):
        connect(bare + "?table=labels")
