"""Map tools: mouse events -> prompts in the canvas CRS, handed to the controller. No model calls.

Point tool: left click = a point on the object; right click or Shift+click = a background point.
Box tool: drag a box around the object (points and a box combine).
Both: Enter accepts the mask, Esc clears the prompts, Ctrl+Z undoes the last prompt (or, with none
left, the last accepted feature), Ctrl+Shift+Z redoes; moving the mouse asks for a hover preview
when it is enabled. (With the plugin GUI these keys are QShortcuts on the canvas and the dock, see
shortcuts.py; the tool handles them itself when used on its own.)
"""
from __future__ import annotations

from typing import Optional

from qgis.core import QgsPointXY, QgsRectangle
from qgis.gui import QgsMapTool
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QCursor, QKeySequence

MIN_DRAG_PIXELS = 3  # a shorter drag is a click, not a box


class PromptTool(QgsMapTool):
    """What both tools share: keyboard shortcuts and hover."""

    def __init__(self, canvas, controller):
        super().__init__(canvas)
        self.controller = controller
        self.setCursor(QCursor(Qt.CursorShape.CrossCursor))

    def keyPressEvent(self, event):  # noqa: N802 (Qt API)
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.controller.accept()
        elif key == Qt.Key.Key_Escape:
            self.controller.clear()
        elif event.matches(QKeySequence.StandardKey.Redo) or event.key() == Qt.Key.Key_Z and event.modifiers() == (
                Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier):
            self.controller.redo()
        elif event.matches(QKeySequence.StandardKey.Undo):
            self.controller.undo()
        else:
            event.ignore()
            return
        event.accept()

    def canvasMoveEvent(self, event):  # noqa: N802
        self.controller.hover(self.toMapCoordinates(event.pos()))


class PointPromptTool(PromptTool):
    def canvasReleaseEvent(self, event):  # noqa: N802
        button = event.button()
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return
        negative = button == Qt.MouseButton.RightButton or bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        self.controller.add_point(self.toMapCoordinates(event.pos()), positive=not negative)


class BoxPromptTool(PromptTool):
    def __init__(self, canvas, controller):
        super().__init__(canvas, controller)
        self._start: Optional[QgsPointXY] = None
        self._start_pixel = None

    def canvasPressEvent(self, event):  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._start, self._start_pixel = self.toMapCoordinates(event.pos()), event.pos()

    def canvasMoveEvent(self, event):  # noqa: N802
        if self._start is None:
            super().canvasMoveEvent(event)
            return
        rect = QgsRectangle(self._start, self.toMapCoordinates(event.pos()))
        self.controller.preview.show_box((rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()))

    def canvasReleaseEvent(self, event):  # noqa: N802
        if self._start is None or event.button() != Qt.MouseButton.LeftButton:
            return
        start, start_pixel, self._start = self._start, self._start_pixel, None
        moved = (event.pos() - start_pixel).manhattanLength()
        if moved < MIN_DRAG_PIXELS:
            self.controller.preview.show_box(self.controller.current_step.state.box if self.controller.current_step else None)
            return
        self.controller.set_box(QgsRectangle(start, self.toMapCoordinates(event.pos())))

    def deactivate(self):
        self._start = None
        super().deactivate()
