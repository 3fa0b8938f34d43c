"""The Review panel in real QGIS, headless: driven with real key events (QTest through Qt's
shortcut handling), decisions read back from the GeoPackage on disk by GDAL in another process."""
from __future__ import annotations

import pathlib
from datetime import datetime

import pytest


import seg_test_gui_support as support  # registered by tests/qgis/conftest.py
X, Y = 500000.0, 4650000.0


@pytest.fixture(autouse=True)
def user_settings(tmp_path):
    return support.isolate_user_settings(tmp_path / "qsettings")


def write_prelabels(path, rows):
    """rows: (shapely geometry, class, score, stability, status, window) -> a Seg GeoPackage
    (fids 1..n) whose schema may lack reviewer/reviewed."""
    from shapely.geometry import MultiPolygon

    from seg_qgis_plugin.core.engine.labels import Label, attributes
    from seg_qgis_plugin.core.outputs.vectors import write_labels

    labels = [Label(MultiPolygon([g]), "EPSG:32633", attributes(
        c, score=s, stability=st, prompt_type="auto", prompt_count=1, model="sam-vit_b", source="ortho.tif", window=w, status=status))
              for g, c, s, st, status, w in rows]
    write_labels(labels, str(path))
    return str(path)


def by_window(path):
    _, geometries, rows = support.read_gpkg(path)
    return {r["window"]: (g, r) for g, r in zip(geometries, rows)}


def focus(widget):
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtWidgets import QApplication

    widget.activateWindow()
    widget.setFocus(Qt.FocusReason.OtherFocusReason)
    support.wait_until(lambda: QApplication.focusWidget() is widget, 5)


def press(widget, key, modifiers=None):
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtTest import QTest

    QTest.keyClick(widget, key, modifiers or Qt.KeyboardModifier.NoModifier)
    support.wait_idle_events()


@pytest.fixture
def panel_on(qgis_app):
    made = []

    def make(path, controller=None, activate_tool=None, canvas=None):
        from qgis.core import QgsProject, QgsVectorLayer

        from seg_qgis_plugin.gui.classes import LabelClass, save_classes
        from seg_qgis_plugin.gui.review import ReviewPanel

        save_classes(QgsProject.instance(), [LabelClass(*pair) for pair in support.STARTER_CLASSES])  # the class keys' list
        layer = QgsVectorLayer(f"{path}|layername={pathlib.Path(path).stem}", "labels", "ogr")
        assert layer.isValid()
        canvas = canvas or support.make_canvas(layer)
        panel = ReviewPanel(canvas, QgsProject.instance(), controller, activate_tool)
        panel.resize(400, 600)
        panel.show()
        panel.set_layer(layer)
        made.append((panel, canvas, layer))
        return panel, canvas, layer

    yield make
    for panel, canvas, layer in made:
        panel.close_review()
        panel.close()
        canvas.close()


def test_keys_decide_in_order_of_doubt_and_write_to_disk(panel_on, tmp_path):
    from qgis.core import QgsSettings
    from qgis.PyQt.QtCore import Qt
    from shapely.geometry import box

    from qgis.core import QgsProject

    from seg_qgis_plugin.core.engine.labels import FIELD_NAMES
    from seg_qgis_plugin.gui.classes import load_classes

    QgsSettings().setValue("seg/reviewer", "ana")
    rows = [(box(X, Y, X + 10, Y + 10), "building", 0.9, 0.95, "prelabel", "w1"),
            (box(X + 20, Y, X + 30, Y + 10), "building", 0.3, 0.8, "prelabel", "w2"),
            (box(X + 40, Y, X + 50, Y + 10), "building", 0.6, 0.7, "prelabel", "w3"),
            (box(X + 60, Y, X + 70, Y + 10), "building", 0.3, 0.5, "prelabel", "w4"),
            (box(X + 80, Y, X + 90, Y + 10), "building", 0.1, 0.1, "accepted", "w5")]
    gpkg = write_prelabels(tmp_path / "labels.gpkg", rows)
    panel, canvas, layer = panel_on(gpkg)
    panel.start_button.click()
    assert panel.queue == [4, 2, 3, 1], "lowest score first, then lowest stability; accepted ones stay out"
    assert panel.added_fields == [f for f in ("status", "reviewer", "reviewed") if f not in FIELD_NAMES]
    assert {"status", "reviewer", "reviewed"} <= set(layer.fields().names())
    assert panel.current_fid == 4 and panel.progress_label.text() == "0 of 4 reviewed"
    assert panel.window_label.text() == "Window w4 of ortho.tif"
    assert canvas.extent().contains(layer.getFeature(4).geometry().boundingBox())
    assert layer.selectedFeatureIds() == [] and panel.outline.fillColor().alpha() == 0, "an outline, not a fill"
    assert panel.outline.asGeometry().boundingBox() == layer.getFeature(4).geometry().boundingBox()

    focus(panel.attributes.parentWidget())
    target = panel.attributes.parentWidget()
    press(target, Qt.Key.Key_A)
    assert panel.current_fid == 2 and panel.progress_label.text() == "1 of 4 reviewed"
    assert panel.message.text() == "labels: feature 4 accepted."
    assert not layer.isEditable(), "the panel leaves the edit session it opened"
    press(target, Qt.Key.Key_R)
    assert panel.current_fid == 3
    press(target, Qt.Key.Key_2)
    press(target, Qt.Key.Key_N)
    assert panel.current_fid == 1
    press(target, Qt.Key.Key_P)
    assert panel.current_fid == 3
    press(target, Qt.Key.Key_Space)
    assert panel.current_fid == 1 and panel.progress_label.text() == "3 of 4 reviewed"

    second_class = load_classes(QgsProject.instance())[1].name
    disk = by_window(gpkg)
    assert (disk["w4"][1]["status"], disk["w4"][1]["reviewer"]) == ("accepted", "ana")
    assert datetime.strptime(disk["w4"][1]["reviewed"], "%Y-%m-%dT%H:%M:%SZ")
    assert (disk["w2"][1]["status"], disk["w2"][1]["reviewer"]) == ("rejected", "ana")
    assert (disk["w3"][1]["status"], disk["w3"][1]["class"]) == ("reviewed", second_class)
    assert disk["w1"][1]["status"] == "prelabel" and disk["w1"][1]["reviewer"] in (None, "")
    assert disk["w5"][1]["status"] == "accepted" and len(disk) == 5, "nothing is deleted; rejected features stay"

    press(target, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert panel.current_fid == 3 and panel.progress_label.text() == "2 of 4 reviewed"
    disk = by_window(gpkg)
    assert (disk["w3"][1]["status"], disk["w3"][1]["class"], disk["w3"][1]["reviewer"]) == ("prelabel", "building", "")
    assert disk["w2"][1]["status"] == "rejected"


def test_a_new_project_empties_the_panel(panel_on, tmp_path):
    from qgis.core import QgsProject
    from shapely.geometry import box

    panel, _, _ = panel_on(write_prelabels(tmp_path / "labels.gpkg", [(box(X, Y, X + 10, Y + 10), "building", 0.5, 0.5,
                                                                       "prelabel", "w0")]))
    panel.refresh()
    assert panel.current_fid == 1
    QgsProject.instance().cleared.emit()  # what File > New project sends
    assert panel.layer is None and panel.queue == [] and panel.attributes.rowCount() == 0


def test_rejected_are_filterable_and_a_field_orders_the_queue(panel_on, tmp_path):
    from shapely.geometry import box

    rows = [(box(X + 20 * k, Y, X + 20 * k + 10, Y + 10), "building", s, 0.5, st, f"w{k}")
            for k, (s, st) in enumerate([(0.2, "rejected"), (0.9, "rejected"), (0.5, "prelabel")])]
    panel, _, _ = panel_on(write_prelabels(tmp_path / "labels.gpkg", rows))
    panel.status_combo.setCurrentText("rejected")
    panel.order_combo.setCurrentText("score")
    panel.descending.setChecked(True)
    panel.refresh()
    assert panel.queue == [2, 1]


def test_edit_replaces_the_geometry_with_the_next_accepted_mask(panel_on, oracle, raster_factory, tmp_path):
    from qgis.core import QgsRasterLayer
    from qgis.PyQt.QtCore import Qt
    from shapely.geometry import box

    from seg_qgis_plugin.gui.controller import SegController
    from seg_qgis_plugin.gui.map_tools import PointPromptTool
    from seg_qgis_plugin.gui.session import SessionConfig

    path = raster_factory(support.synthetic_ortho(), name="ortho.tif")
    raster = QgsRasterLayer(path, "ortho", "gdal")
    canvas = support.make_canvas(raster)
    controller = SegController(canvas, backend_factory=lambda config: oracle("bright"))
    controller.start_session(SessionConfig(raster=path, tile=128, overlap=32))
    support.wait_idle(controller)
    tool = PointPromptTool(canvas, controller)
    square = box(*support.square_bounds_map())
    wrong = box(square.bounds[0] - 3, square.bounds[1] - 3, square.bounds[2] - 6, square.bounds[3] - 6)
    gpkg = write_prelabels(tmp_path / "labels.gpkg", [(wrong, "building", 0.4, 0.4, "prelabel", "w0")])
    panel, _, layer = panel_on(gpkg, controller, lambda: canvas.setMapTool(tool), canvas)
    try:
        panel.refresh()
        focus(panel.attributes.parentWidget())
        press(panel.attributes.parentWidget(), Qt.Key.Key_E)
        assert canvas.mapTool() is tool and controller.target_layer is not layer
        canvas.setExtent(raster.extent())
        canvas.refresh()
        support.click(canvas, *support.square_centre_map())
        support.wait_idle(controller)
        support.key(canvas, Qt.Key.Key_Return)
        support.wait_idle(controller)
        [(geometry, row)] = by_window(gpkg).values()
        assert row["window"] != "w0", "the window the new mask came from"
        assert geometry.equals(square) and row["status"] == "reviewed" and row["class"] == "building"
        assert row["prompt_type"] == "point" and row["score"] != 0.4, "the new mask's score and provenance"
        assert panel.message.text().startswith("labels: feature 1 reviewed, new outline from a point prompt (score ")
        assert controller.target_layer is None, "the layer the Seg dock targets is given back"
        assert len(support.read_gpkg(gpkg)[1]) == 1, "the mask replaced the geometry; nothing was added"
    finally:
        canvas.unsetMapTool(tool)
        controller.shutdown()
