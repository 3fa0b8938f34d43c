"""Drives the Seg plugin inside the real QGIS desktop: `qgis --code driver.py` (desktop_runner.py).

Everything happens as a user would do it: the plugin loaded by QGIS from the profile, the dock opened
from its action, a raster written and added as a layer, the dock's own buttons, real mouse and key
events on the map canvas, one Processing algorithm, and the label GeoPackage read back with OGR.

Environment: SEG_DRIVER_OUT (the result.json to write; its folder holds everything made here) and,
optionally, SEG_DRIVER_CHECKPOINT (a SAM checkpoint for one more click in a SAM session) and
SEG_DRIVER_PG (a postgresql://...?table=NAME target: one more label, accepted into that table) and
SEG_DRIVER_FIRST_MASK_MODEL (a SAM 2.1 ONNX export: Start on a new 1024 x 1024 raster, one click,
and the seconds from Start to the mask in `first_mask`) and SEG_DRIVER_SAM21_CHECKPOINT (a SAM 2.1
.pt: one click on torch, its model id and mask size in `sam21`).
SEG_DRIVER_SCENARIO=install instead opens the dock of a stock QGIS, presses Install dependencies and
then Install with the dialog's defaults, and waits for the end (SEG_DRIVER_INSTALL_TIMEOUT seconds).

The stages are generators run by a QTimer, so the QGIS event loop (tasks, canvas, signals) runs
between steps; a stage yields `Wait`s. Nothing escapes: every exception is recorded in
`errors` and the result is rewritten (atomically) after each stage, then once more with done=true.
A watchdog timer closes modal dialogs (recording their text) and measures how long the UI thread was
blocked; past FREEZE_DUMP_S, faulthandler writes where every thread was. QGIS is left running; the
runner closes it.
"""
import faulthandler
import importlib.util
import json
import os
import threading
import time
import traceback

from osgeo import gdal, ogr, osr
from qgis.core import Qgis, QgsApplication, QgsCoordinateTransform, QgsPointXY, QgsProject
from qgis.PyQt.QtCore import QEvent, QPoint, QPointF, Qt, QTimer
from qgis.PyQt.QtGui import QMouseEvent
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QApplication, QDialog, QDockWidget, QLabel, QPushButton, QTextEdit
from qgis.utils import iface

PLUGIN = "seg_qgis_plugin"
OUT = os.environ["SEG_DRIVER_OUT"]
WORK = os.path.dirname(os.path.abspath(OUT))
CHECKPOINT = os.environ.get("SEG_DRIVER_CHECKPOINT") or None
POSTGIS = os.environ.get("SEG_DRIVER_PG") or None
FIRST_MASK_MODEL = os.environ.get("SEG_DRIVER_FIRST_MASK_MODEL") or None
SAM21_CHECKPOINT = os.environ.get("SEG_DRIVER_SAM21_CHECKPOINT") or None
SCENARIO = os.environ.get("SEG_DRIVER_SCENARIO", "label")
INSTALL_TIMEOUT = float(os.environ.get("SEG_DRIVER_INSTALL_TIMEOUT", "1500"))
SIZE, PIXEL, ORIGIN, EPSG = 512, 0.5, (500000.0, 4650000.0), 32633
# Bright squares on a dark textured field, in raster pixels (col0, row0, col1, row1), end exclusive.
OBJECTS = {"point": (96, 96, 160, 160), "box": (300, 280, 380, 360), "sam": (380, 96, 440, 156)}
WATCH_MS = 300
FREEZE_DUMP_S = 10  # a UI thread blocked this long gets every thread's Python stack dumped


class Wait:
    def __init__(self, condition, timeout, what):
        self.condition, self.deadline, self.what = condition, time.monotonic() + timeout, what


def pause(seconds):
    until = time.monotonic() + seconds
    return Wait(lambda: time.monotonic() >= until, seconds + 1, f"a pause of {seconds} s")


class Stop(Exception):
    """Ends the scenario early without counting as an error (e.g. packages missing in a stock QGIS)."""


class Driver:
    def __init__(self):
        self.result = {"done": False, "plugin_loaded": False, "dock_opened": False, "dock_text": "", "missing": [],
                       "core_missing": [], "features": None, "processing_ok": False, "tile_count": None,
                       "sam_empty_mask": None, "sam21": None, "first_mask": None, "postgis_rows": None, "cluster_rows": None, "assist": None, "review": None, "errors": [], "steps": [], "timings": {}, "messages": [],
                       "longest_freeze": {"seconds": 0.0, "stage": None}, "freeze_stacks": ""}
        self.raster = os.path.join(WORK, "scene.tif")
        self.labels = os.path.join(WORK, "labels.gpkg")
        self.plugin = self.dock = self.controller = self.layer = None
        self.accepted = 0
        if SCENARIO == "install":
            self.stages = iter([(self.find_plugin, False), (self.open_dock, False), (self.install_dependencies, False)])
            self.start()
            return
        stages = [(self.find_plugin, False), (self.open_dock, False), (self.add_raster, False),
                  (self.start_classic, False), (self.label_with_point, False), (self.label_with_box, False),
                  (self.review_labels, False)]
        if POSTGIS is not None:
            stages.append((self.label_into_postgis, False))
        if CHECKPOINT is not None:
            stages.append((self.label_with_sam, False))
        if SAM21_CHECKPOINT is not None:
            stages.append((self.segment_with_sam21, False))
        if importlib.util.find_spec("lightgbm") is not None:
            stages.append((self.learn_from_accepted_labels, False))
        stages.append((self.run_processing, True))
        if importlib.util.find_spec("distributed") is not None:
            stages.append((self.prelabel_on_a_local_cluster, True))
        if FIRST_MASK_MODEL is not None:
            stages.append((self.first_mask_on_a_new_raster, False))
        self.stages = iter(stages + [(self.read_back, True)])
        self.start()

    def start(self):
        self.stage = self.stage_started = self.waiting = None
        self.failed = False
        QgsApplication.messageLog().messageReceived.connect(self.logged)
        self.timer = QTimer()
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.advance)
        self.timer.start(0)
        self.last_tick = time.monotonic()
        self.stacks = open(os.path.join(WORK, "freeze-stacks.txt"), "w+", encoding="utf-8")
        self.watchdog = QTimer()
        self.watchdog.timeout.connect(self.watch)
        self.watchdog.start(WATCH_MS)

    # -- the scheduler ---------------------------------------------------------------------------

    def advance(self):
        try:
            if not self.step():
                self.finish()
                return
        except Exception:  # noqa: BLE001: the driver must report everything, never raise into QGIS
            self.result["errors"].append(traceback.format_exc())
            self.finish()
            return
        self.timer.start(50 if self.waiting is not None else 0)

    def step(self):
        """Move the scenario on by one step; False when it is over."""
        wait = self.waiting
        if wait is not None:
            if not wait.condition():
                if time.monotonic() > wait.deadline:
                    self.waiting = None
                    self.stage_failed(TimeoutError(f"timed out waiting for {wait.what}; {self.situation()}"))
                return True
            self.waiting = None
        if self.stage is None:
            return self.next_stage()
        try:
            self.waiting = next(self.stage[0])
        except StopIteration:
            name = self.stage[1]
            self.result["steps"].append(name)
            self.result["timings"][name] = round(time.monotonic() - self.stage_started, 2)
            self.stage = None
            self.write()
            return True
        except Stop as stop:
            self.result["steps"].append(self.stage[1])
            self.result["stopped"] = str(stop)
            return False
        except Exception as exc:  # noqa: BLE001
            self.stage_failed(exc)
        return True

    def next_stage(self):
        for function, always in self.stages:
            if always or not self.failed:
                self.stage, self.stage_started = (steps_of(function), function.__name__), time.monotonic()
                return True
        return False

    def stage_failed(self, exc):
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.result["errors"].append(f"{self.stage[1]}: {trace}")
        self.failed, self.stage = True, None
        self.write()

    def situation(self):
        """What the dock and the controller say now, for a timeout's message."""
        status = getattr(self.dock, "status", None)
        controller = self.controller
        return (f"the dock says {status.text() if status is not None else None!r}; controller ready "
                f"{getattr(controller, 'ready', None)}, idle {getattr(controller, 'is_idle', None)}, "
                f"work {getattr(getattr(controller, 'worker', None), 'running_kind', None)!r}")

    def watch(self):
        """Runs every WATCH_MS while the event loop runs. Records the longest time the UI thread was
        blocked (a late tick) and in which stage, and closes modal dialogs."""
        now = time.monotonic()
        late, self.last_tick = now - self.last_tick - WATCH_MS / 1000, now
        if late > self.result["longest_freeze"]["seconds"]:
            stage = self.stage[1] if self.stage is not None else None
            self.result["longest_freeze"] = {"seconds": round(late, 2), "stage": stage}
        faulthandler.dump_traceback_later(FREEZE_DUMP_S, file=self.stacks)
        self.close_dialogs()

    def close_dialogs(self):
        """A modal dialog (QGIS's Python error viewer, a message box) would stop the scenario inside
        the step that caused it: record its text as an error and close it."""
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            return
        texts = [w.toPlainText() for w in dialog.findChildren(QTextEdit)]
        texts += [w.text() for w in dialog.findChildren(QLabel) if w.text()]
        self.result["errors"].append(f"modal dialog {dialog.windowTitle()!r}: " + "\n".join(texts))
        dialog.reject() if isinstance(dialog, QDialog) else dialog.close()

    def logged(self, message, tag, level):
        if level >= Qgis.MessageLevel.Warning:
            self.result["messages"].append(f"{tag}: {message}")

    def write(self):
        tmp = OUT + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.result, f, indent=1)
        os.replace(tmp, OUT)

    def finish(self):
        self.watchdog.stop()
        faulthandler.cancel_dump_traceback_later()
        self.stacks.seek(0)
        self.result["freeze_stacks"] = self.stacks.read()[:20000]
        try:
            bar = iface.messageBar()
            self.result["messages"] += [f"message bar: {item.title()}: {item.text()}" for item in bar.items()]
        finally:
            self.result["done"] = True
            self.write()

    # -- the stages ------------------------------------------------------------------------------

    def find_plugin(self):
        import qgis.utils

        yield pause(1)
        self.plugin = qgis.utils.plugins.get(PLUGIN)
        if self.plugin is None:
            self.result["errors"].append("QGIS did not load the plugin; loading it again here says why:\n" + reload_error())
            raise Stop("the plugin did not load")
        self.result["plugin_loaded"] = True

    def open_dock(self):
        gui = getattr(self.plugin, "gui", None)
        dock = getattr(gui, "dock", None) or iface.mainWindow().findChild(QDockWidget, "SegDock")
        if dock is None:
            raise RuntimeError("the plugin added no dock (no plugin.gui.dock, no QDockWidget named SegDock)")
        if not dock.isVisible():
            dock.toggleViewAction().trigger()
        yield Wait(dock.isVisible, 10, "the dock to show")
        self.dock, self.controller = dock, getattr(gui, "controller", None) or dock.controller
        self.result["dock_opened"] = True
        yield pause(0.5)
        text = "\n".join(label.text() for label in dock.findChildren(QLabel) if label.isVisible() and label.text())
        self.result["dock_text"] = text
        from seg_qgis_plugin import deps
        from seg_qgis_plugin.qgis_adapters.deps_task import private_folder

        lacking = [s.requirement for s in deps.check(private_folder()) if not s.usable]
        self.result["missing"] = [r.module for r in lacking if any(name in text for name in (r.module, *r.distributions))]
        self.result["core_missing"] = [r.module for r in lacking if r.group == "core"]
        if self.result["core_missing"] and SCENARIO != "install":
            raise Stop("QGIS's Python lacks " + ", ".join(self.result["core_missing"]))

    def install_dependencies(self):
        """As a user does it: Install dependencies..., the dialog's defaults, Install, wait."""
        self.dock.install_button.click()
        yield Wait(lambda: self.dock.install_dialog is not None and self.dock.install_dialog.isVisible(), 20, "the installer")
        dialog = self.dock.install_dialog
        steps = []
        self.result["install"] = {"plan": dialog.what.text(), "sam_ticked": dialog.sam_box.isChecked(), "steps": steps}
        started = time.monotonic()
        dialog.install_button.click()
        yield Wait(lambda: dialog.task is not None, 10, "the install task to start")
        dialog.task.stepChanged.connect(steps.append)
        yield Wait(lambda: dialog.finished_ok is not None, INSTALL_TIMEOUT, "the install to end")
        self.result["install"].update(ok=dialog.finished_ok, message=dialog.result.text(), seconds=round(time.monotonic() - started))

    def add_raster(self):
        write_scene(self.raster)
        self.layer = iface.addRasterLayer(self.raster, "scene")
        if self.layer is None or not self.layer.isValid():
            raise RuntimeError(f"QGIS could not add {self.raster} as a raster layer")
        canvas = iface.mapCanvas()
        canvas.setExtent(self.to_canvas_rect(self.layer.extent()))
        canvas.refresh()
        yield pause(0.5)
        yield Wait(lambda: not canvas.isDrawing(), 30, "the canvas to draw the raster")

    def start_classic(self):
        dock = self.dock
        dock.raster_combo.setLayer(self.layer)
        choose(dock.backend_combo, "classic")
        if not dock.classes():  # a first project has no classes: add one, as a user does
            from seg_qgis_plugin.gui.classes import LabelClass

            dock.add_class_row(LabelClass("building", "#e31a1c"))
            dock.select_class_index(0)
        if dock.create_target_layer(self.labels) is None:
            raise RuntimeError("the dock could not create the label GeoPackage: " + dock.status.text())
        self.controller.featureAdded.connect(self.feature_added)
        yield from self.start_session(30)

    def label_with_point(self):
        self.dock.point_tool_button.click()
        yield pause(0.2)
        expect_tool("PointPromptTool")
        self.click_object("point")
        yield from self.accept_mask(30)

    def label_with_box(self):
        self.dock.box_tool_button.click()
        yield pause(0.2)
        expect_tool("BoxPromptTool")
        col0, row0, col1, row1 = OBJECTS["box"]
        start, end = self.pixel(*map_point(col0 - 4, row0 - 4)), self.pixel(*map_point(col1 + 4, row1 + 4))
        viewport, left, none = iface.mapCanvas().viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        QTest.mousePress(viewport, left, none, start)
        QApplication.sendEvent(viewport, QMouseEvent(QEvent.Type.MouseMove, QPointF((start + end) / 2), left, left, none))
        QApplication.sendEvent(viewport, QMouseEvent(QEvent.Type.MouseMove, QPointF(end), left, left, none))
        QTest.mouseRelease(viewport, left, none, end)
        yield from self.accept_mask(30)

    def review_labels(self):
        """Review labels from the toolbar, as a user opens it: the panel is a tab beside the Seg
        dock (not squeezed under it) and its attribute table shows the feature's fields."""
        panel = iface.mainWindow().findChild(QDockWidget, "SegReviewDock")
        panel.toggleViewAction().trigger()  # the toolbar's Review labels
        yield Wait(panel.isVisible, 10, "the review panel to show")
        labels = next(layer for layer in QgsProject.instance().mapLayers().values()
                      if layer.source().split("|")[0] == self.labels)
        panel.layer_combo.setLayer(labels)
        panel.status_combo.setCurrentText("accepted")  # the labels the dock accepted above
        panel.start_button.click()
        yield pause(0.5)
        table = panel.attributes
        self.result["review"] = {"tabbed": panel in iface.mainWindow().tabifiedDockWidgets(self.dock),
                                 "queue": panel.progress_label.text(), "fields": table.rowCount(),
                                 "rows_shown": table.viewport().height() // max(1, table.rowHeight(0))}
        next(b for b in panel.findChildren(QPushButton) if b.text() == "Accept (A)").click()
        yield pause(0.5)
        source = ogr.Open(self.labels)
        self.result["review"].update(message=panel.message.text(), editable=labels.isEditable(),
                                     reviewed_on_disk=sum(1 for f in source.GetLayer(0) if f.GetField("reviewer")))
        panel.close_review()
        self.dock.raise_()

    def label_into_postgis(self):
        """The team's shared table as the target: one click, Enter, and the row is in the database."""
        import psycopg2

        dock = self.dock
        geopackage = dock.target_combo.currentLayer()
        if dock.create_target_layer(POSTGIS) is None:
            raise RuntimeError("the dock could not open the PostGIS table: " + dock.status.text())
        dock.point_tool_button.click()
        yield pause(0.2)
        self.click_object("box")
        yield from self.accept_mask(30)
        dsn, table = POSTGIS.split("?table=")
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(f"SELECT count(*), min(version), min(class) FROM {table}")
            self.result["postgis_rows"] = list(cur.fetchone())
        conn.close()
        dock.target_combo.setLayer(geopackage)

    def label_with_sam(self):
        dock = self.dock
        choose(dock.backend_combo, "sam")
        dock.checkpoint.setFilePath(CHECKPOINT)
        dock.device.setCurrentText("cpu")
        yield from self.start_session(150)
        self.dock.point_tool_button.click()
        yield pause(0.2)
        expect_tool("PointPromptTool")
        self.click_object("sam")
        yield from self.accept_mask(60, empty_ok=True)

    def segment_with_sam21(self):
        """A SAM 2.1 checkpoint (.pt) on torch through the dock's model picker: one click, its mask
        shown, then Esc (nothing saved, so the label counts stay those of the other stages)."""
        dock, controller = self.dock, self.controller
        choose(dock.backend_combo, "sam")
        dock.checkpoint.setFilePath(SAM21_CHECKPOINT)
        yield from self.start_session(150)
        dock.point_tool_button.click()
        yield pause(0.2)
        self.click_object("point")
        yield Wait(lambda: controller.is_idle and controller.current_step is not None and controller.current_step.decoded,
                   120, "the SAM 2.1 mask")
        self.result["sam21"] = {"model": controller.segmenter.backend.model_id,
                                "mask_pixels": int(controller.current_step.segmentation.mask.sum())}
        QTest.keyClick(iface.mapCanvas(), Qt.Key.Key_Escape)

    def run_processing(self):
        import processing

        tiles = os.path.join(WORK, "tiles.gpkg")
        done = processing.run("seg:tileraster", {"INPUT": self.raster, "TILE": 256, "OVERLAP": 64, "OUTPUT": tiles})
        self.result["tile_count"] = done["TILE_COUNT"]
        written = count_features(done["OUTPUT"])
        self.result["processing_ok"] = done["TILE_COUNT"] == 9 and written == 9
        if not self.result["processing_ok"]:
            raise RuntimeError(f"seg:tileraster gave TILE_COUNT {done['TILE_COUNT']} and wrote {written} tiles, not 9")

    def learn_from_accepted_labels(self):
        """The flywheel: a layer of small accepted squares (bright objects and background) as the
        target, "Learn from accepted labels" on the whole raster, a QgsTask (LightGBM's threads in
        the QGIS process, after torch), and the pre-labels layer it adds."""
        from qgis.core import QgsVectorLayer

        dock, panel = self.dock, self.dock.assist_panel
        squares = os.path.join(WORK, "squares.gpkg")
        write_squares(squares, {"bright": [(110, 110), (320, 300), (395, 110)],
                                "background": [(20, 20), (250, 200), (450, 450), (200, 400), (20, 300)]})
        layer = QgsVectorLayer(squares, "squares", "ogr")
        QgsProject.instance().addMapLayer(layer)
        geopackage = dock.target_combo.currentLayer()
        dock.target_combo.setLayer(layer)
        panel.scope.setCurrentIndex(panel.scope.findData("raster"))
        panel.learn_button.click()
        yield pause(0.5)
        yield Wait(lambda: panel.task is None, 180, "the assistant's task")
        layers = {lyr.name(): lyr for lyr in QgsProject.instance().mapLayers().values()}
        added, probability = layers.get("squares_assist1"), layers.get("squares_assist1 probability")  # round 1
        self.result["assist"] = {"info": panel.info.text(), "features": added.featureCount() if added else None,
                                 "renderers": {name: layers[name].renderer().type() for name in layers if name.startswith("squares_assist1")},
                                 "probability_ticked": QgsProject.instance().layerTreeRoot().findLayer(probability.id()).isVisible()
                                 if probability else None}
        dock.target_combo.setLayer(geopackage)
        if not added:
            raise RuntimeError("the assistant added no pre-label layer: " + panel.info.text())

    def prelabel_on_a_local_cluster(self):
        """seg:prelabel with the Dask scheduler local:1 from inside QGIS: its worker must start
        QGIS's Python (not a second QGIS) and give the serial result."""
        import processing

        counts = []
        for scheduler in ("", "local:1"):
            out = os.path.join(WORK, f"prelabel{scheduler.replace(':', '')}.gpkg")
            done = processing.run("seg:prelabel", {"INPUT": self.raster, "MODE": 0, "PROMPTS": self.labels, "BACKEND": 0,
                                                   "TILE": 256, "OVERLAP": 64, "SCHEDULER": scheduler, "OUTPUT": out})
            counts.append((done["COUNT"], count_features(done["OUTPUT"])))
        self.result["cluster_rows"] = counts

    def first_mask_on_a_new_raster(self):
        """Start with the SAM 2.1 export on a raster the session has never seen and click an object
        as soon as the session is up: Start -> mask, as a user waits for it. The model is opened once
        beforehand, as `seg models export-onnx` does on the user's machine (ONNX Runtime's optimised
        graphs are then in the user's cache)."""
        from seg_qgis_plugin.core.engine.labeling import open_backend
        from seg_qgis_plugin.demo.scene import write_scene as write_demo_scene

        def use_once():
            backend = open_backend(FIRST_MASK_MODEL, None, "auto", "cpu")
            for graph in ("encoder", "decoder_tile", "decoder_prompt"):
                backend.session(graph)
            backend.close()

        used = threading.Thread(target=use_once)  # off the UI thread: the freeze watch measures Seg, not this set-up
        used.start()
        yield Wait(lambda: not used.is_alive(), 120, "the SAM 2.1 graphs to be optimised once")
        path = os.path.join(WORK, "ortho.tif")
        pond = next(o for o in write_demo_scene(path, 1024, 1024, seed=1) if o.name == "big pond")
        layer = iface.addRasterLayer(path, "ortho")
        canvas, dock, controller = iface.mapCanvas(), self.dock, self.controller
        to_canvas = QgsCoordinateTransform(layer.crs(), canvas.mapSettings().destinationCrs(), QgsProject.instance())
        canvas.setExtent(to_canvas.transformBoundingBox(layer.extent()))
        canvas.refresh()
        yield pause(0.5)
        yield Wait(lambda: not canvas.isDrawing(), 30, "the canvas to draw the new raster")
        yield pause(1.0)  # the user looks at it, then presses Start
        choose(dock.backend_combo, "sam")
        dock.checkpoint.setFilePath(FIRST_MASK_MODEL)
        dock.tile.setValue(1024)
        dock.raster_combo.setLayer(layer)
        started = time.monotonic()
        dock.start_button.click()
        yield Wait(lambda: controller.ready, 60, "the SAM 2.1 session to open")
        opened = time.monotonic()
        self.dock.point_tool_button.click()
        extent = layer.extent()
        x = extent.xMinimum() + pond.point[0] * layer.rasterUnitsPerPixelX()
        y = extent.yMaximum() - pond.point[1] * layer.rasterUnitsPerPixelY()
        centre = canvas.getCoordinateTransform().transform(to_canvas.transform(QgsPointXY(x, y)))
        QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         QPoint(int(round(centre.x())), int(round(centre.y()))))
        yield Wait(lambda: controller.current_step is not None and controller.current_step.decoded, 120, "the first mask")
        shown = time.monotonic()
        step = controller.current_step
        self.result["first_mask"] = {"start_to_first_mask_s": round(shown - started, 2), "start_to_session_s": round(opened - started, 2),
                                     "model": controller.segmenter.backend.model_id, "mask_pixels": int(step.segmentation.mask.sum()),
                                     "qgis": Qgis.QGIS_VERSION, "load_average": os.getloadavg()}
        QTest.keyClick(canvas, Qt.Key.Key_Escape)

    def read_back(self):
        self.result["features"] = count_features(self.labels) if os.path.exists(self.labels) else None

    # -- helpers ---------------------------------------------------------------------------------

    def start_session(self, timeout):
        self.dock.start_button.click()
        controller = self.controller
        yield pause(0.2)
        yield Wait(lambda: controller.ready and controller.is_idle, timeout, "the session to open")

    def accept_mask(self, timeout, empty_ok=False):
        controller = self.controller
        yield Wait(lambda: controller.is_idle and controller.current_step is not None and controller.current_step.decoded,
                   timeout, "the mask")
        if controller.current_step.geometry is None:
            if empty_ok:
                self.result["sam_empty_mask"] = True
                return
            raise RuntimeError("the mask is empty: " + self.dock.status.text())
        wanted = self.accepted + 1
        QTest.keyClick(iface.mapCanvas(), Qt.Key.Key_Return)
        yield Wait(lambda: self.accepted >= wanted, 30, "the feature to be written")
        if empty_ok:
            self.result["sam_empty_mask"] = False

    def feature_added(self, fid):
        self.accepted += 1

    def click_object(self, name):
        col0, row0, col1, row1 = OBJECTS[name]
        centre = self.pixel(*map_point((col0 + col1) / 2, (row0 + row1) / 2))
        QTest.mouseClick(iface.mapCanvas().viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)

    def to_canvas(self):
        canvas_crs = iface.mapCanvas().mapSettings().destinationCrs()
        return QgsCoordinateTransform(self.layer.crs(), canvas_crs, QgsProject.instance())

    def to_canvas_rect(self, rect):
        return self.to_canvas().transformBoundingBox(rect)

    def pixel(self, x, y):
        """The canvas viewport pixel showing raster-CRS point (x, y)."""
        p = iface.mapCanvas().getCoordinateTransform().transform(self.to_canvas().transform(QgsPointXY(x, y)))
        return QPoint(int(round(p.x())), int(round(p.y())))


def steps_of(function):
    """A stage as a generator of Waits, whether or not the function waits for anything."""
    steps = function()
    if steps is not None:
        yield from steps


def map_point(col, row):
    return ORIGIN[0] + col * PIXEL, ORIGIN[1] - row * PIXEL


def choose(combo, data):
    index = combo.findData(data)
    if index < 0 or not combo.model().item(index).isEnabled():
        raise RuntimeError(f"the dock's backend list does not offer {data!r}")
    combo.setCurrentIndex(index)


def expect_tool(name):
    tool = iface.mapCanvas().mapTool()
    if type(tool).__name__ != name:
        raise RuntimeError(f"the dock's tool button left {type(tool).__name__ if tool else None} active, not {name}")


def write_scene(path):
    """A 3-band uint8 GeoTIFF in EPSG:32633: a dark textured field with the OBJECTS as bright squares."""
    import numpy as np

    rng = np.random.default_rng(3)
    data = rng.integers(20, 70, size=(3, SIZE, SIZE)).astype(np.uint8)
    for col0, row0, col1, row1 in OBJECTS.values():
        data[:, row0:row1, col0:col1] = rng.integers(200, 240, size=(3, row1 - row0, col1 - col0)).astype(np.uint8)
    out = gdal.GetDriverByName("GTiff").Create(path, SIZE, SIZE, 3, gdal.GDT_Byte)
    out.SetGeoTransform((ORIGIN[0], PIXEL, 0.0, ORIGIN[1], 0.0, -PIXEL))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    out.SetProjection(srs.ExportToWkt())
    for band in range(3):
        out.GetRasterBand(band + 1).WriteArray(data[band])
    del out  # closes the file


def write_squares(path, squares):
    """Accepted 12 x 12 pixel squares, {class: [(col, row) of the top-left corner]}, as a GeoPackage."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    source = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = source.CreateLayer("squares", srs, ogr.wkbPolygon)
    for name in ("class", "status"):
        layer.CreateField(ogr.FieldDefn(name, ogr.OFTString))
    for label_class, corners in squares.items():
        for col, row in corners:
            (x0, y1), (x1, y0) = map_point(col, row), map_point(col + 12, row + 12)
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("class", label_class)
            feature.SetField("status", "accepted")
            feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"))
            layer.CreateFeature(feature)
    del source  # closes the file


def count_features(path):
    """Features in the first layer of a vector file, read by OGR: what is on disk, not QGIS's edit buffer."""
    source = ogr.Open(path.split("|")[0])
    if source is None:
        raise RuntimeError(f"OGR cannot open {path}")
    return source.GetLayer(0).GetFeatureCount()


def reload_error():
    try:
        import importlib

        importlib.import_module(PLUGIN).classFactory(iface)
    except Exception:  # noqa: BLE001
        return traceback.format_exc()
    return "(no error on a second load)"


try:
    seg_desktop_driver = Driver()
except Exception:  # noqa: BLE001
    with open(OUT, "w", encoding="utf-8") as failed:
        json.dump({"done": True, "errors": [traceback.format_exc()], "steps": []}, failed)
