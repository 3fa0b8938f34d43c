"""Classes that Qt 6 moved from QtWidgets to QtGui (QGIS 4), imported from where this QGIS has them."""
try:
    from qgis.PyQt.QtGui import QAction, QShortcut, QUndoCommand  # Qt 6: QGIS 4
except ImportError:  # Qt 5: QGIS 3
    from qgis.PyQt.QtWidgets import QAction, QShortcut, QUndoCommand

__all__ = ["QAction", "QShortcut", "QUndoCommand"]
