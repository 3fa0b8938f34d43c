"""The Review panel: a person goes through pre-labels, most doubtful first, and decides.

A queue of the features of any polygon layer whose `status` is the one chosen (default
"prelabel"; a feature without status counts as a pre-label), ordered by doubt (lowest score, then
lowest stability, missing values first) or by any field (gui/review_queue.py). The panel zooms to
each feature, outlines it (an outline, not a fill: the reviewer judges the pixels under it), and
shows its attributes and the window it came from. It docks as a tab beside the Seg dock, so the
attribute table has the full height; a new project empties it.

Keys (with the panel focused): A accept, R reject, E edit (re-prompt with the Seg point and box
tools; the next mask accepted with Enter replaces the geometry), N or Space next, P previous,
1-9 set the class (the project's class list), Ctrl+Z undo the last decision, Esc leave editing.

Each decision writes `status` (accepted, rejected; reviewed after a class change or an edit),
`reviewer` (setting seg/reviewer, the OS user by default) and `reviewed` (UTC, ISO 8601), saved at
once: through the layer's edit buffer, or on a PostGIS label table as one UPDATE that several
reviewers can make at once without overwriting each other (gui/review_saving.py, which also undoes).
Fields the layer lacks (status, reviewer, reviewed) are added to it when a review starts. Rejected
features stay in the layer, filterable by status.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

from qgis.core import (QgsCoordinateTransform, QgsGeometry, QgsMapLayerProxyModel, QgsProject, QgsSettings, QgsVectorLayer,
                       QgsWkbTypes)
from qgis.gui import QgsDockWidget, QgsMapLayerComboBox, QgsRubberBand
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor, QKeySequence
from qgis.PyQt.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                                 QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from .qt_compat import QShortcut
from ..core.errors import OutputError
from .classes import load_classes
from .postgis_layer import is_versioned_postgis, target_of_layer
from ..qgis_adapters.sinks import label_fields
from .review_queue import (DOUBT, REMASKED, REVIEW_EDIT, REVIEW_FIELDS, REVIEWER_KEY, STATUS_CHOICES, decision_text,
                           ensure_review_fields, now_utc, plain_value, review_queue, reviewer_name)
from .review_saving import ReviewSaving

__all__ = ["DOUBT", "REVIEW_FIELDS", "REVIEWER_KEY", "STATUS_CHOICES", "ReviewPanel", "ensure_review_fields",
           "install_review_panel", "now_utc", "review_queue", "reviewer_name", "uninstall_review_panel"]


PLACED_KEY = "seg/review_panel_placed"


class ReviewPanel(ReviewSaving, QgsDockWidget):
    """See the module docstring. `controller` (a SegController) and `activate_tool` (starts the Seg
    point tool) make E work; without them E says what is missing."""

    def __init__(self, canvas, project=None, controller=None, activate_tool: Optional[Callable[[], None]] = None, parent=None):
        super().__init__("Seg: review", parent)
        self.setObjectName("SegReviewDock")
        self.canvas, self.project = canvas, project or QgsProject.instance()
        self.controller, self.activate_tool = controller, activate_tool
        self.layer: Optional[QgsVectorLayer] = None
        self.queue: List[int] = []
        self.position = -1
        self.decided: set = set()
        self.history: List[tuple] = []
        self.added_fields: List[str] = []
        self._started_editing = False
        self._editing = None  # (scratch layer, previous target layer) while E waits for a mask
        self.postgis_target: Optional[str] = None  # the table's target when edits use optimistic locking
        self.shown_versions: Dict[int, int] = {}  # feature id -> `version` when it was last shown
        self.outline = None  # the rubber band around the feature shown
        self._build()
        self.project.cleared.connect(self._project_cleared)  # a bound slot: disconnected when the panel goes
        self._bind_keys()

    # -- building ------------------------------------------------------------------------------

    def _build(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        form = QFormLayout()
        self.layer_combo = QgsMapLayerComboBox()
        self.layer_combo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.layer_combo.layerChanged.connect(self.set_layer)  # a bound slot: disconnected when the panel goes
        form.addRow("Labels", self.layer_combo)
        self.status_combo = QComboBox()
        self.status_combo.addItems(STATUS_CHOICES)
        form.addRow("Status", self.status_combo)
        order = QHBoxLayout()
        self.order_combo = QComboBox()
        self.descending = QCheckBox("descending")
        order.addWidget(self.order_combo, 1)
        order.addWidget(self.descending)
        form.addRow("Order", order)
        self.reviewer_edit = QLineEdit(reviewer_name())
        self.reviewer_edit.editingFinished.connect(self._remember_reviewer)
        form.addRow("Reviewer", self.reviewer_edit)
        layout.addLayout(form)
        self.start_button = QPushButton("Start review")
        self.start_button.clicked.connect(self.refresh)
        layout.addWidget(self.start_button)
        self.progress_label, self.feature_label, self.window_label = QLabel("No review started."), QLabel(""), QLabel("")
        for label in (self.progress_label, self.feature_label, self.window_label):
            label.setWordWrap(True)
            layout.addWidget(label)
        self.attributes = QTableWidget(0, 2)
        self.attributes.setHorizontalHeaderLabels(["field", "value"])
        self.attributes.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.attributes.verticalHeader().hide()
        self.attributes.horizontalHeader().setStretchLastSection(True)  # values get the panel's width
        layout.addWidget(self.attributes, 1)
        buttons = QHBoxLayout()
        for text, slot in (("Accept (A)", self.accept), ("Reject (R)", self.reject), ("Edit (E)", self.edit),
                           ("Previous (P)", self.previous), ("Next (N)", self.next)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.message = QLabel("A accept, R reject, E edit, N/Space next, P previous, 1-9 class, Ctrl+Z undo.")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.setWidget(body)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def _bind_keys(self) -> None:
        bindings = [("A", self.accept), ("R", self.reject), ("E", self.edit), ("N", self.next), ("Space", self.next),
                    ("P", self.previous), ("Esc", self.cancel_edit), ("Ctrl+Z", self.undo)]
        bindings += [(str(n), (lambda n=n: self.set_class_index(n - 1))) for n in range(1, 10)]
        self.shortcuts = []
        for text, slot in bindings:
            shortcut = QShortcut(QKeySequence(text), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.setAutoRepeat(False)
            shortcut.activated.connect(slot)
            self.shortcuts.append(shortcut)

    # -- the queue ------------------------------------------------------------------------------

    def _remember_reviewer(self) -> None:
        QgsSettings().setValue(REVIEWER_KEY, self.reviewer_edit.text().strip())

    def set_layer(self, layer: Optional[QgsVectorLayer]) -> None:
        self.cancel_edit()
        self._stop_editing()
        self.layer = layer if isinstance(layer, QgsVectorLayer) and layer.isValid() else None
        self.queue, self.position, self.decided, self.history = [], -1, set(), []
        self.postgis_target = target_of_layer(self.layer) if is_versioned_postgis(self.layer) else None
        self.shown_versions = {}
        self.order_combo.clear()
        self.order_combo.addItem(DOUBT)
        if self.layer is not None:
            self.order_combo.addItems([f.name() for f in self.layer.fields()])
            if self.layer_combo.currentLayer() is not self.layer and self.project.mapLayer(self.layer.id()) is not None:
                self.layer_combo.blockSignals(True)
                self.layer_combo.setLayer(self.layer)
                self.layer_combo.blockSignals(False)
        self.progress_label.setText("Press Start review." if self.layer else "Choose a labels layer.")

    def refresh(self) -> None:
        """(Re)build the queue from the layer's current values and show its first feature."""
        if self.layer is None:
            self.set_layer(self.layer_combo.currentLayer())
        if self.layer is None:
            self._say("Choose a labels layer first.")
            return
        try:
            self.added_fields = ensure_review_fields(self.layer)
        except OutputError as exc:
            self._say(str(exc))
            return
        order = None if self.order_combo.currentIndex() <= 0 else self.order_combo.currentText()
        self.queue = review_queue(self.layer, self.status_combo.currentText(), order, self.descending.isChecked())
        self.decided, self.position = set(), -1
        if self.added_fields:
            self._say(f"Added the fields {', '.join(self.added_fields)} to {self.layer.name()}.")
        self._go(0)

    @property
    def current_fid(self) -> Optional[int]:
        return self.queue[self.position] if 0 <= self.position < len(self.queue) else None

    def next(self) -> None:
        self._go(self.position + 1)

    def previous(self) -> None:
        self._go(self.position - 1)

    def _go(self, position: int) -> None:
        self.cancel_edit()
        if not self.queue:
            self.position = -1
            self._show(None)
            return
        self.position = min(max(position, 0), len(self.queue) - 1)
        self._show(self.current_fid)

    def _show(self, fid: Optional[int]) -> None:
        self.progress_label.setText(f"{len(self.decided)} of {len(self.queue)} reviewed")
        self.attributes.setRowCount(0)
        if fid is None:
            self.feature_label.setText("The queue is empty." if not self.queue else "")
            self.window_label.setText("")
            self._outline(None)
            return
        feature = self.layer.getFeature(fid)
        if self.postgis_target is not None:
            self.shown_versions[fid] = plain_value(feature["version"])
        self.feature_label.setText(f"Feature {fid} ({self.position + 1} of {len(self.queue)} in the queue)")
        names = self.layer.fields().names()
        self.attributes.setRowCount(len(names))
        for row, name in enumerate(names):
            self.attributes.setItem(row, 0, QTableWidgetItem(name))
            value = plain_value(feature[name])
            item = QTableWidgetItem("" if value is None else str(value))
            item.setToolTip(item.text())
            self.attributes.setItem(row, 1, item)
        self.attributes.resizeColumnToContents(0)
        window = plain_value(feature["window"]) if "window" in names else None
        source = plain_value(feature["source"]) if "source" in names else None
        self.window_label.setText(f"Window {window or '?'} of {source or 'an unknown raster'}" if window or source else "No window recorded.")
        self._outline(feature.geometry())
        self._zoom_to(feature.geometry())

    def _outline(self, geometry: Optional[QgsGeometry]) -> None:
        if self.canvas is None:
            return
        if self.outline is None:
            self.outline = QgsRubberBand(self.canvas, QgsWkbTypes.GeometryType.PolygonGeometry)
            self.outline.setFillColor(QColor(0, 0, 0, 0))
            self.outline.setStrokeColor(QColor(0, 230, 255))
            self.outline.setWidth(3)
        if geometry is None or geometry.isNull():
            self.outline.reset(QgsWkbTypes.GeometryType.PolygonGeometry)
        else:
            self.outline.setToGeometry(geometry, self.layer)

    def _project_cleared(self) -> None:
        self.layer_combo.setLayer(None)
        self.set_layer(None)
        self.feature_label.setText("")
        self.window_label.setText("")
        self.attributes.setRowCount(0)

    def _zoom_to(self, geometry: QgsGeometry) -> None:
        if self.canvas is None or geometry is None or geometry.isNull():
            return
        box = geometry.boundingBox()
        to_canvas = QgsCoordinateTransform(self.layer.crs(), self.canvas.mapSettings().destinationCrs(), self.project)
        box = to_canvas.transformBoundingBox(box)
        pad = max(box.width(), box.height()) * 0.5 or 10.0
        box.grow(pad)
        self.canvas.setExtent(box)
        self.canvas.refresh()

    # -- decisions -----------------------------------------------------------------------------

    def accept(self) -> None:
        self._decide("accepted", advance=True)

    def reject(self) -> None:
        self._decide("rejected", advance=True)

    def set_class_index(self, index: int) -> None:
        classes = load_classes(self.project)
        if index >= len(classes):
            self._say(f"The project has {len(classes)} classes; there is no class {index + 1}.")
            return
        if self.layer is None or self.layer.fields().lookupField("class") < 0:
            self._say("This layer has no class field.")
            return
        self._decide("reviewed", advance=False, extra={"class": classes[index].name})

    def _decide(self, status: str, advance: bool, extra: Optional[Dict[str, object]] = None, geometry: Optional[QgsGeometry] = None) -> bool:
        fid = self.current_fid
        if fid is None:
            self._say("Nothing to review: press Start review.")
            return False
        reviewer = self.reviewer_edit.text().strip() or reviewer_name()
        values = {"status": status, "reviewer": reviewer, "reviewed": now_utc(), **(extra or {})}
        if not self._write(fid, values, geometry, f"Seg review: {status} {fid}"):
            return False
        self.decided.add(fid)
        self._say(decision_text(self.layer.name(), fid, status, extra or {}))
        if advance and self.position < len(self.queue) - 1:
            self._go(self.position + 1)
        else:
            self._show(fid)
        return True

    # -- edit: re-prompt ----------------------------------------------------------------------

    def edit(self) -> None:
        """Send the next accepted mask of the Seg tools to the current feature instead of a layer."""
        controller = self.controller
        if self.current_fid is None:
            self._say("Nothing to edit: press Start review.")
            return
        if controller is None or not controller.ready:
            self._say("Start a Seg session in the Seg dock to re-prompt this feature.")
            return
        self.cancel_edit()
        scratch = QgsVectorLayer("MultiPolygon", f"{self.layer.name()} feature {self.current_fid}", "memory")
        scratch.setCrs(self.layer.crs())
        scratch.dataProvider().addAttributes(label_fields().toList())  # the new mask's score and provenance
        scratch.updateFields()
        scratch.setCustomProperty(REVIEW_EDIT, True)  # the controller leaves the telling to this panel
        self._editing = (scratch, controller.target_layer, self.current_fid)
        controller.target_layer = scratch
        controller.featureAdded.connect(self._mask_accepted)
        if self.activate_tool is not None:
            self.activate_tool()
        self._say("Edit: prompt the object with the Seg point or box tool, then press Enter; Esc here cancels.")

    def cancel_edit(self) -> None:
        if self._editing is None:
            return
        _, previous, _ = self._editing
        self._editing = None
        try:
            self.controller.featureAdded.disconnect(self._mask_accepted)
        except TypeError:
            pass
        self.controller.target_layer = previous

    def _mask_accepted(self, scratch_fid: int) -> None:
        scratch, _, fid = self._editing
        found = scratch.getFeature(scratch_fid)
        geometry = QgsGeometry(found.geometry())
        names = self.layer.fields().names()
        provenance = {name: plain_value(found[name]) for name in REMASKED if name in names and plain_value(found[name]) is not None}
        self.cancel_edit()
        if QgsWkbTypes.isMultiType(self.layer.wkbType()):
            geometry.convertToMultiType()
        else:
            geometry.convertToSingleType()
        if fid in self.queue:
            self.position = self.queue.index(fid)
        self._decide("reviewed", advance=False, extra=provenance, geometry=geometry)

    # -- leaving ------------------------------------------------------------------------------

    def _stop_editing(self) -> None:
        if self.layer is not None and self._started_editing and self.layer.isEditable():
            self.layer.commitChanges()
        self._started_editing = False

    def close_review(self) -> None:
        """Leave editing mode if the panel started it, and take the outline away (plugin unload)."""
        self.cancel_edit()
        self._stop_editing()
        if self.outline is not None and self.canvas is not None:
            self.canvas.scene().removeItem(self.outline)
            self.outline = None

    def _say(self, text: str) -> None:
        self.message.setText(text)


def install_review_panel(iface, controller, activate_tool, toolbar, menu: str):
    """The Review panel docked (hidden) in the QGIS window, with a toolbar button and a Plugins
    menu entry that show it. Returns (panel, action); `uninstall_review_panel` takes them away."""
    panel = ReviewPanel(iface.mapCanvas(), QgsProject.instance(), controller, activate_tool, iface.mainWindow())
    iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, panel)
    panel.hide()
    panel.visibilityChanged.connect(lambda visible: visible and _tab_beside_seg_dock_once(iface.mainWindow(), panel))
    action = panel.toggleViewAction()
    action.setText("Review labels")
    action.setObjectName("SegReviewAction")
    action.setToolTip("Seg review: go through pre-labels, most doubtful first (A accept, R reject, E edit)")
    if toolbar is not None:
        toolbar.addAction(action)
    if hasattr(iface, "addPluginToMenu"):
        iface.addPluginToMenu(menu, action)
    return panel, action


def _tab_beside_seg_dock_once(window, panel) -> None:
    """The first time the panel shows in a QGIS profile, it becomes a tab beside the Seg dock, so
    the attribute table gets the full height; later QGIS restores it wherever the user left it.
    Not when the plugin loads: QGIS restores its window layout after loading plugins, and that
    stacks a new panel under the dock."""
    settings = QgsSettings()
    seg_dock = window.findChild(QDockWidget, "SegDock")
    if settings.value(PLACED_KEY, False, type=bool) or seg_dock is None or window.dockWidgetArea(seg_dock) != window.dockWidgetArea(panel):
        return
    settings.setValue(PLACED_KEY, True)
    window.tabifyDockWidget(seg_dock, panel)
    panel.raise_()


def uninstall_review_panel(iface, panel, action, menu: str) -> None:
    panel.close_review()
    panel.layer_combo.blockSignals(True)  # until deleteLater runs, layers added to the project must not reach it
    if hasattr(iface, "removePluginMenu"):
        iface.removePluginMenu(menu, action)
    iface.removeDockWidget(panel)
    panel.setParent(None)
    panel.deleteLater()
