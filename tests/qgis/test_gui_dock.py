"""The dock as a user meets it, in real QGIS (headless): layout, keyboard shortcuts with the dock or
the canvas focused, settings applied and remembered, status messages, hover, missing packages and
the installer, the Plugins menu. Features are read back from the GeoPackage by GDAL in another
process; masks come from the oracle backend (tests/conftest.py), whose answers are known exactly.
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import sys
import zipfile

import pytest


import seg_test_gui_support as support  # registered by tests/qgis/conftest.py


@pytest.fixture(autouse=True)
def user_settings(tmp_path):
    """The dock remembers its values in QgsSettings: here, in a folder of this test."""
    return support.isolate_user_settings(tmp_path / "qsettings")


@pytest.fixture
def ortho_project(qgis_app, raster_factory):
    from qgis.core import QgsProject, QgsRasterLayer

    project = QgsProject.instance()
    project.clear()
    layer = QgsRasterLayer(raster_factory(support.synthetic_ortho(), name="ortho.tif"), "ortho", "gdal")
    assert layer.isValid()
    project.addMapLayer(layer)
    yield project, layer
    project.clear()


@pytest.fixture
def seg_gui(ortho_project, oracle):
    """make(backend=oracle("bright")) -> (SegGui, FakeIface): the whole plugin GUI in a shown main
    window, its controller answering with `backend`; removed afterwards."""
    from qgis.PyQt.QtWidgets import QApplication

    from seg_qgis_plugin.gui.plugin_gui import SegGui

    made = []

    def make(backend=None, classes=True):
        project, raster = ortho_project
        canvas = support.make_canvas(raster)
        iface = support.FakeIface(canvas)
        gui = SegGui(iface)
        gui.create()
        if classes:  # a dock starts without classes; most tests need a few
            support.give_classes(gui.dock)
        gui.controller.backend_factory = lambda config: backend if backend is not None else oracle("bright")
        iface.window.show()
        iface.window.activateWindow()
        QApplication.setActiveWindow(iface.window)
        made.append((gui, iface))
        return gui, iface

    yield make
    for gui, iface in made:
        gui.remove()
        iface.window.close()
        flush_deletes()


def flush_deletes():
    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QgsApplication.processEvents()


def start_session(gui, tmp_path, name="labels.gpkg"):
    dock, controller = gui.dock, gui.controller
    dock.backend_combo.setCurrentIndex(dock.backend_combo.findData("classic"))
    dock.tile.setValue(128)
    dock.overlap.setValue(32)
    assert dock.create_target_layer(str(tmp_path / name)) is not None
    dock.start()
    support.wait_until(lambda: controller.ready and controller.is_idle, 60)
    return tmp_path / name


def press(widget, key, modifiers=None):
    """A real key press on `widget` (which must have the focus), through Qt's shortcut handling."""
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtTest import QTest

    QTest.keyClick(widget, key, modifiers or Qt.KeyboardModifier.NoModifier)
    support.wait_idle_events()


def focus(widget):
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtWidgets import QApplication

    widget.setFocus(Qt.FocusReason.OtherFocusReason)
    support.wait_until(lambda: QApplication.focusWidget() is widget, 5)


# -- layout ---------------------------------------------------------------------------------------


def test_actions_and_status_stay_in_view_and_the_dock_is_wide_enough(seg_gui):
    from qgis.PyQt.QtWidgets import QLabel, QPushButton

    gui, iface = seg_gui()
    dock = gui.dock
    support.wait_until(lambda: dock.isVisible(), 5)
    for widget in (dock.start_button, dock.accept_button, dock.clear_button, dock.undo_button, dock.redo_button,
                   dock.status, dock.background_label):
        assert not dock.scroll.isAncestorOf(widget), f"{widget.objectName()} scrolls out of view"
        assert widget.isVisibleTo(dock)
    body = dock.scroll.widget()
    assert dock.width() >= body.minimumSizeHint().width(), "the settings are clipped at the dock's width"
    assert dock.widget().minimumWidth() >= 380
    names = {w.objectName() for w in dock.findChildren((QPushButton, QLabel))}
    assert {"SegStartButton", "SegAcceptButton", "SegUndoButton", "SegRedoButton", "SegStatus", "SegBackgroundLabel",
            "SegInstallDepsButton", "SegDepsLabel"} <= names


def test_class_list_shows_six_rows_and_a_new_class_is_selected(seg_gui):
    gui, _ = seg_gui()
    dock, table = gui.dock, gui.dock.class_table
    assert table.minimumHeight() >= 6 * table.verticalHeader().defaultSectionSize()
    for _ in range(5):
        dock.findChild(type(dock.start_button), "SegAddClassButton").click()
    last = table.rowCount() - 1
    assert table.currentRow() == last and gui.controller.label_class.name == f"class {last + 1}"
    colours = [c.color for c in dock.classes()]
    assert len(set(colours)) == len(colours), f"each new class gets its own colour: {colours}"
    assert table.visualItemRect(table.item(last, 0)).intersects(table.viewport().rect()), "the new class is scrolled to"


def test_a_first_dock_has_no_classes_and_saving_without_one_says_so(seg_gui, tmp_path):
    gui, _ = seg_gui(classes=False)
    dock, controller = gui.dock, gui.controller
    assert dock.classes() == [] and controller.label_class is None, "no class is chosen for the user"
    gpkg = start_session(gui, tmp_path)
    errors = []
    controller.errorRaised.connect(errors.append)
    controller.add_point(_point(*support.square_centre_map()), True)
    support.wait_idle(controller)
    assert controller.accept() is None and support.read_gpkg(gpkg)[2] == []
    assert errors == ["Choose a class in the Seg dock (Add class, or load an ontology) before saving a label."]
    dock.findChild(type(dock.start_button), "SegAddClassButton").click()
    assert controller.accept() is not None
    assert [r["class"] for r in support.read_gpkg(gpkg)[2]] == ["class 1"]


# -- shortcuts ------------------------------------------------------------------------------------


def test_shortcuts_work_with_the_dock_focused(seg_gui, tmp_path):
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtWidgets import QApplication

    gui, iface = seg_gui()
    dock, controller = gui.dock, gui.controller
    gpkg = start_session(gui, tmp_path)
    x, y = support.square_centre_map()
    controller.add_point(_point(x, y), True)
    controller.add_point(_point(x + 1, y), True)
    support.wait_idle(controller)
    focus(dock.start_button)

    press(dock.start_button, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(controller.steps) == 1, "Ctrl+Z with the dock focused undoes a prompt"
    press(dock.start_button, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(controller.steps) == 2, "Ctrl+Shift+Z redoes it"
    press(dock.start_button, Qt.Key.Key_2)
    assert controller.label_class.name == dock.classes()[1].name, "key 2 chooses the second class"
    press(dock.start_button, Qt.Key.Key_Return)
    support.wait_idle(controller)
    rows = support.read_gpkg(gpkg)[2]
    assert [r["class"] for r in rows] == [dock.classes()[1].name], "Enter with the dock focused accepts"

    controller.add_point(_point(x, y), True)
    support.wait_idle(controller)
    press(dock.start_button, Qt.Key.Key_Escape)
    assert controller.steps == [] and controller.preview.mask_geometry.isEmpty(), "Esc clears"

    # a text field keeps its keys: a digit is typed, Enter ends the edit and accepts nothing
    controller.add_point(_point(x, y), True)
    support.wait_idle(controller)
    focus(dock.tags_edit)
    press(dock.tags_edit, Qt.Key.Key_3)
    assert dock.tags_edit.text().endswith("3") and controller.label_class.name == dock.classes()[1].name
    press(dock.tags_edit, Qt.Key.Key_Return)
    assert len(support.read_gpkg(gpkg)[2]) == 1 and len(controller.steps) == 1
    assert QApplication.focusWidget() is not dock.tags_edit


def test_canvas_shortcuts_only_while_a_seg_tool_is_active(seg_gui, tmp_path):
    from qgis.gui import QgsMapToolPan
    from qgis.PyQt.QtCore import Qt

    gui, iface = seg_gui()
    controller, canvas = gui.controller, iface.canvas
    gpkg = start_session(gui, tmp_path)
    assert isinstance(canvas.mapTool(), type(gui.tools["point"]))
    focus(canvas)
    support.click(canvas, *support.square_centre_map())
    support.wait_idle(controller)
    press(canvas, Qt.Key.Key_4)
    assert controller.label_class.name == gui.dock.classes()[3].name
    press(canvas, Qt.Key.Key_Return)
    support.wait_idle(controller)
    assert len(support.read_gpkg(gpkg)[2]) == 1
    press(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert support.read_gpkg(gpkg)[2] == [], "Ctrl+Z on the canvas undoes the accepted feature"
    press(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(support.read_gpkg(gpkg)[2]) == 1, "Ctrl+Shift+Z redoes it"

    pan = QgsMapToolPan(canvas)
    canvas.setMapTool(pan)
    assert not any(s.isEnabled() for s in gui.shortcuts.canvas_shortcuts), "QGIS's own tools keep their keys"
    canvas.setMapTool(gui.tools["box"])
    assert all(s.isEnabled() for s in gui.shortcuts.canvas_shortcuts)
    canvas.unsetMapTool(pan)


# -- session, status, hover -----------------------------------------------------------------------


def test_a_changed_setting_restarts_the_session_by_itself(seg_gui, tmp_path):
    gui, _ = seg_gui()
    dock, controller = gui.dock, gui.controller
    start_session(gui, tmp_path)
    assert controller.segmenter.grid.tile == 128
    dock.tile.setValue(96)
    assert dock.restart_pending and "restarts" in dock.status.text()
    support.wait_until(lambda: not dock.restart_pending and controller.ready and controller.is_idle, 60)
    assert controller.segmenter.grid.tile == 96 and controller.session_config.tile == 96


def test_status_follows_the_object_and_background_work_has_its_own_line(seg_gui, tmp_path, oracle):
    class CacheableOracle(oracle):
        cacheable = True

    gui, _ = seg_gui(CacheableOracle("bright"))
    dock, controller = gui.dock, gui.controller
    start_session(gui, tmp_path)
    assert dock.status.text().startswith("Ready") and "ortho.tif" in dock.status.text()
    assert "tile(s) around the view" in dock.background_label.text(), "encoding ahead is reported apart"
    controller.add_point(_point(*support.square_centre_map()), True)
    support.wait_idle(controller)
    assert "Mask ready" in dock.status.text()
    controller.undo()
    assert "Mask ready" not in dock.status.text() and "No prompt" in dock.status.text()
    controller.redo()
    assert "Mask ready" in dock.status.text()


def test_a_low_score_is_flagged_before_and_at_accept(seg_gui, tmp_path, oracle):
    from dataclasses import replace

    class Unsure(oracle):
        def decode(self, embedding, prompt, multimask=None):
            return replace(super().decode(embedding, prompt, multimask), score=0.31)

    gui, _ = seg_gui(Unsure("bright"))
    dock, controller = gui.dock, gui.controller
    start_session(gui, tmp_path)
    controller.add_point(_point(*support.square_centre_map()), True)
    support.wait_idle(controller)
    assert "Low score 0.31" in dock.status.text()
    assert controller.accept() is not None
    assert "score is low (0.31)" in dock.status.text()


def test_a_point_outside_names_the_raster_and_is_logged_as_a_warning(seg_gui, tmp_path):
    from qgis.core import Qgis, QgsApplication

    gui, iface = seg_gui()
    dock, controller = gui.dock, gui.controller
    start_session(gui, tmp_path)
    logged = []
    QgsApplication.messageLog().messageReceived.connect(lambda message, tag, level: logged.append((message, tag, level)))
    x0, y0 = support.ORIGIN
    controller.add_point(_point(x0 - 100, y0 + 100), True)
    support.wait_idle(controller)
    assert "outside the raster ortho.tif" in dock.status.text()
    seg = [(m, level) for m, tag, level in logged if tag == "Seg"]
    assert seg and all(level == Qgis.MessageLevel.Warning and "Traceback" not in m for m, level in seg)


def test_hover_overlay_goes_when_hover_is_switched_off(seg_gui, tmp_path):
    from qgis.PyQt.QtTest import QTest

    gui, iface = seg_gui()
    dock, controller, canvas = gui.dock, gui.controller, iface.canvas
    start_session(gui, tmp_path)
    dock.hover_box.setChecked(True)
    centre = support.square_centre_map()
    support.click(canvas, *centre)  # encodes the tile
    support.wait_idle(controller)
    controller.clear()
    QTest.mouseMove(canvas.viewport(), support.canvas_pixel(canvas, centre[0] + 2, centre[1]))
    support.wait_idle(controller)
    assert not controller.preview.hover.asGeometry().isEmpty()
    dock.hover_box.setChecked(False)
    assert controller.preview.hover.asGeometry().isEmpty() and not controller.hover_enabled


# -- layers and settings --------------------------------------------------------------------------


def test_a_new_geopackage_layer_is_named_after_the_file(seg_gui, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem

    from seg_qgis_plugin.gui.label_layer import LEGACY_LAYER_NAME, create_label_layer

    gui, _ = seg_gui()
    layer = gui.dock.create_target_layer(str(tmp_path / "ponds 2024.gpkg"))
    assert layer.name() == "ponds 2024" and "layername=ponds 2024" in layer.source()
    legacy = create_label_layer(str(tmp_path / "old.gpkg"), QgsCoordinateReferenceSystem("EPSG:32633"), LEGACY_LAYER_NAME)
    del legacy
    reopened = create_label_layer(str(tmp_path / "old.gpkg"), QgsCoordinateReferenceSystem("EPSG:32633"))
    assert f"layername={LEGACY_LAYER_NAME}" in reopened.source(), "an earlier version's layer is reopened, not doubled"


def test_settings_are_remembered_by_a_new_dock(seg_gui, tmp_path, tiny_file):
    from qgis.core import QgsProject

    gui, _ = seg_gui()
    dock = gui.dock
    dock.backend_combo.setCurrentIndex(dock.backend_combo.findData("classic"))
    dock.checkpoint.setFilePath(tiny_file)
    dock.cache_dir.setFilePath(str(tmp_path))
    dock.tile.setValue(512)
    dock.tags_edit.setText("annotator=ana")
    dock.tags_changed()
    dock.add_class_row(support_class("pond", "#00ffff"), select=True)
    dock.hover_box.setChecked(True)
    gui.remove()
    flush_deletes()

    for key in ("classes", "tags"):  # as in a new project: classes and tags come from the user's settings
        QgsProject.instance().removeEntry("seg", key)
    again, _ = seg_gui()
    dock = again.dock
    assert dock.backend_combo.currentData() == "classic"
    assert dock.checkpoint.filePath() == tiny_file and dock.cache_dir.filePath() == str(tmp_path)
    assert dock.tile.value() == 512 and dock.hover_box.isChecked() and again.controller.hover_enabled
    assert dock.tags_edit.text() == "annotator=ana" and again.controller.tags == {"annotator": "ana"}
    assert "pond" in [c.name for c in dock.classes()]


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"not a model")
    return str(path)


def support_class(name, color):
    from seg_qgis_plugin.gui.classes import LabelClass

    return LabelClass(name, color)


def _point(x, y):
    from qgis.core import QgsPointXY

    return QgsPointXY(x, y)


# -- missing packages, installer, menu ------------------------------------------------------------


def fake_statuses(missing):
    from seg_qgis_plugin import deps

    return [deps.Status(r, "missing" if r.module in missing else "ok", None if r.module in missing else "1.0",
                        "" if r.module in missing else "python") for r in deps.PINS]


def test_missing_packages_are_named_in_the_dock(seg_gui, monkeypatch):
    from seg_qgis_plugin import deps

    monkeypatch.setattr(deps, "check", lambda private=None, requirements=deps.PINS: fake_statuses({"rasterio", "torch"}))
    gui, iface = seg_gui()
    dock = gui.dock
    assert dock.deps_box.isVisibleTo(dock)
    assert "rasterio" in dock.deps_label.text() and "torch" in dock.deps_label.text()
    assert dock.install_button.isVisibleTo(dock) and dock.install_button.isEnabled()

    monkeypatch.setattr(deps, "check", lambda private=None, requirements=deps.PINS: fake_statuses(set()))
    dock.refresh_dependencies()
    assert not dock.deps_box.isVisibleTo(dock)


def test_plugins_menu_has_the_dock_and_the_installer(seg_gui, monkeypatch):
    from seg_qgis_plugin import deps

    monkeypatch.setattr(deps, "check", lambda private=None, requirements=deps.PINS: fake_statuses({"shapely"}))
    gui, iface = seg_gui()
    assert {"Seg dock", "Install dependencies..."} <= set(iface.plugin_menu_entries()["&Seg"])
    install = [a for a in iface.plugin_menus["&Seg"].actions() if a.text().startswith("Install")][0]
    install.trigger()
    dialog = gui.dock.install_dialog
    assert dialog is not None and dialog.isVisible()
    assert "shapely>=" in dialog.what.text() and dialog.target in dialog.what.text()
    dialog.cancel_button.click()  # nothing running: Cancel closes
    support.wait_until(lambda: not dialog.isVisible(), 5)


def write_wheel(folder, name="seg_fake_dep", version="0.1"):
    """A minimal pure-Python wheel (what pip needs to install it offline)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": "VALUE = 42\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: seg-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{n},,\n" for n in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as z:
        for n, text in files.items():
            z.writestr(n, text)
        z.writestr(f"{dist}/RECORD", record)
    return path


def test_install_dialog_runs_pip_in_a_task_from_a_local_wheel_folder(seg_gui, tmp_path):
    from seg_qgis_plugin import deps
    from seg_qgis_plugin.gui.deps_dialog import InstallDependenciesDialog

    wheels = tmp_path / "wheels"
    write_wheel(wheels)
    target = tmp_path / "private" / "py-test"
    gui, iface = seg_gui()
    dialog = InstallDependenciesDialog(gui.dock, requirements=["seg-fake-dep==0.1"], target=str(target),
                                       pip_options=f"--no-index --find-links {wheels}")
    finished = []
    dialog.installFinished.connect(lambda ok, message: finished.append((ok, message)))
    try:
        dialog.show()
        assert "seg-fake-dep==0.1" in dialog.what.text() and str(target) in dialog.what.text()
        assert dialog.python.filePath(), "the Python to run pip with is found and shown"
        dialog.install_button.click()
        assert dialog.running and not dialog.install_button.isEnabled()
        support.wait_until(lambda: finished, 180)
        assert finished[0][0] is True, finished
        assert (target / "seg_fake_dep" / "__init__.py").exists()
        assert any("Successfully installed" in line for line in dialog.lines)
        assert "Successfully installed" in dialog.log.toPlainText()
        assert dialog.progress.value() == 100 and "Restart QGIS" in dialog.result.text()
        assert not os.path.exists(os.path.join(os.path.dirname(str(target)), "site-packages"))
    finally:
        deps.deactivate(str(target))
        dialog.close()
    assert str(target) not in sys.path


def test_a_running_job_never_shows_100_percent(qgis_app):
    import threading

    from seg_qgis_plugin.gui.worker import Job, ModelWorker, RUNNING_MAX_PERCENT

    worker = ModelWorker()
    release, seen = threading.Event(), []

    def run(progress):
        progress.set_progress(100.0)
        release.wait(10)
        return "done"

    done = []
    worker.submit(Job("encode", "test job", run, done.append))
    support.wait_until(lambda: worker._task is not None and worker._task.progress() > 0, 10)
    seen.append(worker._task.progress())
    release.set()
    support.wait_until(lambda: done, 10)
    worker.close()
    assert seen == [RUNNING_MAX_PERCENT] and done == ["done"]


STOCK_QGIS = '''
import json, os, sys
BLOCKED = ("numpy", "rasterio", "shapely", "pyproj", "cv2", "affine", "torch", "torchvision", "segment_anything",
           "pyogrio", "safetensors")
for name in BLOCKED:
    sys.modules[name] = None  # as in a stock QGIS without them: importing one raises ImportError
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import importlib.util
spec = importlib.util.spec_from_file_location("support", sys.argv[1])
support = importlib.util.module_from_spec(spec); spec.loader.exec_module(support)
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
app = QgsApplication([], True, sys.argv[3]); app.setPrefixPath("/usr", True); app.initQgis()
support.isolate_user_settings(sys.argv[3])
raster = QgsRasterLayer(sys.argv[2], "ortho", "gdal"); QgsProject.instance().addMapLayer(raster)
from qgis.gui import QgsMapCanvas
canvas = QgsMapCanvas(); canvas.setDestinationCrs(raster.crs()); canvas.setExtent(raster.extent()); canvas.show()
iface = support.FakeIface(canvas)
from seg_qgis_plugin.gui.plugin_gui import SegGui
gui = SegGui(iface); gui.create()
dock, controller = gui.dock, gui.controller
out = {"deps_visible": dock.deps_box.isVisibleTo(dock), "deps_text": dock.deps_label.text(),
       "status_at_open": dock.status.text()}
errors = []
controller.errorRaised.connect(errors.append)
from qgis.core import QgsPointXY
controller.add_point(QgsPointXY(*support.square_centre_map()), True)
out["click_before_start"] = errors[-1] if errors else ""
dock.backend_combo.setCurrentIndex(dock.backend_combo.findData("classic"))
dock.start(); support.wait_idle(controller, 60)
out["status_after_start"] = dock.status.text()
out["ready"] = controller.ready
out["imported"] = sorted(name for name in BLOCKED if sys.modules.get(name) is not None)
gui.remove()
print("RESULT " + json.dumps(out))
'''


def test_the_dock_opens_in_a_stock_qgis_and_says_what_is_missing(qgis_app, raster_factory, tmp_path):
    """A fresh QGIS process where numpy, rasterio, shapely, pyproj, cv2, affine and torch cannot be
    imported: the GUI loads, the dock names what is missing, Start and a click explain instead of
    raising."""
    import json
    import subprocess

    path = raster_factory(support.synthetic_ortho(), name="ortho.tif")
    script = tmp_path / "stock.py"
    script.write_text(STOCK_QGIS)
    done = subprocess.run([sys.executable, str(script), str(pathlib.Path(__file__).with_name("gui_support.py")), path,
                           str(tmp_path / "profile")], capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"subprocess failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["imported"] == []
    assert out["deps_visible"] and all(name in out["deps_text"] for name in ("rasterio", "shapely", "pyproj", "cv2"))
    assert re.search(r"Seg needs \w+, which is not installed", out["status_at_open"]), "the raster statistics need packages: said so"
    assert "Start a session first" in out["click_before_start"]
    assert out["ready"] is False and "Install dependencies" in out["status_after_start"]
    assert "Traceback" not in done.stderr


def test_download_fills_the_model_picker_with_a_checked_checkpoint(seg_gui, tmp_path, monkeypatch):
    """Download > vit_b in the dock: a QgsTask fetches the file over HTTP (here from a local server
    standing in for Meta's), checks size and sha256, and the picker gets its path; a file whose
    sha256 differs is refused in one sentence and nothing is placed."""
    import functools
    import hashlib
    import http.server
    import threading

    from seg_qgis_plugin.core.models import registry
    from seg_qgis_plugin.qgis_adapters import model_download

    served = tmp_path / "served"
    served.mkdir()
    payload = os.urandom(300_000)
    (served / "sam_vit_b_01ec64.pth").write_bytes(payload)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    spec = registry.OFFICIAL_MODELS["vit_b"]
    local = f"http://127.0.0.1:{server.server_port}/"
    monkeypatch.setitem(registry.OFFICIAL_MODELS, "vit_b", registry.ModelSpec(
        "vit_b", spec.filename, len(payload), hashlib.sha256(payload).hexdigest(), spec.description, local))
    models = tmp_path / "models"
    monkeypatch.setattr(model_download, "models_folder", lambda: str(models))
    gui, iface = seg_gui()
    dock = gui.dock
    try:
        dock.download_model("vit_b")
        support.wait_until(lambda: dock.download_task is None, 60)
        assert dock.checkpoint.filePath() == str(models / spec.filename), dock.status.text()
        assert (models / spec.filename).read_bytes() == payload and "Downloaded and checked" in dock.status.text()

        (models / spec.filename).unlink()
        monkeypatch.setitem(registry.OFFICIAL_MODELS, "vit_b", registry.ModelSpec(
            "vit_b", spec.filename, len(payload), "0" * 64, spec.description, local))
        dock.download_model("vit_b")
        support.wait_until(lambda: dock.download_task is None, 60)
        assert "Problem:" in dock.status.text() and "sha256" in dock.status.text(), dock.status.text()
        assert not (models / spec.filename).exists()
    finally:
        server.shutdown()


def test_sam2_models_are_offered_and_a_sam2_checkpoint_opens_as_sam2(seg_gui, tmp_path):
    """The Download menu offers the recommended model first (SAM 2.1 Hiera-Tiny where SAM 2 is
    installed); a SAM 2.1 file is told by its weights with "detect from file"."""
    import warnings

    pytest.importorskip("sam2", reason="SAM 2 is not installed (make venv installs requirements-sam2.txt)")
    from seg_qgis_plugin.core.models.random_weights import write_random_checkpoint
    from seg_qgis_plugin.demo.series import write_series
    from seg_qgis_plugin.gui.session import SessionConfig, open_session

    gui, _ = seg_gui()
    dock = gui.dock
    texts = [action.text() for action in dock.download_button.menu().actions()]
    assert texts[0].startswith("sam2.1_hiera_tiny (") and texts[0].endswith(", recommended)")
    assert {"vit_b", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large"} <= {t.split()[0] for t in texts}
    assert dock.model_type.findData("sam2.1_hiera_large") > 0 and dock.model_type.currentData() is None
    checkpoint = write_random_checkpoint("sam2.1_hiera_tiny", str(tmp_path / "tiny.pt"))
    raster = write_series(str(tmp_path)).rasters[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        segmenter, _ = open_session(SessionConfig(raster=raster, backend="sam", checkpoint=checkpoint, device="cpu"))
        assert segmenter.backend.model_id == "sam2.1-hiera_tiny"
        if importlib.util.find_spec("onnxruntime"):
            from seg_qgis_plugin.core.models.onnx_export import export_onnx

            export_onnx(checkpoint, str(tmp_path / "tiny-onnx"))
            segmenter, _ = open_session(SessionConfig(raster=raster, backend="sam", checkpoint=str(tmp_path / "tiny-onnx" / "manifest.json")))
            assert (type(segmenter.backend).__name__, segmenter.backend.model_id) == ("Sam2OnnxBackend", "sam2.1-hiera_tiny")


def test_like_this_on_a_selected_label_adds_prelabels_and_text_asks_for_sam3(seg_gui, tmp_path):
    from seg_qgis_plugin.core.models.classic import ClassicBackend

    gui, _ = seg_gui(backend=ClassicBackend())
    dock, controller = gui.dock, gui.controller
    gpkg = start_session(gui, tmp_path)
    controller.add_point(_point(*support.square_centre_map()), True)
    support.wait_idle(controller)
    fid = controller.accept()
    assert fid is not None
    controller.target_layer.selectByIds([fid])
    errors = []
    controller.errorRaised.connect(errors.append)
    dock.find_all_box.like_button.click()
    support.wait_idle(controller)
    rows = support.read_gpkg(gpkg)[2]
    found = [r for r in rows if r["prompt_type"] == "exemplar"]
    assert errors == [] and found and {r["status"] for r in found} == {"prelabel"}
    assert "added to" in dock.status.text()
    dock.find_all_box.phrase.setText("pond")
    dock.find_all_box.find_button.click()
    support.wait_idle(controller)
    assert errors and "Text prompts need SAM 3" in errors[-1]
