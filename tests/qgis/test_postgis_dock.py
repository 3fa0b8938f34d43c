"""The Seg dock and the Review panel on a PostGIS label table, in real QGIS (headless) against a real
PostgreSQL + PostGIS (tools/start_postgis.sh starts one; SEG_TEST_PG overrides the database URL).
Skipped, with the reason, when no server answers.

Rows are read back with psycopg2 on a connection of their own, so what is asserted is what another
annotator's QGIS would see: committed rows. Masks come from the oracle backend (tests/conftest.py):
the bright square of the synthetic raster, known exactly.
"""
from __future__ import annotations

import os
import uuid

import pytest

import seg_test_gui_support as support  # registered by tests/qgis/conftest.py

URL = os.environ.get("SEG_TEST_PG", "postgresql://seg:seg@localhost:5432/seg_test")
CRS = "EPSG:32633"
X, Y = 500000.0, 4650000.0


@pytest.fixture(autouse=True)
def user_settings(tmp_path):
    return support.isolate_user_settings(tmp_path / "qsettings")


@pytest.fixture
def pg(qgis_app):
    """table() -> a fresh table name (dropped afterwards) on the test database."""
    psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2 is not installed")
    try:
        psycopg2.connect(URL, connect_timeout=3).close()
    except psycopg2.Error as exc:
        pytest.skip(f"no PostgreSQL server at {URL} (run tools/start_postgis.sh): {str(exc).splitlines()[0]}")
    made = []

    def table():
        made.append("t_" + uuid.uuid4().hex[:12])
        return made[-1]

    yield table
    from qgis.core import QgsProject

    QgsProject.instance().clear()
    support.wait_idle_events()
    conn = psycopg2.connect(URL)
    with conn, conn.cursor() as cur:
        cur.execute("SET lock_timeout = '10s'")
        for name in made:
            cur.execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()


def sql(query, args=()):
    """Run `query` on a connection of its own and commit; returns the rows of a SELECT."""
    import psycopg2

    conn = psycopg2.connect(URL)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def rows(table):
    """{fid: {column: value, "geom": shapely}} of every committed row."""
    from shapely import from_wkb

    out = {}
    for fid, wkb, class_name, status, reviewer, version, prompt_type, model, source in sql(
            f"SELECT fid, ST_AsBinary(geom), class, status, reviewer, version, prompt_type, model, source FROM {table} ORDER BY fid"):
        out[fid] = {"geom": from_wkb(bytes(wkb)), "class": class_name, "status": status, "reviewer": reviewer,
                    "version": version, "prompt_type": prompt_type, "model": model, "source": source}
    return out


def write_prelabels(table, n):
    """n pre-labels (fids 1..n) written by the engine, as `seg prelabel --out postgresql://...` does."""
    from shapely.geometry import box

    from seg_qgis_plugin.core.engine.labels import Label, attributes
    from seg_qgis_plugin.core.outputs.vectors import write_labels

    labels = [Label(box(X + 20 * k, Y, X + 20 * k + 10, Y + 10), CRS, attributes(
        "building", score=0.1 * (k + 1), stability=0.9, prompt_type="auto", prompt_count=1, model="sam-vit_b",
        source="ortho.tif", window=f"w{k}", status="prelabel")) for k in range(n)]
    write_labels(labels, f"{URL}?table={table}")


@pytest.fixture
def seg_gui(qgis_app, raster_factory, oracle):
    """(SegGui, FakeIface): the plugin GUI in a shown window on the synthetic orthophoto, its
    controller answering with the oracle; removed afterwards."""
    from qgis.core import QgsProject, QgsRasterLayer

    from seg_qgis_plugin.gui.plugin_gui import SegGui

    project = QgsProject.instance()
    project.clear()
    raster = QgsRasterLayer(raster_factory(support.synthetic_ortho(), name="ortho.tif"), "ortho", "gdal")
    assert raster.isValid()
    project.addMapLayer(raster)
    canvas = support.make_canvas(raster)
    iface = support.FakeIface(canvas)
    gui = SegGui(iface)
    gui.create()
    support.give_classes(gui.dock)
    gui.controller.backend_factory = lambda config: oracle("bright")
    iface.window.show()
    yield gui, iface
    gui.remove()
    iface.window.close()
    project.clear()


def start(gui):
    dock, controller = gui.dock, gui.controller
    dock.backend_combo.setCurrentIndex(dock.backend_combo.findData("classic"))
    dock.tile.setValue(128)
    dock.overlap.setValue(32)
    dock.start()
    support.wait_until(lambda: controller.ready and controller.is_idle, 60)


def test_accept_inserts_a_row_and_undo_deletes_it(seg_gui, pg):
    from qgis.PyQt.QtCore import Qt
    from shapely.geometry import MultiPolygon, box

    gui, iface = seg_gui
    dock, controller, canvas = gui.dock, gui.controller, iface.canvas
    table = pg()
    layer = dock.create_target_layer(f"{URL}?table={table}")
    assert layer is not None, dock.status.text()
    assert layer.providerType() == "postgres" and layer.crs().authid() == CRS
    assert dock.target_combo.currentLayer() is layer and controller.target_layer is layer
    assert rows(table) == {}, "a missing table is created empty"
    start(gui)

    support.click(canvas, *support.square_centre_map())
    support.wait_idle(controller)
    support.key(canvas, Qt.Key.Key_Return)
    support.wait_idle(controller)
    stored = rows(table)
    assert len(stored) == 1, dock.status.text()
    row = next(iter(stored.values()))
    assert row["geom"].equals(MultiPolygon([box(*support.square_bounds_map())]))
    assert (row["class"], row["status"], row["version"]) == (controller.label_class.name, "accepted", 1)
    assert (row["prompt_type"], row["model"], row["source"]) == ("point", "oracle-bright", "ortho.tif")

    assert controller.undo() == "feature"
    assert rows(table) == {}, "undo deletes the row from the database"
    assert controller.redo() == "feature"
    assert [r["version"] for r in rows(table).values()] == [1], "redo inserts it again"


def test_the_menu_opens_an_existing_seg_table(seg_gui, pg, monkeypatch):
    from qgis.PyQt.QtWidgets import QInputDialog

    gui, _ = seg_gui
    dock = gui.dock
    table = pg()
    write_prelabels(table, 3)
    url = f"{URL}?table={table}"
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *args, **kw: (url, True)))
    dock.postgis_action.trigger()
    layer = dock.target_combo.currentLayer()
    assert layer is not None and layer.providerType() == "postgres", dock.status.text()
    assert layer.featureCount() == 3 and {f["window"] for f in layer.getFeatures()} == {"w0", "w1", "w2"}
    assert dock.postgis_action in dock.findChild(type(dock.point_tool_button), "SegNewLayerButton").menu().actions()


@pytest.mark.parametrize("url, says", [
    ("postgresql://seg:not-the-password@localhost:5432/seg_test?table=labels", "refused the connection"),
    ("postgresql://seg@127.0.0.1:1/seg_test?table=labels", "refused the connection"),
])
def test_a_database_that_refuses_gives_one_sentence(seg_gui, pg, url, says):
    gui, _ = seg_gui
    dock = gui.dock
    assert dock.create_target_layer(url) is None
    text = dock.status.text()
    assert text.startswith("<b>Problem:</b> The database for table labels in database seg_test") and says in text
    assert "\n" not in text and text.endswith(").") and text.count(". ") == 0, text
    assert dock.target_combo.currentLayer() is None


def test_a_table_seg_did_not_make_is_refused(seg_gui, pg):
    gui, _ = seg_gui
    table = pg()
    sql(f"CREATE TABLE {table} (id serial PRIMARY KEY, geom geometry(Polygon, 32633))")
    assert gui.dock.create_target_layer(f"{URL}?table={table}") is None
    assert "is not a Seg label table" in gui.dock.status.text()


@pytest.fixture
def review_on(qgis_app):
    made = []

    def make(table):
        from qgis.core import QgsProject, QgsSettings

        from seg_qgis_plugin.gui.postgis_layer import postgis_label_layer
        from seg_qgis_plugin.gui.review import ReviewPanel

        from seg_qgis_plugin.gui.classes import LabelClass, save_classes

        QgsSettings().setValue("seg/reviewer", "ana")
        save_classes(QgsProject.instance(), [LabelClass(*pair) for pair in support.STARTER_CLASSES])  # the class keys' list
        layer = postgis_label_layer(f"{URL}?table={table}")
        canvas = support.make_canvas(layer)
        panel = ReviewPanel(canvas, QgsProject.instance())
        panel.show()
        panel.set_layer(layer)
        made.append((panel, canvas))
        return panel, layer

    yield make
    for panel, canvas in made:
        panel.close_review()
        panel.close()
        canvas.close()


def db_fid(layer, fid):
    return layer.getFeature(fid)["fid"]


def test_review_edits_bump_the_version_and_a_stale_one_is_refused(review_on, pg):
    table = pg()
    write_prelabels(table, 3)
    panel, layer = review_on(table)
    panel.refresh()
    assert len(panel.queue) == 3
    first = db_fid(layer, panel.current_fid)
    assert first == 1, "lowest score first"

    panel.accept()
    assert rows(table)[first]["status"] == "accepted" and rows(table)[first]["version"] == 2
    assert rows(table)[first]["reviewer"] == "ana"

    second_fid = panel.current_fid
    second = db_fid(layer, second_fid)
    sql(f"UPDATE {table} SET class = 'car', version = version + 1 WHERE fid = %s", (second,))  # another annotator
    panel.reject()
    row = rows(table)[second]
    assert (row["class"], row["status"], row["version"]) == ("car", "prelabel", 2), "the other annotator's edit is kept"
    message = panel.message.text()
    assert message.startswith("Not saved: someone else changed feature") and message.count(".") == 1, message
    assert panel.current_fid == second_fid, "the panel stays on the feature"
    shown = {panel.attributes.item(r, 0).text(): panel.attributes.item(r, 1).text() for r in range(panel.attributes.rowCount())}
    assert (shown["class"], shown["version"]) == ("car", "2"), "the panel shows the current values"

    panel.reject()
    row = rows(table)[second]
    assert (row["class"], row["status"], row["version"]) == ("car", "rejected", 3), "deciding again on the shown values works"

    panel.undo()
    row = rows(table)[second]
    assert (row["class"], row["status"], row["version"]) == ("car", "prelabel", 4), "undo is one more versioned edit"

    panel.set_class_index(1)
    from qgis.core import QgsProject

    from seg_qgis_plugin.gui.classes import load_classes

    row = rows(table)[second]
    assert (row["class"], row["status"], row["version"]) == (load_classes(QgsProject.instance())[1].name, "reviewed", 5)
    assert rows(table)[3]["version"] == 1 and len(rows(table)) == 3


def test_undo_after_someone_else_changed_the_row_is_refused(review_on, pg):
    table = pg()
    write_prelabels(table, 1)
    panel, layer = review_on(table)
    panel.refresh()
    panel.accept()
    assert rows(table)[1]["version"] == 2
    sql(f"UPDATE {table} SET status = 'rejected', reviewer = 'bo', version = version + 1 WHERE fid = 1")
    panel.undo()
    row = rows(table)[1]
    assert (row["status"], row["reviewer"], row["version"]) == ("rejected", "bo", 3)
    assert panel.message.text().startswith("Not saved: someone else changed feature")


def test_edit_replaces_the_geometry_through_the_version_check(pg, qgis_app, oracle, raster_factory):
    from qgis.core import QgsProject, QgsRasterLayer
    from qgis.PyQt.QtCore import Qt
    from shapely.geometry import MultiPolygon, box

    from seg_qgis_plugin.gui.controller import SegController
    from seg_qgis_plugin.gui.map_tools import PointPromptTool
    from seg_qgis_plugin.gui.postgis_layer import postgis_label_layer
    from seg_qgis_plugin.gui.review import ReviewPanel
    from seg_qgis_plugin.gui.session import SessionConfig

    table = pg()
    write_prelabels(table, 1)
    path = raster_factory(support.synthetic_ortho(), name="ortho.tif")
    raster = QgsRasterLayer(path, "ortho", "gdal")
    canvas = support.make_canvas(raster)
    controller = SegController(canvas, backend_factory=lambda config: oracle("bright"))
    controller.start_session(SessionConfig(raster=path, tile=128, overlap=32))
    support.wait_idle(controller)
    tool = PointPromptTool(canvas, controller)
    layer = postgis_label_layer(f"{URL}?table={table}")
    panel = ReviewPanel(canvas, QgsProject.instance(), controller, lambda: canvas.setMapTool(tool))
    try:
        panel.show()
        panel.set_layer(layer)
        panel.refresh()
        panel.edit()
        canvas.setExtent(raster.extent())
        canvas.refresh()
        support.click(canvas, *support.square_centre_map())
        support.wait_idle(controller)
        support.key(canvas, Qt.Key.Key_Return)
        support.wait_idle(controller)
        row = rows(table)[1]
        assert row["geom"].equals(MultiPolygon([box(*support.square_bounds_map())])), panel.message.text()
        assert (row["status"], row["version"], row["class"]) == ("reviewed", 2, "building")
        assert len(rows(table)) == 1, "the mask replaced the geometry; nothing was added"
    finally:
        panel.close_review()
        panel.close()
        canvas.unsetMapTool(tool)
        controller.shutdown()
        canvas.close()
