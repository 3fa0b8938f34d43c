"""The dock's Labels group: the target layer (a new GeoPackage or a PostGIS table), the class list,
the tags, hover, and the ontology and assistant panels below them.

`LabelsGroup` is mixed into SegDock (gui/dock.py): its widgets and methods are the dock's own
(`dock.class_table`, `dock.create_target_layer`), and it uses the dock's `controller`, `project`,
`status`, `_loading` and `_remember`. Classes and tags are saved in the project and remembered in
QgsSettings (seg/dock/classes, seg/dock/tags).

Object names for drivers: SegNewLayerButton, SegPostgisTargetAction, SegClassTable, SegAddClassButton,
SegRemoveClassButton, SegTags, SegHover.
"""
from __future__ import annotations

from typing import List

from qgis.core import Qgis, QgsMapLayerProxyModel, QgsMessageLog
from qgis.gui import QgsColorButton, QgsMapLayerComboBox
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (QCheckBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QInputDialog, QLineEdit, QMenu,
                                 QPushButton, QTableWidget, QTableWidgetItem, QToolButton)

from .qt_compat import QAction
from ..core.engine.ontology import default_color
from ..core.errors import SegError
from ..qgis_adapters import settings_store
from .classes import LabelClass, classes_to_json, load_classes, load_tags_text, parse_tags_text, save_classes, save_tags_text
from .label_layer import create_label_layer
from .worker import LOG_TAG, error_message

CLASS_ROWS_SHOWN = 6


class LabelsGroup:
    """The Labels group of SegDock."""

    def _labels_group(self) -> QGroupBox:
        group, form = QGroupBox("Labels"), QFormLayout()
        self.target_combo = QgsMapLayerComboBox()
        self.target_combo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.target_combo.setAllowEmptyLayer(True)
        self.target_combo.layerChanged.connect(self.target_changed)
        new_layer = QToolButton()
        new_layer.setText("New GeoPackage...")
        new_layer.setObjectName("SegNewLayerButton")
        new_layer.clicked.connect(self._ask_new_layer)
        new_layer.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.postgis_action = QAction("PostGIS table...", new_layer)
        self.postgis_action.setObjectName("SegPostgisTargetAction")
        self.postgis_action.setToolTip("Open or create a label table shared by a team: postgresql://USER@HOST:PORT/DB?table=NAME")
        self.postgis_action.triggered.connect(lambda checked=False: self._ask_postgis_table())
        new_layer.setMenu(QMenu(new_layer))
        new_layer.menu().addAction(self.postgis_action)
        target = QHBoxLayout()
        target.addWidget(self.target_combo, 1)
        target.addWidget(new_layer)
        form.addRow("Target layer", target)
        self.class_table = QTableWidget(0, 2)
        self.class_table.setObjectName("SegClassTable")
        self.class_table.setHorizontalHeaderLabels(["Class", "Colour"])
        self.class_table.horizontalHeader().setStretchLastSection(True)
        self.class_table.verticalHeader().setToolTip("Press the row's number (1-9) to choose the class")
        rows = self.class_table.verticalHeader().defaultSectionSize() * CLASS_ROWS_SHOWN
        self.class_table.setMinimumHeight(rows + self.class_table.horizontalHeader().sizeHint().height() + 4)
        self.class_table.itemChanged.connect(lambda item: self.classes_changed())
        self.class_table.currentCellChanged.connect(lambda *args: self._current_class_changed())
        form.addRow(self.class_table)
        buttons = QHBoxLayout()
        add, remove = QPushButton("Add class"), QPushButton("Remove class")
        add.setObjectName("SegAddClassButton")
        remove.setObjectName("SegRemoveClassButton")
        add.clicked.connect(lambda: self.add_class_row(LabelClass(f"class {self.class_table.rowCount() + 1}", self._unused_colour()),
                                                       select=True))
        remove.clicked.connect(self._remove_current_class)
        buttons.addWidget(add)
        buttons.addWidget(remove)
        form.addRow(buttons)
        self.tags_edit = QLineEdit()
        self.tags_edit.setObjectName("SegTags")
        self.tags_edit.setPlaceholderText("date=2024-06-01; sensor=UAV; annotator=ana")
        self.tags_edit.editingFinished.connect(self.tags_changed)
        form.addRow("Tags", self.tags_edit)
        self.hover_box = QCheckBox("Preview the object under the cursor (hover)")
        self.hover_box.setObjectName("SegHover")
        self.hover_box.toggled.connect(self._hover_toggled)
        form.addRow(self.hover_box)
        self.ontology_panel = self._ontology_panel()  # load/save the ontology, class fields, shared borders
        if self.ontology_panel is not None:
            form.addRow(self.ontology_panel)
        from .assist_panel import optional_assist_panel  # the assistant: learn from accepted labels (gui/assist_panel.py)
        self.assist_panel = optional_assist_panel(self)
        if self.assist_panel is not None:
            form.addRow(self.assist_panel)
        group.setLayout(form)
        return group

    def _ontology_panel(self):
        """gui/ontology_panel.py's panel; left out (with a log line) where a package it needs is missing,
        so that the dock still opens in a stock QGIS."""
        try:
            from .ontology_panel import OntologyPanel
        except ImportError as exc:
            QgsMessageLog.logMessage(f"The ontology panel is off: {error_message(exc)}", LOG_TAG, Qgis.MessageLevel.Warning)
            return None
        return OntologyPanel(self)

    def _ask_new_layer(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "New label GeoPackage", "", "GeoPackage (*.gpkg)")
        if path:
            self.create_target_layer(path)

    def _ask_postgis_table(self) -> None:
        url, ok = QInputDialog.getText(self, "PostGIS label table", "postgresql://USER@HOST:PORT/DB?table=NAME (made if missing)",
                                       QLineEdit.EchoMode.Normal, "postgresql://USER@localhost:5432/DB?table=labels")
        if ok and url.strip():
            self.create_target_layer(url.strip())

    def create_target_layer(self, path: str):
        """A new (or existing Seg) GeoPackage layer named after the file, or the PostGIS table of a
        postgresql:// URL or PG: string, in the raster's CRS, added to the project and chosen as the
        target. Returns the layer, or None after telling the user why not."""
        raster = self.raster_combo.currentLayer()
        crs = raster.crs() if raster is not None else self.project.crs()
        try:
            layer = create_label_layer(path, crs)
        except SegError as exc:
            self.status.setText("<b>Problem:</b> " + str(exc))
            return None
        self.project.addMapLayer(layer)
        self.target_combo.setLayer(layer)
        return layer

    def target_changed(self, layer) -> None:
        try:
            self.controller.set_target_layer(layer)
        except SegError as exc:
            self.status.setText("<b>Problem:</b> " + str(exc))

    def add_class_row(self, label_class: LabelClass, select: bool = False) -> None:
        """Append a class; `select` makes it the current class, scrolled into view, its name ready to type."""
        row = self.class_table.rowCount()
        self.class_table.blockSignals(True)
        self.class_table.insertRow(row)
        item = QTableWidgetItem(label_class.name)
        self.class_table.setItem(row, 0, item)
        color = QgsColorButton()
        color.setColor(QColor(label_class.color))
        color.colorChanged.connect(lambda *args: self.classes_changed())
        self.class_table.setCellWidget(row, 1, color)
        self.class_table.blockSignals(False)
        self.classes_changed()
        if select:
            self.class_table.setCurrentCell(row, 0)
            self.class_table.scrollToItem(item)
            self.class_table.editItem(item)

    def _unused_colour(self) -> str:
        """The first colour of Seg's fixed palette that no class in the list has: new classes differ."""
        used = {c.color.lower() for c in self.classes()}
        palette = [default_color(code) for code in range(1, len(used) + 2)]
        return next((colour for colour in palette if colour not in used), default_color(len(used) + 1))

    def _remove_current_class(self) -> None:
        if self.class_table.currentRow() >= 0:
            self.class_table.removeRow(self.class_table.currentRow())
            self.classes_changed()

    def classes(self) -> List[LabelClass]:
        out = []
        for row in range(self.class_table.rowCount()):
            item, button = self.class_table.item(row, 0), self.class_table.cellWidget(row, 1)
            if item is not None and item.text().strip() and button is not None:
                out.append(LabelClass(item.text().strip(), button.color().name()))
        return out

    def classes_changed(self) -> None:
        """Save the class list in the project and in the user's settings; restyle the target layer."""
        classes = self.classes()
        if not self._loading:
            save_classes(self.project, classes)
            self._remember("classes", classes_to_json(classes))
        self.controller.set_classes(classes)
        self._current_class_changed()

    def select_class(self, name: str) -> None:
        for row in range(self.class_table.rowCount()):
            if self.class_table.item(row, 0).text() == name:
                self.select_class_index(row)

    def select_class_index(self, index: int) -> bool:
        """Make row `index` (0-based; keys 1-9 pick 0-8) the current class. False when there is no such row."""
        if not 0 <= index < self.class_table.rowCount():
            return False
        self.class_table.setCurrentCell(index, 0)
        self.class_table.scrollToItem(self.class_table.item(index, 0))
        return True

    def _current_class_changed(self) -> None:
        classes, row = self.classes(), max(self.class_table.currentRow(), 0)
        self.controller.set_label_class(classes[min(row, len(classes) - 1)] if classes else None)  # none: saving says so

    def tags_changed(self) -> None:
        text = self.tags_edit.text()
        try:
            tags = parse_tags_text(text)
        except SegError as exc:
            self.status.setText("<b>Problem:</b> " + str(exc))
            return
        save_tags_text(self.project, text)
        self._remember("tags", text)
        self.controller.set_tags(tags)

    def _hover_toggled(self, on: bool) -> None:
        self.controller.hover_enabled = on
        self._remember("hover", "true" if on else "false")

    def load_project_settings(self) -> None:
        """Classes and tags from the project; for a project without them, the user's last ones (a
        first project starts without classes: Add class, or Load ontology)."""
        loading, self._loading = self._loading, True
        saved = settings_store.load_dock_values()
        try:
            self.class_table.setRowCount(0)
            for label_class in load_classes(self.project, saved.get("classes", "")):
                self.add_class_row(label_class)
            self.class_table.setCurrentCell(0, 0)
            self.tags_edit.setText(load_tags_text(self.project, saved.get("tags", "")))
            self.controller.set_tags(parse_tags_text(self.tags_edit.text()))
        except SegError as exc:  # a hand-edited entry: the dock shows the text, the user fixes it
            self.status.setText("<b>Problem:</b> " + str(exc))
        finally:
            self._loading = loading
