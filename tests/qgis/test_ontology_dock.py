"""The dock in real QGIS: it loads an ontology, styles the target layer from it (and saves the style
into the GeoPackage's layer_styles table, read back by a fresh layer), shows the class's fields,
and with shared borders on cuts a new object by the labels already there."""
from __future__ import annotations

import json
import sqlite3

import pytest


import seg_test_gui_support as support  # registered by tests/qgis/conftest.py
ONTOLOGY = {"classes": [
    {"name": "water", "code": 7, "color": "#1f78b4"},
    {"name": "building", "code": 3, "color": "#e31a1c", "attributes": {"roof": {"type": "str", "values": ["flat", "pitched"]}}}]}


@pytest.fixture(autouse=True)
def user_settings(tmp_path):
    return support.isolate_user_settings(tmp_path / "qsettings")


@pytest.fixture
def dock_and_layer(qgis_app, raster_factory, tmp_path):
    from qgis.core import QgsProject, QgsRasterLayer

    from seg_qgis_plugin.gui.plugin_gui import SegGui

    project = QgsProject.instance()
    project.clear()
    raster = QgsRasterLayer(raster_factory(support.synthetic_ortho(), name="ortho.tif"), "ortho", "gdal")
    project.addMapLayer(raster)
    gui = SegGui(support.FakeIface(support.make_canvas(raster)))
    gui.create()
    layer = gui.dock.create_target_layer(str(tmp_path / "labels.gpkg"))
    yield gui, layer, project
    gui.remove()
    project.clear()


def test_dock_loads_an_ontology_and_styles_the_layer(dock_and_layer, tmp_path):
    from qgis.core import QgsVectorLayer

    gui, layer, project = dock_and_layer
    dock, panel = gui.dock, gui.dock.ontology_panel
    path = tmp_path / "classes.json"
    path.write_text(json.dumps(ONTOLOGY))
    assert dock.classes() == [], "a new project starts without classes"
    panel.load(str(path))
    assert [c.name for c in dock.classes()] == ["water", "building"] and gui.controller.label_class.name == "water"
    assert panel.info.text() == "Loaded 2 classes from classes.json."
    assert [(c.value(), c.symbol().color().name()) for c in layer.renderer().categories()] == [("building", "#e31a1c"), ("water", "#1f78b4"), ("", "#808080")]
    # the ontology (codes included) travels with the project, and Save writes it back
    assert json.loads(project.readEntry("seg", "ontology", "")[0])["classes"][0]["code"] == 7
    panel.save(str(tmp_path / "again.json"))
    assert panel.info.text() == "Saved 2 classes to again.json."
    assert {c["name"]: c["code"] for c in json.loads((tmp_path / "again.json").read_text())["classes"]} == {"water": 7, "building": 3}

    # the style is in the GeoPackage's layer_styles table, as the layer's default
    with sqlite3.connect(tmp_path / "labels.gpkg") as db:
        rows = db.execute("SELECT f_table_name, styleName, useAsDefault, styleQML FROM layer_styles").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [("labels", "seg classes", 1)]
    assert "categorizedSymbol" in rows[0][3] and "227,26,28" in rows[0][3]  # building's #e31a1c, as QML writes it
    fresh = QgsVectorLayer(f"{tmp_path / 'labels.gpkg'}|layername=labels", "fresh", "ogr")
    assert fresh.isValid() and fresh.renderer().type() == "categorizedSymbol"
    assert sorted(c.value() for c in fresh.renderer().categories()) == ["", "building", "water"]

    # the current class's fields: a list of the allowed values
    dock.select_class("building")
    assert list(panel.field_widgets) == ["roof"] and panel.field_widgets["roof"].currentText() == "flat"
    dock.select_class("water")
    assert panel.field_widgets == {}


def test_shared_borders_cut_a_new_object_by_the_layer(dock_and_layer, tmp_path):
    from shapely.geometry import box

    from seg_qgis_plugin.core.engine.labels import Label, attributes
    from seg_qgis_plugin.gui.label_layer import add_label

    gui, layer, project = dock_and_layer
    dock, controller, panel = gui.dock, gui.controller, gui.dock.ontology_panel
    assert panel.shared_borders.isChecked()  # on by default
    path = tmp_path / "classes.json"
    path.write_text(json.dumps(ONTOLOGY))
    panel.load(str(path))
    dock.select_class("building")
    panel.field_widgets["roof"].setCurrentText("pitched")
    xmin, ymin, xmax, ymax = support.square_bounds_map()
    left_half = box(xmin - 5, ymin - 5, (xmin + xmax) / 2, ymax + 5)  # on pixel edges (0.5 m pixels)
    add_label(layer, Label(left_half, layer.crs().authid(), attributes("water", status="accepted")), project)

    dock.backend_combo.setCurrentIndex(dock.backend_combo.findData("classic"))
    dock.tile.setValue(128)
    dock.overlap.setValue(32)
    dock.start()
    support.wait_idle(controller, timeout=60)
    support.click(gui.iface.mapCanvas(), (xmin + xmax) / 2 + 4, (ymin + ymax) / 2)
    support.wait_idle(controller, timeout=60)
    assert controller.current_step.geometry.intersection(left_half).area == 0  # cut in the background: the preview shows it
    assert controller.accept() is not None
    _, geometries, rows = support.read_gpkg(tmp_path / "labels.gpkg")
    new, row = geometries[-1], rows[-1]
    assert row["class"] == "building" and json.loads(row["tags"])["roof"] == "pitched"
    assert new.intersection(left_half).area == 0 and new.touches(left_half)
    right_half = box((xmin + xmax) / 2, ymin, xmax, ymax)
    assert new.intersection(right_half).area / right_half.area > 0.8  # the rest of the square is the new object

    panel.shared_borders.setChecked(False)  # off: the same click overlaps
    support.click(gui.iface.mapCanvas(), (xmin + xmax) / 2 + 4, (ymin + ymax) / 2)
    support.wait_idle(controller, timeout=60)
    assert controller.accept() is not None
    _, geometries, _ = support.read_gpkg(tmp_path / "labels.gpkg")
    assert geometries[-1].intersection(left_half).area > 0
