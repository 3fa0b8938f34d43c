"""Everything the plugin adds to the QGIS window, created in one place and removed in one place.

`SegGui(iface).create()` adds the Seg toolbar (dock toggle, point tool, box tool, accept), the
Plugins > Seg menu (Seg dock, Install dependencies...), the dock, the two map tools and the
keyboard shortcuts, sharing one controller; `remove()` takes all of it away again and cancels
running work, so unloading the plugin leaves no toolbar, menu entry, dock, map tool, shortcut,
rubber band or task. Nothing third-party is imported here (numpy, rasterio, torch...): the plugin
loads without them and the dock says what is missing.
"""
from __future__ import annotations

import os

from qgis.core import QgsProject
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon

from .qt_compat import QAction
from .controller import SegController
from .dock import SegDock
from .map_tools import BoxPromptTool, PointPromptTool, PromptTool
from .review import install_review_panel, uninstall_review_panel
from .shortcuts import SegShortcuts

TOOLBAR_NAME = "SegToolbar"
MENU = "&Seg"
ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "icon.svg")


class SegGui:
    def __init__(self, iface):
        self.iface = iface
        self.toolbar = self.dock = self.controller = self.shortcuts = None
        self.tools, self.actions, self.menu_actions = {}, [], []

    def create(self) -> None:
        iface, canvas = self.iface, self.iface.mapCanvas()
        self.controller = SegController(canvas, QgsProject.instance())
        self.controller.errorRaised.connect(self._show_error)
        self.dock = SegDock(self.controller, QgsProject.instance(), iface.mainWindow())
        iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.tools = {"point": PointPromptTool(canvas, self.controller), "box": BoxPromptTool(canvas, self.controller)}
        self.toolbar = iface.addToolBar("Seg")
        self.toolbar.setObjectName(TOOLBAR_NAME)
        window = iface.mainWindow()
        dock_action = self.dock.toggleViewAction()
        dock_action.setIcon(QIcon(ICON))
        dock_action.setText("Seg dock")
        point, box, accept = QAction("Point", window), QAction("Box", window), QAction("Accept", window)
        point.setToolTip("Seg point prompts: left click on the object, right click or Shift+click on the background")
        box.setToolTip("Seg box prompt: drag a box around the object")
        accept.setToolTip("Accept the Seg mask as a feature (Enter)")
        accept.triggered.connect(lambda: self.controller.accept())
        for action, tool in ((point, self.tools["point"]), (box, self.tools["box"])):
            action.setCheckable(True)
            tool.setAction(action)
            action.triggered.connect(lambda checked=False, tool=tool: canvas.setMapTool(tool))
        self.actions = [dock_action, point, box, accept]
        for action in self.actions:
            self.toolbar.addAction(action)
        self.dock.set_tool_actions(point, box)
        self.controller.sessionChanged.connect(lambda ready: ready and canvas.setMapTool(self.tools["point"]))
        self.shortcuts = SegShortcuts(self.dock, canvas, self.controller, (PromptTool,))
        self.review = install_review_panel(iface, self.controller, lambda: canvas.setMapTool(self.tools["point"]), self.toolbar, MENU)
        install = QAction("Install dependencies...", window)
        install.setObjectName("SegInstallDependenciesAction")
        install.setToolTip("Install the Python packages Seg needs into its private folder")
        install.triggered.connect(lambda: self.open_installer())
        dock_action.setObjectName("SegDockAction")
        self.menu_actions = [dock_action, install]
        if hasattr(iface, "addPluginToMenu"):
            for action in self.menu_actions:
                iface.addPluginToMenu(MENU, action)

    def open_installer(self):
        """Plugins > Seg > Install dependencies...: show the dock and its installer dialog."""
        if self.dock is None:
            return None
        self.dock.show()
        self.dock.raise_()
        return self.dock.open_install_dialog()

    def remove(self) -> None:
        """Undo create(): cancel work, release the map tools, remove dock and toolbar."""
        if self.controller is None:
            return
        canvas = self.iface.mapCanvas()
        self.controller.shutdown()
        self.shortcuts.remove()
        uninstall_review_panel(self.iface, *self.review, MENU)
        if hasattr(self.iface, "removePluginMenu"):
            for action in self.menu_actions:
                self.iface.removePluginMenu(MENU, action)
        for tool in self.tools.values():
            canvas.unsetMapTool(tool)
            tool.deleteLater()
        self.iface.removeDockWidget(self.dock)
        for combo in (self.dock.raster_combo, self.dock.target_combo):
            combo.blockSignals(True)  # until deleteLater runs, layers added to the project must not reach the dock
        self.dock.setParent(None)
        self.dock.deleteLater()
        self.iface.mainWindow().removeToolBar(self.toolbar)
        self.toolbar.setParent(None)
        self.toolbar.deleteLater()
        for action in self.actions[1:] + self.menu_actions[1:]:  # the dock's own toggle action goes with it
            action.setParent(None)
            action.deleteLater()
        self.controller.deleteLater()
        self.toolbar = self.dock = self.controller = self.shortcuts = None
        self.tools, self.actions, self.menu_actions = {}, [], []

    def _show_error(self, message: str) -> None:
        bar = self.iface.messageBar() if hasattr(self.iface, "messageBar") else None
        if bar is not None:
            from qgis.core import Qgis

            bar.pushMessage("Seg", message, Qgis.MessageLevel.Warning, 8)

