"""The dock and the plugin GUI in real QGIS: pre-filled settings, a session started from the dock,
a new GeoPackage target, classes saved in the project, a clean unload; and the whole plugin loaded
in a fresh process where `import torch` fails.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import textwrap

import pytest


import seg_test_gui_support as support  # registered by tests/qgis/conftest.py


@pytest.fixture(autouse=True)
def user_settings(tmp_path):
    """The dock remembers its values in QgsSettings: keep them out of the user's own file."""
    return support.isolate_user_settings(tmp_path / "qsettings")


@pytest.fixture
def project_with_ortho(qgis_app, raster_factory):
    from qgis.core import QgsProject, QgsRasterLayer

    project = QgsProject.instance()
    project.clear()
    layer = QgsRasterLayer(raster_factory(support.synthetic_ortho(), name="ortho.tif"), "ortho", "gdal")
    project.addMapLayer(layer)
    yield project, layer
    project.clear()


def flush_deletes():
    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QgsApplication.processEvents()


def test_dock_prefills_starts_a_session_labels_and_unloads_cleanly(project_with_ortho, tmp_path):
    from qgis.PyQt.QtGui import QColor

    from seg_qgis_plugin.gui.classes import load_classes
    from seg_qgis_plugin.gui.plugin_gui import SegGui

    project, raster = project_with_ortho
    canvas = support.make_canvas(raster)
    iface = support.FakeIface(canvas)
    gui = SegGui(iface)
    gui.create()
    dock, controller = gui.dock, gui.controller
    assert support.leftovers(iface)["toolbars"] and "SegDock" in support.leftovers(iface)["docks"]

    # pre-filled from the raster: bands 1-3, stretch from 2-98 % statistics of the two populations
    assert dock.raster_combo.currentLayer() is raster
    assert [b.value() for b in dock.band_boxes] == [1, 2, 3]
    assert 20 <= dock.stretch_min.value() < 60 and 200 < dock.stretch_max.value() <= 240
    assert "From statistics" in dock.stretch_info.text()

    # a new GeoPackage target in the raster CRS, chosen in the combo and styled by class
    layer = dock.create_target_layer(str(tmp_path / "labels.gpkg"))
    assert layer is not None and project.mapLayer(layer.id()) is layer
    assert controller.target_layer is layer and layer.crs() == raster.crs()

    # classes and tags: saved in the project, current class follows the table
    dock.add_class_row(support_class("pond", "#00ffff"))
    dock.select_class("pond")
    dock.class_table.cellWidget(dock.class_table.currentRow(), 1).setColor(QColor("#0000ff"))
    assert ("pond", "#0000ff") in [(c.name, c.color) for c in load_classes(project)]
    assert controller.label_class.name == "pond" and controller.label_class.color == "#0000ff"
    dock.tags_edit.setText("date=2024-06-01; sensor=UAV")
    dock.tags_changed()
    assert controller.tags == {"date": "2024-06-01", "sensor": "UAV"}

    # start the classic backend from the dock; the point tool becomes active
    dock.backend_combo.setCurrentIndex(dock.backend_combo.findData("classic"))
    dock.tile.setValue(128)
    dock.overlap.setValue(32)
    dock.start()
    support.wait_idle(controller, timeout=60)
    assert controller.ready and controller.segmenter.backend.model_id.startswith("classic")
    assert isinstance(canvas.mapTool(), type(gui.tools["point"]))

    support.click(canvas, *support.square_centre_map())
    support.wait_idle(controller, timeout=60)
    assert controller.accept() is not None
    _, geometries, rows = support.read_gpkg(tmp_path / "labels.gpkg")
    square = shapely_square()
    assert rows[0]["class"] == "pond" and rows[0]["sensor"] == "UAV"
    assert geometries[0].intersection(square).area / square.union(geometries[0]).area > 0.8, \
        "the classic backend finds the bright square"

    gui.remove()
    flush_deletes()
    assert support.leftovers(iface) == {"toolbars": [], "docks": [], "menus": {}, "shortcuts": 0, "map_tool": None, "tasks": [],
                                     "rubber_bands": 0}


def test_dock_refuses_sam_without_a_checkpoint(project_with_ortho):
    from seg_qgis_plugin.gui.plugin_gui import SegGui
    from seg_qgis_plugin.gui.session import missing_sam_modules

    if missing_sam_modules():
        pytest.skip("SAM is not installed here; the torch-missing case is tested in a subprocess below")
    project, raster = project_with_ortho
    iface = support.FakeIface(support.make_canvas(raster))
    gui = SegGui(iface)
    gui.create()
    try:
        gui.dock.backend_combo.setCurrentIndex(gui.dock.backend_combo.findData("sam"))
        gui.dock.start()
        assert "checkpoint" in gui.dock.status.text() and not gui.controller.ready
        assert "SAM is available" in gui.dock.dependency_label.text()
    finally:
        gui.remove()


def support_class(name, color):
    from seg_qgis_plugin.gui.classes import LabelClass

    return LabelClass(name, color)


def shapely_square():
    from shapely.geometry import box

    return box(*support.square_bounds_map())


TORCH_MISSING = textwrap.dedent('''
    import json, os, sys
    for name in ("torch", "torchvision", "segment_anything", "onnxruntime"):
        sys.modules[name] = None  # `import torch` raises ImportError from here on (no SAM at all)
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    import importlib.util
    spec = importlib.util.spec_from_file_location("support", sys.argv[1])
    support = importlib.util.module_from_spec(spec); spec.loader.exec_module(support)
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
    app = QgsApplication([], True, sys.argv[3]); app.setPrefixPath("/usr", True); app.initQgis()
    support.isolate_user_settings(sys.argv[3])
    import rasterio
    from rasterio.transform import from_origin
    data = support.synthetic_ortho()
    path = os.path.join(sys.argv[2], "ortho.tif")
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(*support.ORIGIN, support.PIXEL, support.PIXEL)) as dst:
        dst.write(data)
    raster = QgsRasterLayer(path, "ortho", "gdal"); QgsProject.instance().addMapLayer(raster)
    canvas = support.make_canvas(raster)
    iface = support.FakeIface(canvas)
    import seg_qgis_plugin
    plugin = seg_qgis_plugin.classFactory(iface)
    plugin.initGui()
    gui = plugin.gui
    dock, controller = gui.dock, gui.controller
    out = {"dependency_text": dock.dependency_label.text(),
           "sam_enabled": dock.backend_combo.model().item(0).isEnabled(),
           "backend": dock.backend_combo.currentData(), "loaded": support.leftovers(iface)}
    dock.tile.setValue(128); dock.overlap.setValue(32)
    support.give_classes(dock)
    dock.create_target_layer(os.path.join(sys.argv[2], "labels.gpkg"))
    dock.start(); support.wait_idle(controller, 60)
    out["ready"] = controller.ready
    support.click(canvas, *support.square_centre_map()); support.wait_idle(controller, 60)
    out["fid"] = controller.accept()
    plugin.unload()
    from qgis.PyQt.QtCore import QCoreApplication, QEvent
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete); QgsApplication.processEvents()
    out["unloaded"] = support.leftovers(iface)
    out["gui_after_unload"] = getattr(plugin, "gui", None) is not None
    print("RESULT " + json.dumps(out))
''')


def test_plugin_loads_and_unloads_without_torch(qgis_app, tmp_path):
    """A fresh QGIS process in which `import torch` and onnxruntime fail: the plugin loads, the dock
    says what is missing and to press Install dependencies, the classic backend labels, and unload leaves nothing behind."""
    script = tmp_path / "torch_missing.py"
    script.write_text(TORCH_MISSING)
    support_path = pathlib.Path(__file__).with_name("gui_support.py")
    done = subprocess.run([sys.executable, str(script), str(support_path), str(tmp_path), str(tmp_path / "profile")],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"subprocess failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    out = json.loads(lines[-1][len("RESULT "):])
    assert "torch" in out["dependency_text"] and "press Install dependencies" in out["dependency_text"]
    assert out["sam_enabled"] is False and out["backend"] == "classic"
    assert out["loaded"]["toolbars"] and "SegDock" in out["loaded"]["docks"]
    assert out["ready"] is True and out["fid"] is not None, "the classic backend works without torch"
    assert out["unloaded"] == {"toolbars": [], "docks": [], "menus": {}, "shortcuts": 0, "map_tool": None, "tasks": [],
                                     "rubber_bands": 0}
    assert out["gui_after_unload"] is False
    assert len(support.read_gpkg(tmp_path / "labels.gpkg")[1]) == 1


def test_loading_the_gui_imports_no_torch(qgis_app):
    """Heavy imports are lazy: the whole GUI (dock, tools, controller, installer) loads without torch
    or any other third-party package."""
    code = ("import sys, os; os.environ['QT_QPA_PLATFORM'] = 'offscreen'; import seg_qgis_plugin.gui.plugin_gui; "
            "import seg_qgis_plugin.gui.deps_dialog; "
            "print(sorted(m for m in ('torch', 'segment_anything', 'torchvision', 'numpy', 'rasterio', 'shapely', 'pyproj', "
            "'cv2', 'affine', 'pyogrio', 'safetensors') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
