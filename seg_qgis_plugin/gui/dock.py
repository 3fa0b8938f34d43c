"""The Seg dock: what to segment, with which model, into which layer, as which class.

Thin by design: widgets read and show values; `SessionConfig` carries them to the controller,
which does every model call in the background. Raster statistics (for the band and stretch
defaults) come from `session.describe_raster`, a small decimated read.
"""
from __future__ import annotations

from typing import List, Optional

from qgis.core import QgsMapLayerProxyModel, QgsProviderRegistry, QgsRasterLayer
from qgis.gui import QgsColorButton, QgsDockWidget, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
                                 QLabel, QLineEdit, QPushButton, QScrollArea, QSpinBox, QTableWidget, QToolButton,
                                 QVBoxLayout, QWidget)

from ..core.models.checkpoints import ARCHITECTURES
from ..core.errors import SegError, SettingError
from ..qgis_adapters.layers import raster_layer_path
from .classes import LabelClass, load_classes, load_tags_text, parse_tags_text, save_classes, save_tags_text
from .label_layer import create_label_layer
from .session import SessionConfig, describe_raster, sam_status

AUTO_STRETCH, FIXED_STRETCH = "Per band, 2-98 % of the raster statistics", "Fixed min / max"


class SegDock(QgsDockWidget):
    def __init__(self, controller, project, parent=None):
        super().__init__("Seg: Segment Anything labeling", parent)
        self.setObjectName("SegDock")
        self.controller, self.project = controller, project
        self._loading = False
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self._raster_group())
        layout.addWidget(self._model_group())
        layout.addWidget(self._labels_group())
        layout.addLayout(self._action_row())
        self.status = QLabel("Choose a raster and a model, then press Start.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.setWidget(scroll)
        controller.statusChanged.connect(self.status.setText)
        controller.errorRaised.connect(lambda message: self.status.setText("<b>Problem:</b> " + message))
        controller.sessionChanged.connect(lambda ready: self.start_button.setText("Restart" if ready else "Start"))
        self.load_project_settings()
        self.raster_changed(self.raster_combo.currentLayer())

    # -- building ------------------------------------------------------------------------------

    def _raster_group(self) -> QGroupBox:
        group, form = QGroupBox("Raster"), QFormLayout()
        self.raster_combo = QgsMapLayerComboBox()
        self.raster_combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        self.raster_combo.setExcludedProviders([p for p in QgsProviderRegistry.instance().providerList() if p != "gdal"])
        self.raster_combo.layerChanged.connect(self.raster_changed)
        form.addRow("Layer", self.raster_combo)
        self.band_boxes = [QSpinBox() for _ in range(3)]
        bands = QHBoxLayout()
        for name, box in zip("RGB", self.band_boxes):
            box.setRange(1, 1)
            box.setPrefix(f"{name}: ")
            bands.addWidget(box)
        form.addRow("Bands", bands)
        self.stretch_mode = QComboBox()
        self.stretch_mode.addItems([AUTO_STRETCH, FIXED_STRETCH])
        self.stretch_min, self.stretch_max = QDoubleSpinBox(), QDoubleSpinBox()
        stretch = QHBoxLayout()
        for box in (self.stretch_min, self.stretch_max):
            box.setRange(-1e9, 1e9)
            box.setDecimals(2)
            stretch.addWidget(box)
        self.stretch_mode.currentTextChanged.connect(self._stretch_mode_changed)
        form.addRow("Stretch", self.stretch_mode)
        form.addRow("Min / max", stretch)
        self.stretch_info = QLabel("")
        self.stretch_info.setWordWrap(True)
        form.addRow(self.stretch_info)
        self._stretch_mode_changed(AUTO_STRETCH)
        group.setLayout(form)
        return group

    def _model_group(self) -> QGroupBox:
        group, form = QGroupBox("Model"), QFormLayout()
        available, message = sam_status()
        self.backend_combo = QComboBox()
        self.backend_combo.addItem("SAM (checkpoint file)", "sam")
        self.backend_combo.addItem("Classic (no download, OpenCV GrabCut)", "classic")
        if not available:
            self.backend_combo.model().item(0).setEnabled(False)
            self.backend_combo.setCurrentIndex(1)
        self.backend_combo.currentIndexChanged.connect(self._backend_changed)
        form.addRow("Backend", self.backend_combo)
        self.dependency_label = QLabel(message)
        self.dependency_label.setWordWrap(True)
        self.dependency_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if not available:
            self.dependency_label.setStyleSheet("color: #b00020")
        form.addRow(self.dependency_label)
        self.checkpoint = QgsFileWidget()
        self.checkpoint.setFilter("SAM checkpoints (*.pth *.pt);;All files (*)")
        form.addRow("Checkpoint", self.checkpoint)
        self.model_type = QComboBox()
        self.model_type.addItem("detect from file", None)
        for name in ARCHITECTURES:
            self.model_type.addItem(name, name)
        form.addRow("Model type", self.model_type)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda", "mps"])
        form.addRow("Device", self.device)
        self.cache_dir = QgsFileWidget()
        self.cache_dir.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        form.addRow("Embedding cache", self.cache_dir)
        self.tile, self.overlap = QSpinBox(), QSpinBox()
        self.tile.setRange(64, 4096)
        self.tile.setValue(1024)
        self.overlap.setRange(0, 2048)
        self.overlap.setValue(256)
        tiling = QHBoxLayout()
        tiling.addWidget(self.tile)
        tiling.addWidget(self.overlap)
        form.addRow("Tile / overlap (px)", tiling)
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        form.addRow(self.start_button)
        self._backend_changed()
        group.setLayout(form)
        return group

    def _labels_group(self) -> QGroupBox:
        group, form = QGroupBox("Labels"), QFormLayout()
        self.target_combo = QgsMapLayerComboBox()
        self.target_combo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.target_combo.setAllowEmptyLayer(True)
        self.target_combo.layerChanged.connect(self.target_changed)
        new_layer = QToolButton()
        new_layer.setText("New GeoPackage...")
        new_layer.clicked.connect(self._ask_new_layer)
        target = QHBoxLayout()
        target.addWidget(self.target_combo, 1)
        target.addWidget(new_layer)
        form.addRow("Target layer", target)
        self.class_table = QTableWidget(0, 2)
        self.class_table.setHorizontalHeaderLabels(["Class", "Colour"])
        self.class_table.horizontalHeader().setStretchLastSection(True)
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.setMaximumHeight(150)
        self.class_table.itemChanged.connect(lambda item: self.classes_changed())
        self.class_table.currentCellChanged.connect(lambda *args: self._current_class_changed())
        form.addRow(self.class_table)
        buttons = QHBoxLayout()
        add, remove = QPushButton("Add class"), QPushButton("Remove class")
        add.clicked.connect(lambda: self.add_class_row(LabelClass(f"class {self.class_table.rowCount() + 1}", "#ff00ff")))
        remove.clicked.connect(self._remove_current_class)
        buttons.addWidget(add)
        buttons.addWidget(remove)
        form.addRow(buttons)
        self.tags_edit = QLineEdit()
        self.tags_edit.setPlaceholderText("date=2024-06-01; sensor=UAV; annotator=ana")
        self.tags_edit.editingFinished.connect(self.tags_changed)
        form.addRow("Tags", self.tags_edit)
        self.hover_box = QCheckBox("Preview the object under the cursor (hover)")
        self.hover_box.toggled.connect(lambda on: setattr(self.controller, "hover_enabled", on))
        form.addRow(self.hover_box)
        group.setLayout(form)
        return group

    def _action_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.point_tool_button, self.box_tool_button = QToolButton(), QToolButton()
        row.addWidget(self.point_tool_button)
        row.addWidget(self.box_tool_button)
        for text, slot in (("Accept (Enter)", self.controller.accept), ("Clear (Esc)", self.controller.clear),
                           ("Undo (Ctrl+Z)", self.controller.undo)):
            button = QPushButton(text)
            button.clicked.connect(lambda checked=False, slot=slot: slot())
            row.addWidget(button)
        return row

    def set_tool_actions(self, point_action, box_action) -> None:
        """The toolbar's map-tool actions, shown as buttons in the dock too."""
        self.point_tool_button.setDefaultAction(point_action)
        self.box_tool_button.setDefaultAction(box_action)

    # -- raster and model ----------------------------------------------------------------------

    def raster_changed(self, layer: Optional[QgsRasterLayer]) -> None:
        """Pre-fill bands and stretch from the raster's statistics."""
        if layer is None:
            return
        try:
            described = describe_raster(raster_layer_path(layer))
        except SegError as exc:
            self.status.setText("<b>Problem:</b> " + str(exc))
            return
        for box, band in zip(self.band_boxes, described.bands):
            box.setRange(1, described.band_count)
            box.setValue(band)
        low, high = described.value_range
        self.stretch_min.setValue(low)
        self.stretch_max.setValue(high)
        per_band = ", ".join(f"{name} {lo:g}-{hi:g}" for name, lo, hi in zip("RGB", described.low, described.high))
        self.stretch_info.setText(f"From statistics: {per_band} ({described.crs_name})")

    def _stretch_mode_changed(self, text: str) -> None:
        fixed = text == FIXED_STRETCH
        self.stretch_min.setEnabled(fixed)
        self.stretch_max.setEnabled(fixed)

    def _backend_changed(self) -> None:
        sam = self.backend_combo.currentData() == "sam"
        for widget in (self.checkpoint, self.model_type, self.device):
            widget.setEnabled(sam)

    def config(self) -> SessionConfig:
        """The dock's values as a SessionConfig; SegError with one sentence when something is missing."""
        raster = raster_layer_path(self.raster_combo.currentLayer())
        backend = self.backend_combo.currentData()
        checkpoint = self.checkpoint.filePath().strip() or None
        if backend == "sam" and not checkpoint:
            raise SettingError("Choose a SAM checkpoint file, or the classic backend.")
        value_range = ((self.stretch_min.value(), self.stretch_max.value())
                       if self.stretch_mode.currentText() == FIXED_STRETCH else None)
        return SessionConfig(raster=raster, backend=backend, checkpoint=checkpoint, model_type=self.model_type.currentData(),
                             device=self.device.currentText(), bands=tuple(b.value() for b in self.band_boxes),
                             value_range=value_range, cache_dir=self.cache_dir.filePath().strip() or None,
                             tile=self.tile.value(), overlap=self.overlap.value())

    def start(self) -> None:
        try:
            config = self.config()
        except SegError as exc:
            self.status.setText("<b>Problem:</b> " + str(exc))
            return
        self.controller.start_session(config)

    # -- target layer, classes, tags -----------------------------------------------------------

    def _ask_new_layer(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "New label GeoPackage", "", "GeoPackage (*.gpkg)")
        if path:
            self.create_target_layer(path)

    def create_target_layer(self, path: str):
        """A new (or existing Seg) GeoPackage layer in the raster's CRS, added to the project and
        chosen as the target. Returns the layer, or None after telling the user why not."""
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

    def add_class_row(self, label_class: LabelClass) -> None:
        from qgis.PyQt.QtWidgets import QTableWidgetItem

        row = self.class_table.rowCount()
        self.class_table.blockSignals(True)
        self.class_table.insertRow(row)
        self.class_table.setItem(row, 0, QTableWidgetItem(label_class.name))
        color = QgsColorButton()
        color.setColor(QColor(label_class.color))
        color.colorChanged.connect(lambda *args: self.classes_changed())
        self.class_table.setCellWidget(row, 1, color)
        self.class_table.blockSignals(False)
        self.classes_changed()

    def _remove_current_class(self) -> None:
        if self.class_table.rowCount() > 1 and self.class_table.currentRow() >= 0:
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
        """Save the class list in the project and restyle the target layer."""
        classes = self.classes()
        if not self._loading:
            save_classes(self.project, classes)
        self.controller.set_classes(classes)
        self._current_class_changed()

    def select_class(self, name: str) -> None:
        for row in range(self.class_table.rowCount()):
            if self.class_table.item(row, 0).text() == name:
                self.class_table.setCurrentCell(row, 0)

    def _current_class_changed(self) -> None:
        classes, row = self.classes(), max(self.class_table.currentRow(), 0)
        if classes:
            self.controller.set_label_class(classes[min(row, len(classes) - 1)])

    def tags_changed(self) -> None:
        text = self.tags_edit.text()
        try:
            tags = parse_tags_text(text)
        except SegError as exc:
            self.status.setText("<b>Problem:</b> " + str(exc))
            return
        save_tags_text(self.project, text)
        self.controller.set_tags(tags)

    def load_project_settings(self) -> None:
        """Classes and tags from the project (defaults for a new project)."""
        self._loading = True
        try:
            self.class_table.setRowCount(0)
            for label_class in load_classes(self.project):
                self.add_class_row(label_class)
            self.class_table.setCurrentCell(0, 0)
            self.tags_edit.setText(load_tags_text(self.project))
            self.controller.set_tags(parse_tags_text(self.tags_edit.text()))
        except SegError:
            pass  # a hand-edited project entry: the dock shows the text, the user fixes it
        finally:
            self._loading = False
