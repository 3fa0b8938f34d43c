"""Label targets a user can get wrong: PostGIS URLs and table names (mixed case kept, nothing that
could carry SQL, a table without a PostGIS geometry), values of the wrong type for a Seg field,
and no password on the terminal. One sentence each, nothing written. The PostGIS cases run
against a real server (tools/start_postgis.sh) and are skipped without one."""
from __future__ import annotations

import os
import uuid

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import box

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.engine.labels import FIELDS, Label, attributes
from seg_qgis_plugin.core.errors import OutputError
from seg_qgis_plugin.core.outputs.postgis import check_table_name, display_target, parse_target
from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels

URL = os.environ.get("SEG_TEST_PG", "postgresql://seg:seg@localhost:5432/seg_test")
CRS = "EPSG:32633"
BAD_NAMES = ["a;DROP TABLE canary", "a'b", 'a"b', "a b", "1abc", "a.b.c", "", "x" * 64, "a--", "a/b", "a)b", "ä" * 40]


def _label(i=0, **fields):
    row = attributes("tree", score=0.5, prompt_count=1)
    row.update(fields)
    return Label(box(500000 + 10 * i, 4650000, 500005 + 10 * i, 4650005), CRS, row)


@pytest.fixture
def pg():
    psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2 is not installed")
    try:
        conn = psycopg2.connect(URL, connect_timeout=3)
    except psycopg2.Error as exc:
        pytest.skip(f"no PostgreSQL server at {URL} (run tools/start_postgis.sh): {str(exc).splitlines()[0]}")
    made = []

    def table(name=None):
        name = name or "t_" + uuid.uuid4().hex[:12]
        made.append(name)
        return name

    yield conn, table
    with conn, conn.cursor() as cur:
        for name in made:
            cur.execute(f'DROP TABLE IF EXISTS "{name}"')
    conn.close()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_table_name_that_is_not_a_plain_name_is_one_sentence(name):
    with pytest.raises(OutputError, match="is not a table name Seg accepts") as caught:
        check_table_name(name)
    assert len(str(caught.value).splitlines()) == 1
    for target in [f"{URL}?table={name}"] + ([f"PG:dbname=x table={name}"] if name.split() == [name] else []):
        with pytest.raises(OutputError, match="is not a table name Seg accepts"):
            parse_target(target)


@pytest.mark.parametrize("name", ["labels", "Labels_Mixed", "public.Labels", "école", "my-labels", "x" * 63])
def test_plain_names_are_accepted(name):
    assert check_table_name(name) == name


@pytest.mark.parametrize("target", ["postgresql://seg:pw@[::1/db?table=t", "postgresql://seg:pw@host:99999/db",
                                    "postgresql://seg:pw@host:port/db", "postgresql://seg:pw@[oops]/db"])
def test_an_unreadable_url_is_one_sentence_without_its_password(tmp_path, capsys, target):
    with pytest.raises(OutputError, match="is not a PostgreSQL URL Seg can read") as caught:
        parse_target(target)
    assert ":pw@" not in str(caught.value)
    code = main(["polygonize", _class_raster(tmp_path), "--out", target])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and ":pw@" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("target, shown", [
    ("postgresql://u:secret@h:5432/db?table=t", "postgresql://u:***@h:5432/db?table=t"),
    ("postgres://u:s%40c@h/db", "postgres://u:***@h/db"),
    ("postgresql://u@h/db?password=secret&table=t", "postgresql://u@h/db?password=***&table=t"),
    ("PG:dbname=db user=u password=secret table=t", "PG:dbname=db user=u password=*** table=t"),
    ("PG:dbname=db password='two words' table=t", "PG:dbname=db password=*** table=t"),
    ("labels.gpkg", "labels.gpkg"),
])
def test_display_target_hides_every_form_of_password(target, shown):
    assert display_target(target) == shown


def _class_raster(tmp_path):
    path = str(tmp_path / "classes.tif")
    data = np.zeros((20, 20), np.uint8)
    data[2:8, 2:8] = 1
    with rasterio.open(path, "w", driver="GTiff", width=20, height=20, count=1, dtype="uint8", crs=CRS,
                       transform=from_origin(500000, 4650000, 1, 1)) as dst:
        dst.write(data, 1)
    return path


def test_the_success_line_hides_the_password(tmp_path, capsys, pg):
    _, table = pg
    target = f"{URL}?table={table()}"
    assert main(["polygonize", _class_raster(tmp_path), "--out", target]) == 0
    out, err = capsys.readouterr()
    password = URL.split("@")[0].rsplit(":", 1)[1]
    assert f":{password}@" not in out + err and display_target(target) in out


def test_a_mixed_case_table_is_created_and_appended_to(pg):
    _, table = pg
    target = f"{URL}?table={table('Labels_Mixed_' + uuid.uuid4().hex[:6])}"
    write_labels([_label(0)], target)
    write_labels([_label(1)], target, mode="append")
    write_labels([_label(2), _label(3)], target, mode="append")
    assert len(read_labels(target)) == 4
    with pytest.raises(OutputError, match="already exists"):
        write_labels([_label(4)], target)


def test_appending_to_a_table_without_a_postgis_geometry_is_one_sentence(pg):
    conn, table = pg
    plain, no_srid = table(), table()
    with conn, conn.cursor() as cur:
        cur.execute(f'CREATE TABLE "{plain}" (fid serial PRIMARY KEY, name text)')
        cur.execute(f'CREATE TABLE "{no_srid}" (fid serial PRIMARY KEY, geom geometry)')
    with pytest.raises(OutputError, match="has no PostGIS geometry column 'geom'"):
        write_labels([_label()], f"{URL}?table={plain}", mode="append")
    with pytest.raises(OutputError, match="has no SRID"):
        write_labels([_label()], f"{URL}?table={no_srid}", mode="append")


def test_no_table_name_reaches_the_database_unquoted(pg):
    conn, table = pg
    canary = table()
    with conn, conn.cursor() as cur:
        cur.execute(f'CREATE TABLE "{canary}" (x int)')
    for name in BAD_NAMES + [f'x"; DROP TABLE "{canary}"; --']:
        with pytest.raises(OutputError):
            write_labels([_label()], f"{URL}?table={name}")
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f'"{canary}"',))
        assert cur.fetchone()[0] is not None


NUMERIC_FIELDS = [(name, kind) for name, kind, _ in FIELDS if kind != "str"]
WRONG = {"float": ["0.9", "high", True, b"1", [1]], "int": ["3", 1.5, True, "many", float("nan")]}


@pytest.mark.parametrize("name, kind", NUMERIC_FIELDS)
def test_a_value_of_the_wrong_type_for_a_seg_field_is_one_sentence(tmp_path, name, kind):
    for k, value in enumerate(WRONG[kind]):
        out = str(tmp_path / f"l{k}.gpkg")
        with pytest.raises(OutputError, match=f"The field '{name}' takes") as caught:
            write_labels([_label(0), _label(1, **{name: value})], out)
        assert len(str(caught.value).splitlines()) == 1
        assert not os.path.exists(out)
    write_labels([_label(0, **{name: None}), _label(1, **{name: np.float32(2.0) if kind == "float" else np.int64(2)})],
                 str(tmp_path / "fine.gpkg"))


def test_api_write_labels_with_a_text_score_or_prompt_count_column(tmp_path, pg):
    gpd = pytest.importorskip("geopandas")
    from seg_qgis_plugin import api

    _, table = pg
    for column, values in (("score", ["0.9", "high"]), ("prompt_count", ["one", "2"])):
        gdf = gpd.GeoDataFrame({"class": ["a", "b"], column: values},
                               geometry=[box(500000, 4650000, 500005, 4650005), box(500010, 4650000, 500015, 4650005)], crs=CRS)
        for target in (str(tmp_path / f"{column}.gpkg"), f"{URL}?table={table()}"):
            with pytest.raises(OutputError, match=f"The field '{column}' takes"):
                api.write_labels(gdf, target)
            assert not os.path.exists(target)
