"""Helpers for the GUI tests: a synthetic orthophoto, a real canvas, real mouse and key events.

The test_gui_*.py files load this module by path (`load_support` in each; pytest runs with
--import-mode=importlib, so test folders are not importable packages). It holds no tests.
Events go through Qt (QTest on the canvas viewport), so the canvas turns them into
QgsMapMouseEvents and hands them to the active map tool exactly as in QGIS.
"""
from __future__ import annotations

import time

# The bright square every test looks for: raster pixels (col0, row0, col1, row1), end exclusive.
SQUARE = (60, 80, 100, 120)
ORIGIN, PIXEL = (500000.0, 4650000.0), 0.5  # EPSG:32633, 0.5 m pixels (tests/conftest.py write_raster)
SIZE = 200
# A dock starts without classes (the user adds them or loads an ontology); tests add these.
STARTER_CLASSES = (("building", "#e31a1c"), ("tree", "#33a02c"), ("water", "#1f78b4"), ("field", "#ff7f00"))


def give_classes(dock, classes=STARTER_CLASSES):
    """Add `classes` ((name, colour) pairs) the dock's class list lacks, as a user does, and choose the first."""
    from seg_qgis_plugin.gui.classes import LabelClass

    known = [c.name for c in dock.classes()]
    for name, color in classes:
        if name not in known:
            dock.add_class_row(LabelClass(name, color))
    dock.select_class_index(0)


def square_bounds_map():
    """(xmin, ymin, xmax, ymax) of SQUARE in the raster CRS (pixel edges)."""
    c0, r0, c1, r1 = SQUARE
    x0, y0 = ORIGIN
    return x0 + c0 * PIXEL, y0 - r1 * PIXEL, x0 + c1 * PIXEL, y0 - r0 * PIXEL


def square_centre_map():
    xmin, ymin, xmax, ymax = square_bounds_map()
    return (xmin + xmax) / 2, (ymin + ymax) / 2


def synthetic_ortho():
    """uint8 (3, SIZE, SIZE): a textured dark field with one bright square (fixed seed)."""
    import numpy as np  # here, not at import: the stock-QGIS test loads this module without numpy

    rng = np.random.default_rng(7)
    data = rng.integers(20, 60, size=(3, SIZE, SIZE)).astype(np.uint8)
    c0, r0, c1, r1 = SQUARE
    data[:, r0:r1, c0:c1] = rng.integers(200, 240, size=(3, r1 - r0, c1 - c0)).astype(np.uint8)
    return data


def wait_until(condition, timeout: float = 30.0):
    """Run the Qt event loop until `condition()` holds (task results arrive through it)."""
    from qgis.core import QgsApplication

    deadline = time.monotonic() + timeout
    while not condition():
        QgsApplication.processEvents()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        time.sleep(0.002)
    QgsApplication.processEvents()


def wait_idle_events():
    """Let Qt deliver what is already posted (shortcut activations, queued signals)."""
    from qgis.core import QgsApplication

    for _ in range(3):
        QgsApplication.processEvents()


def wait_idle(controller, timeout: float = 30.0):
    wait_until(lambda: controller.is_idle, timeout)


def canvas_pixel(canvas, x: float, y: float):
    """The canvas widget pixel (QPoint) showing map point (x, y) in the canvas CRS."""
    from qgis.core import QgsPointXY
    from qgis.PyQt.QtCore import QPoint

    p = canvas.getCoordinateTransform().transform(QgsPointXY(x, y))
    return QPoint(int(round(p.x())), int(round(p.y())))


def click(canvas, x: float, y: float, button=None, modifiers=None):
    """A real mouse click at map point (x, y) (canvas CRS) on the canvas viewport."""
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtTest import QTest

    button = button or Qt.MouseButton.LeftButton
    modifiers = modifiers or Qt.KeyboardModifier.NoModifier
    QTest.mouseClick(canvas.viewport(), button, modifiers, canvas_pixel(canvas, x, y))


def drag(canvas, start, end):
    """A left-button drag from map point `start` to `end` (canvas CRS)."""
    from qgis.PyQt.QtCore import QEvent, QPointF, Qt
    from qgis.PyQt.QtGui import QMouseEvent
    from qgis.PyQt.QtTest import QTest
    from qgis.PyQt.QtWidgets import QApplication

    a, b = canvas_pixel(canvas, *start), canvas_pixel(canvas, *end)
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mousePress(canvas.viewport(), left, none, a)
    middle = (a + b) / 2
    move = QMouseEvent(QEvent.Type.MouseMove, QPointF(middle), left, left, none)
    QApplication.sendEvent(canvas.viewport(), move)
    QTest.mouseRelease(canvas.viewport(), left, none, b)


def key(canvas, key, modifiers=None):
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtTest import QTest

    QTest.keyClick(canvas, key, modifiers or Qt.KeyboardModifier.NoModifier)


def make_canvas(layer, crs=None, size=(400, 400)):
    """A shown QgsMapCanvas on `layer`, in `crs` (default: the layer's), zoomed to the layer."""
    from qgis.core import QgsCoordinateTransform, QgsProject
    from qgis.gui import QgsMapCanvas

    canvas = QgsMapCanvas()
    canvas.resize(*size)
    canvas.show()
    crs = crs or layer.crs()
    canvas.setDestinationCrs(crs)
    canvas.setLayers([layer])
    extent = QgsCoordinateTransform(layer.crs(), crs, QgsProject.instance()).transformBoundingBox(layer.extent())
    canvas.setExtent(extent)
    canvas.refresh()
    return canvas


READER = """
import json, sys
import pyogrio.raw
meta, _, geometry, fields = pyogrio.raw.read(sys.argv[1])
plain = lambda v: v.item() if hasattr(v, "item") else v
rows = [{n: plain(fields[k][i]) for k, n in enumerate(meta["fields"])} for i in range(len(geometry))]
print(json.dumps({"crs": meta["crs"], "wkb": [bytes(g).hex() for g in geometry], "rows": rows}))
"""


def read_gpkg(path):
    """Every feature on disk, read by GDAL in another process: (crs, [shapely geometry], [dict]).

    Another process, because (1) that is what "on disk" means: a crash of QGIS would keep exactly
    this; (2) reading a GeoPackage that QGIS holds open with pyogrio *in the same process* mixes two
    SQLite libraries (pyogrio's bundled one and QGIS's) on one WAL file and reads stale data."""
    import json
    import subprocess
    import sys

    from shapely import from_wkb

    done = subprocess.run([sys.executable, "-c", READER, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    return out["crs"], [from_wkb(bytes.fromhex(g)) for g in out["wkb"]], out["rows"]


class FakeIface:
    """The few QgisInterface calls the plugin GUI makes, backed by a real QMainWindow and a real
    QgsMapCanvas (headless QGIS has no QgisApp), so toolbars and docks really are added and removed."""

    def __init__(self, canvas=None):
        from qgis.gui import QgsMapCanvas, QgsMessageBar
        from qgis.PyQt.QtWidgets import QMainWindow

        self.window = QMainWindow()
        self.canvas = canvas or QgsMapCanvas()
        self.window.setCentralWidget(self.canvas)
        self.bar = QgsMessageBar()
        self.window.resize(1100, 700)
        self.plugins_menu = self.window.menuBar().addMenu("&Plugins")
        self.plugin_menus = {}

    def mainWindow(self):  # noqa: N802 (QGIS API)
        return self.window

    def mapCanvas(self):  # noqa: N802
        return self.canvas

    def messageBar(self):  # noqa: N802
        return self.bar

    def addToolBar(self, name):  # noqa: N802
        return self.window.addToolBar(name)

    def addDockWidget(self, area, dock):  # noqa: N802
        self.window.addDockWidget(area, dock)

    def removeDockWidget(self, dock):  # noqa: N802
        self.window.removeDockWidget(dock)

    def addPluginToMenu(self, name, action):  # noqa: N802
        """Plugins > `name` > action, on a real menu bar (QGIS puts it under its Plugins menu)."""
        menu = self.plugin_menus.get(name)
        if menu is None:
            menu = self.plugins_menu.addMenu(name)
            self.plugin_menus[name] = menu
        menu.addAction(action)

    def removePluginMenu(self, name, action):  # noqa: N802
        menu = self.plugin_menus.get(name)
        if menu is not None:
            menu.removeAction(action)
            if not menu.actions():
                self.plugins_menu.removeAction(menu.menuAction())
                del self.plugin_menus[name]

    def plugin_menu_entries(self):
        """{menu name: [action texts]} under Plugins."""
        return {name: [a.text() for a in menu.actions()] for name, menu in self.plugin_menus.items()}


def leftovers(iface):
    """What Seg left in the window: toolbars, docks, map tool, Seg tasks, rubber bands."""
    from qgis.core import QgsApplication
    from qgis.gui import QgsRubberBand
    from qgis.PyQt.QtWidgets import QDockWidget, QShortcut, QToolBar

    window, canvas = iface.mainWindow(), iface.mapCanvas()
    tool = canvas.mapTool()
    return {
        "toolbars": [t.objectName() for t in window.findChildren(QToolBar) if "Seg" in t.objectName() or t.windowTitle() == "Seg"],
        "docks": [d.objectName() for d in window.findChildren(QDockWidget) if "Seg" in d.objectName()],
        "menus": iface.plugin_menu_entries() if hasattr(iface, "plugin_menu_entries") else {},
        "shortcuts": sum(isinstance(s, QShortcut) for s in canvas.findChildren(QShortcut)),
        "map_tool": type(tool).__name__ if tool is not None else None,
        "tasks": [t.description() for t in QgsApplication.taskManager().tasks() if t.description().startswith("Seg")],
        "rubber_bands": sum(isinstance(item, QgsRubberBand) for item in canvas.scene().items()),
    }


def isolate_user_settings(folder):
    """QgsSettings (QSettings) written under `folder` from now on, never in the user's own file: the
    dock remembers its values there. Returns the folder."""
    from qgis.PyQt.QtCore import QSettings

    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
            QSettings.setPath(fmt, scope, str(folder))
    return folder
