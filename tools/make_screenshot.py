"""Render docs/screenshot.png offscreen: the Seg dock beside a canvas showing a mask preview, and
optionally measure click-to-preview latency through the real GUI path.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/make_screenshot.py [--out docs/screenshot.png]
    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/make_screenshot.py --latency 30

The scene is the synthetic orthophoto of `seg demo` (seed 0); the backend is the weights-free
classic one, so the picture needs no download. --latency builds a vit_tiny SAM checkpoint (random
weights; its prompt encoder and mask decoder are SAM's real ones, the same cost as vit_b's), clicks
N times on the map through the point tool after the tile is encoded, and prints p50/p95 of the time
from the mouse release to the mask drawn on the canvas.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def wait(controller, timeout=120.0):
    """Block in a Qt event loop (not a polling loop: that would steal a core from the model
    thread) until the controller's worker is idle."""
    from qgis.PyQt.QtCore import QEventLoop, QTimer

    if controller.is_idle:
        return
    loop = QEventLoop()

    def quit_when_idle(idle):
        if idle:
            loop.quit()

    controller.worker.idleChanged.connect(quit_when_idle)
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    loop.exec_()
    controller.worker.idleChanged.disconnect(quit_when_idle)
    if not controller.is_idle:
        raise TimeoutError("the controller did not finish in time")


def map_pixel(canvas, col, row, transform):
    from qgis.core import QgsPointXY
    from qgis.PyQt.QtCore import QPoint

    x, y = transform * (col, row)
    p = canvas.getCoordinateTransform().transform(QgsPointXY(x, y))
    return QPoint(int(round(p.x())), int(round(p.y())))


def click(canvas, pixel):
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtTest import QTest

    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pixel)


def build_window(raster_path, work):
    from qgis.core import QgsProject, QgsRasterLayer
    from qgis.gui import QgsMapCanvas
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtWidgets import QAction, QMainWindow

    from seg_qgis_plugin.gui.controller import SegController
    from seg_qgis_plugin.gui.dock import SegDock
    from seg_qgis_plugin.gui.map_tools import PointPromptTool

    project = QgsProject.instance()
    raster = QgsRasterLayer(raster_path, "orthophoto", "gdal")
    project.addMapLayer(raster)
    window = QMainWindow()
    window.setWindowTitle("Seg")
    canvas = QgsMapCanvas()
    window.setCentralWidget(canvas)
    window.resize(1320, 1080)
    controller = SegController(canvas, project)
    dock = SegDock(controller, project, window)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    window.show()
    canvas.setDestinationCrs(raster.crs())
    target = dock.create_target_layer(os.path.join(work, "labels.gpkg"))
    canvas.setLayers([target, raster])
    canvas.setExtent(raster.extent())
    tool = PointPromptTool(canvas, controller)
    point_action, box_action = QAction("Point", window), QAction("Box", window)
    for action in (point_action, box_action):
        action.setCheckable(True)
    tool.setAction(point_action)
    canvas.setMapTool(tool)
    dock.set_tool_actions(point_action, box_action)
    return window, canvas, controller, dock, tool, raster


def screenshot(out: str) -> None:
    from seg_qgis_plugin.demo.scene import write_scene
    from seg_qgis_plugin.core.geo.raster import RasterSource

    work = tempfile.mkdtemp(prefix="seg-shot-")
    objects = write_scene(os.path.join(work, "ortho.tif"), 768, 768)
    window, canvas, controller, dock, tool, raster = build_window(os.path.join(work, "ortho.tif"), work)
    with RasterSource(os.path.join(work, "ortho.tif")) as source:
        transform = source.transform
    dock.tile.setValue(512)
    dock.overlap.setValue(128)
    dock.tags_edit.setText("date=2024-06-01; sensor=UAV; annotator=ana")
    dock.tags_changed()
    dock.backend_combo.setCurrentIndex(dock.backend_combo.findData("classic"))
    dock.start()
    wait(controller)
    buildings = [o for o in objects if o.class_name == "building"]
    dock.select_class("building")
    for building in buildings[:2]:  # two accepted features, styled by class
        click(canvas, map_pixel(canvas, *building.point, transform))
        wait(controller)
        controller.accept()
    dock.select_class("water")
    pond = next(o for o in objects if o.name == "big pond")
    click(canvas, map_pixel(canvas, *pond.point, transform))  # the live preview
    wait(controller)
    canvas.refresh()
    canvas.waitWhileRendering()
    from qgis.core import QgsApplication

    for _ in range(20):
        QgsApplication.processEvents()
        time.sleep(0.02)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    window.grab().save(out)
    print(f"wrote {out}")
    controller.shutdown()


def latency(clicks: int) -> None:
    import numpy as np
    import torch

    from seg_qgis_plugin.core.models.checkpoints import build_sam
    from seg_qgis_plugin.core.geo.raster import RasterSource
    from seg_qgis_plugin.demo.scene import write_scene
    from seg_qgis_plugin.gui.session import SessionConfig

    torch.manual_seed(0)
    work = tempfile.mkdtemp(prefix="seg-latency-")
    checkpoint = os.path.join(work, "vit_tiny.pth")
    torch.save(build_sam("vit_tiny").state_dict(), checkpoint)
    path = os.path.join(work, "ortho.tif")
    objects = write_scene(path, 1024, 1024)
    window, canvas, controller, dock, tool, raster = build_window(path, work)
    with RasterSource(path) as source:
        transform = source.transform
    controller.start_session(SessionConfig(raster=path, backend="sam", checkpoint=checkpoint, model_type="vit_tiny",
                                           device="cpu", tile=1024, overlap=256))
    wait(controller)
    times = []
    points = [o.point for o in objects]
    for i in range(clicks + 1):
        controller.clear()
        pixel = map_pixel(canvas, *points[i % len(points)], transform)
        start = time.perf_counter()
        click(canvas, pixel)
        wait(controller)
        if i:  # the first click may still encode
            times.append(1000 * (time.perf_counter() - start))
    print(f"click -> mask preview on the canvas, SAM decoder (vit_tiny encoder, cached tile), {torch.get_num_threads()} threads, "
          f"{clicks} clicks: p50 {statistics.median(times):.1f} ms, p95 {np.percentile(times, 95):.1f} ms")
    # the same prompts straight through the core (segment + polygon), to see what the GUI adds
    from seg_qgis_plugin.core.geo.prompts import Prompt
    from seg_qgis_plugin.core.geo.vectorize import mask_to_geometry

    core = []
    for i in range(1, clicks + 1):
        x, y = transform * points[i % len(points)]
        start = time.perf_counter()
        segmentation = controller.segmenter.segment(Prompt("EPSG:32633", ((x, y),), (1,)))
        mask_to_geometry(segmentation.mask, segmentation.transform)
        core.append(1000 * (time.perf_counter() - start))
    print(f"the same prompts through the core alone (segment + polygon): p50 {statistics.median(core):.1f} ms, "
          f"p95 {np.percentile(core, 95):.1f} ms")
    controller.shutdown()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "docs", "screenshot.png"))
    parser.add_argument("--latency", type=int, default=0, help="measure N clicks instead of taking the screenshot")
    args = parser.parse_args(argv)
    from qgis.core import QgsApplication

    app = QgsApplication([], True, tempfile.mkdtemp(prefix="seg-profile-"))
    app.setPrefixPath("/usr", True)
    app.initQgis()
    if args.latency:
        latency(args.latency)
    else:
        screenshot(os.path.normpath(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
