"""Keyboard shortcuts that work while the Seg dock or the map canvas has focus.

    Enter / Return   accept the mask          Esc             clear the prompts
    Ctrl+Z           undo                     Ctrl+Shift+Z    redo (also the platform's Redo, e.g. Ctrl+Y)
    1 ... 9          choose class 1 ... 9 of the dock's class list

They are QShortcuts with the WidgetWithChildrenShortcut context on the dock and on the canvas, so
they never take keys from other QGIS panels. On the canvas they are enabled only while a Seg map
tool is active (QGIS's own tools keep their Enter and Esc). In the dock a text field keeps its
keys: digits and Ctrl+Z edit the text (Qt gives a focused line edit those keys first), and Enter or
Esc there finish the edit instead of accepting or clearing the mask.
"""
from __future__ import annotations

from typing import Callable, List, Tuple

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QKeySequence
from qgis.PyQt.QtWidgets import (QAbstractItemView, QAbstractSpinBox, QApplication, QLineEdit, QPlainTextEdit, QTextEdit)

from .qt_compat import QShortcut
from .worker import log_problem

CLASS_KEYS = 9


def _sequences(standard, *extra: str) -> List[QKeySequence]:
    found = list(QKeySequence.keyBindings(standard)) if standard is not None else []
    for text in extra:
        sequence = QKeySequence(text)
        if sequence not in found:
            found.append(sequence)
    return found


def bindings(dock, controller) -> List[Tuple[QKeySequence, Callable[[], object], bool]]:
    """(key, action, finishes_text_edit): the keys and what they do."""
    out = [(QKeySequence(Qt.Key.Key_Return), controller.accept, True),
           (QKeySequence(Qt.Key.Key_Enter), controller.accept, True),
           (QKeySequence(Qt.Key.Key_Escape), controller.clear, True)]
    out += [(s, controller.undo, False) for s in _sequences(QKeySequence.StandardKey.Undo, "Ctrl+Z")]
    out += [(s, controller.redo, False) for s in _sequences(QKeySequence.StandardKey.Redo, "Ctrl+Shift+Z")]
    out += [(QKeySequence(str(n)), (lambda n=n: dock.select_class_index(n - 1)), False) for n in range(1, CLASS_KEYS + 1)]
    return out


def text_widget_with_focus():
    """The focused widget when it edits text (a line edit, spin box, text box or a table cell
    editor), else None."""
    widget = QApplication.focusWidget()
    if isinstance(widget, (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit)):
        return widget
    parent = widget.parentWidget() if widget is not None else None
    while parent is not None:
        if isinstance(parent, QAbstractItemView) and widget is not parent:
            return widget  # an item editor (a class name being typed)
        parent = parent.parentWidget()
    return None


class SegShortcuts:
    """The shortcuts on `dock` and `canvas`; `tool_types`: the Seg map tool classes that enable
    the canvas shortcuts. `remove()` takes them all away (plugin unload)."""

    def __init__(self, dock, canvas, controller, tool_types: tuple):
        self.canvas, self.controller, self.tool_types = canvas, controller, tuple(tool_types)
        self.dock_shortcuts: List[QShortcut] = []
        self.canvas_shortcuts: List[QShortcut] = []
        for sequence, action, finishes_edit in bindings(dock, controller):
            for parent, kept in ((dock, self.dock_shortcuts), (canvas, self.canvas_shortcuts)):
                shortcut = QShortcut(sequence, parent)
                shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                shortcut.setAutoRepeat(False)
                shortcut.activated.connect(lambda action=action, finishes_edit=finishes_edit: self._run(action, finishes_edit))
                kept.append(shortcut)
        canvas.mapToolSet.connect(self._tool_changed)
        self._tool_changed(canvas.mapTool())

    def _tool_changed(self, tool, *previous) -> None:
        on = isinstance(tool, self.tool_types)
        for shortcut in self.canvas_shortcuts:
            shortcut.setEnabled(on)

    def _run(self, action, finishes_edit: bool) -> None:
        editing = text_widget_with_focus()
        if editing is not None and finishes_edit:
            editing.clearFocus()  # Enter/Esc in a text field ends the edit (editingFinished fires)
            return
        try:
            action()
        except Exception as exc:  # noqa: BLE001 (an exception escaping a Qt slot would end in QGIS's error dialog)
            self.controller.errorRaised.emit(log_problem(exc, "running a Seg shortcut"))

    def remove(self) -> None:
        try:
            self.canvas.mapToolSet.disconnect(self._tool_changed)
        except TypeError:
            pass
        for shortcut in self.dock_shortcuts + self.canvas_shortcuts:
            shortcut.setEnabled(False)
            shortcut.setParent(None)
            shortcut.deleteLater()
        self.dock_shortcuts, self.canvas_shortcuts = [], []
