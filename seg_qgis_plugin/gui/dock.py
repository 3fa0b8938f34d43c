"""The Seg dock: what to segment, with which model, into which layer, as which class.

Thin by design: widgets read and show values; `SessionConfig` carries them to the controller,
which does every model call in the background. Raster statistics (for the band and stretch
defaults) come from `session.describe_raster`, a small decimated read.

Layout: what is missing (with Install dependencies) and the action rows and status line sit at the
top, outside the scroll area, so they are always in view; the settings scroll below them.
Changes to the raster, model, bands, stretch, cache or tiling restart a running session by
themselves. The choices are remembered in QgsSettings (seg/dock/...); classes and tags also travel
with the project. Creating the dock imports nothing third-party: what is missing is shown.

Object names for drivers: SegDock, SegDepsBox, SegDepsLabel, SegInstallDepsButton, SegStartButton,
SegAcceptButton, SegClearButton, SegUndoButton, SegRedoButton, SegStatus, SegBackgroundLabel,
SegSettingsScroll, SegClassTable, SegAddClassButton.
"""
from __future__ import annotations

import os
from typing import List, Optional

from qgis.core import Qgis, QgsApplication, QgsMapLayerProxyModel, QgsMessageLog, QgsProviderRegistry, QgsRasterLayer
from qgis.gui import QgsColorButton, QgsDockWidget, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame, QGroupBox,
                                 QHBoxLayout, QInputDialog, QLabel, QLineEdit, QMenu, QPushButton, QScrollArea,
                                 QSpinBox, QTableWidget, QTableWidgetItem, QToolButton, QVBoxLayout, QWidget)

from .qt_compat import QAction
from .. import deps
from ..core.errors import SegError, SettingError
from ..core.models.checkpoints import ARCHITECTURES
from ..core.models.registry import OFFICIAL_MODELS
from ..qgis_adapters import settings_store
from ..qgis_adapters.layers import raster_layer_path
from .classes import (LabelClass, classes_to_json, load_classes, load_tags_text, parse_tags_text, save_classes,
                      save_tags_text)
from .deps_dialog import missing_report
from .label_layer import create_label_layer
from .session import SessionConfig, describe_raster, sam_status
from .worker import LOG_TAG, error_message, log_problem

AUTO_STRETCH, FIXED_STRETCH = "Per band, 2-98 % of the raster statistics", "Fixed min / max"
RESTART_DELAY_MS = 400  # several quick changes (raster -> bands -> stretch) restart the session once
CLASS_ROWS_SHOWN = 6
MIN_DOCK_WIDTH = 380


class SegDock(QgsDockWidget):
    def __init__(self, controller, project, parent=None):
        super().__init__("Seg: Segment Anything labeling", parent)
        self.setObjectName("SegDock")
        self.controller, self.project = controller, project
        self.install_dialog = None
        self.download_task = None
        deps.advise_from_qgis()  # in the dock, what is missing comes with the Install dependencies button
        self._loading = True
        self._restart_timer = QTimer(self)
        self._restart_timer.setSingleShot(True)
        self._restart_timer.setInterval(RESTART_DELAY_MS)
        self._restart_timer.timeout.connect(self.start)
        container = QWidget()
        outer = QVBoxLayout(container)
        outer.addWidget(self._deps_box())
        outer.addLayout(self._action_rows())
        self.status = _label("Choose a raster and a model, then press Start.", "SegStatus")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.status)
        self.background_label = _label("", "SegBackgroundLabel")
        self.background_label.setStyleSheet("color: palette(mid); font-size: small")
        outer.addWidget(self.background_label)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self._raster_group())
        layout.addWidget(self._model_group())
        layout.addWidget(self._labels_group())
        layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setObjectName("SegSettingsScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(body)
        self.scroll.setMinimumWidth(body.minimumSizeHint().width() + self.scroll.verticalScrollBar().sizeHint().width()
                                    + 2 * self.scroll.frameWidth())
        outer.addWidget(self.scroll, 1)
        container.setMinimumWidth(max(MIN_DOCK_WIDTH, self.scroll.minimumWidth() + 2 * outer.contentsMargins().left()))
        self.setWidget(container)
        controller.statusChanged.connect(self.status.setText)
        controller.backgroundChanged.connect(self.background_label.setText)
        controller.errorRaised.connect(lambda message: self.status.setText("<b>Problem:</b> " + message))
        controller.sessionChanged.connect(lambda ready: self.start_button.setText("Restart" if ready else "Start"))
        self._restore_settings()
        self.load_project_settings()
        self._loading = False
        self.refresh_dependencies()
        self.raster_changed(self.raster_combo.currentLayer())
        self._connect_changes()

    # -- building ------------------------------------------------------------------------------

    def _deps_box(self) -> QFrame:
        self.deps_box = QFrame()
        self.deps_box.setObjectName("SegDepsBox")
        self.deps_box.setFrameShape(QFrame.Shape.StyledPanel)
        row = QHBoxLayout(self.deps_box)
        self.deps_label = _label("", "SegDepsLabel")
        self.deps_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.install_button = QPushButton("Install dependencies...")
        self.install_button.setObjectName("SegInstallDepsButton")
        self.install_button.clicked.connect(lambda: self.open_install_dialog())
        row.addWidget(self.deps_label, 1)
        row.addWidget(self.install_button)
        self.deps_box.setVisible(False)
        return self.deps_box

    def _action_rows(self) -> QVBoxLayout:
        rows = QVBoxLayout()
        first, second = QHBoxLayout(), QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("SegStartButton")
        self.start_button.setToolTip("Open the raster and the model (settings changed later apply by themselves)")
        self.start_button.clicked.connect(lambda: self.start())
        self.point_tool_button, self.box_tool_button = QToolButton(), QToolButton()
        self.point_tool_button.setObjectName("SegPointToolButton")
        self.box_tool_button.setObjectName("SegBoxToolButton")
        first.addWidget(self.start_button)
        first.addWidget(self.point_tool_button)
        first.addWidget(self.box_tool_button)
        first.addStretch(1)
        for name, text, tip, slot in (("accept", "Accept", "Write the mask to the target layer (Enter)", self.controller.accept),
                                      ("clear", "Clear", "Forget the prompts (Esc)", self.controller.clear),
                                      ("undo", "Undo", "Undo the last prompt, or the last feature (Ctrl+Z)", self.controller.undo),
                                      ("redo", "Redo", "Redo what Undo took back (Ctrl+Shift+Z)", self.controller.redo)):
            button = QPushButton(text)
            button.setObjectName(f"Seg{name.capitalize()}Button")
            button.setToolTip(tip)
            button.clicked.connect(lambda checked=False, slot=slot: slot())
            setattr(self, f"{name}_button", button)
            second.addWidget(button)
        rows.addLayout(first)
        rows.addLayout(second)
        return rows

    def _raster_group(self) -> QGroupBox:
        group, form = QGroupBox("Raster"), QFormLayout()
        self.raster_combo = QgsMapLayerComboBox()
        self.raster_combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        self.raster_combo.setExcludedProviders([p for p in QgsProviderRegistry.instance().providerList() if p != "gdal"])
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
        self.stretch_info = _label("", "SegStretchInfo")
        form.addRow(self.stretch_info)
        self._stretch_mode_changed(AUTO_STRETCH)
        group.setLayout(form)
        return group

    def _model_group(self) -> QGroupBox:
        group, form = QGroupBox("Model"), QFormLayout()
        available, message = sam_status()
        self.sam_available = available
        self.backend_combo = QComboBox()
        self.backend_combo.addItem("SAM (checkpoint or exported ONNX model)", "sam")
        self.backend_combo.addItem("Classic (no download, OpenCV GrabCut)", "classic")
        if not available:
            self.backend_combo.model().item(0).setEnabled(False)
            self.backend_combo.setCurrentIndex(1)
        self.backend_combo.currentIndexChanged.connect(self._backend_changed)
        form.addRow("Backend", self.backend_combo)
        self.dependency_label = _label(message, "SegSamStatus")
        self.dependency_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if not available:
            self.dependency_label.setStyleSheet("color: #b00020")
        form.addRow(self.dependency_label)
        self.checkpoint = QgsFileWidget()
        self.checkpoint.setObjectName("SegCheckpoint")
        self.checkpoint.setFilter("SAM models (*.pth *.pt manifest.json);;All files (*)")
        self.checkpoint.setToolTip("A SAM checkpoint (.pth), or an exported ONNX model: its manifest.json or its folder")
        self.download_button = QToolButton()
        self.download_button.setObjectName("SegDownloadModel")
        self.download_button.setText("Download")
        self.download_button.setToolTip("Download an official SAM checkpoint (resumable, checked by sha256)")
        self.download_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.download_button)
        for spec in OFFICIAL_MODELS.values():
            action = menu.addAction(f"{spec.name} ({spec.size / 1e6:,.0f} MB)")
            action.triggered.connect(lambda checked=False, name=spec.name: self.download_model(name))
        self.download_button.setMenu(menu)
        picker = QHBoxLayout()
        picker.addWidget(self.checkpoint, 1)
        picker.addWidget(self.download_button)
        form.addRow("Model", picker)
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
        add.clicked.connect(lambda: self.add_class_row(LabelClass(f"class {self.class_table.rowCount() + 1}", "#ff00ff"),
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

    def set_tool_actions(self, point_action, box_action) -> None:
        """The toolbar's map-tool actions, shown as buttons in the dock too."""
        self.point_tool_button.setDefaultAction(point_action)
        self.box_tool_button.setDefaultAction(box_action)

    # -- what is missing -----------------------------------------------------------------------

    def refresh_dependencies(self) -> None:
        """Show what deps.check reports as missing (the box hides when nothing is)."""
        report = missing_report()
        self.deps_box.setVisible(report.anything)
        self.deps_label.setText(report.sentence())
        self.deps_label.setStyleSheet("color: #b00020" if report.core else "")
        self.missing = report

    def open_install_dialog(self):
        """The Install dependencies dialog (one at a time); returns it."""
        from .deps_dialog import InstallDependenciesDialog

        if self.install_dialog is None:
            try:
                self.install_dialog = InstallDependenciesDialog(self)
            except Exception as exc:  # noqa: BLE001 (shown in the dock, never raised into QGIS)
                self._problem(exc, "opening the installer")
                return None
            self.install_dialog.installFinished.connect(self._install_finished)
            self.install_dialog.finished.connect(self._install_dialog_closed)
        self.install_dialog.show()
        self.install_dialog.raise_()
        return self.install_dialog

    def _install_dialog_closed(self, result=None) -> None:
        dialog = self.install_dialog
        if dialog is not None and not dialog.running:
            self.install_dialog = None
            dialog.deleteLater()

    def _install_finished(self, ok: bool, message: str) -> None:
        self.refresh_dependencies()
        self.status.setText(("<b>Installed.</b> Restart QGIS to use the new packages. " if ok else "<b>Problem:</b> ") + message)

    # -- raster and model ----------------------------------------------------------------------

    def raster_changed(self, layer: Optional[QgsRasterLayer]) -> None:
        """Pre-fill bands and stretch from the raster's statistics."""
        if layer is None:
            return
        try:
            described = describe_raster(raster_layer_path(layer))
        except Exception as exc:  # noqa: BLE001 (one sentence in the dock; a bug is logged with its traceback)
            self._problem(exc, "reading the raster statistics")
            return
        loading, self._loading = self._loading, True
        try:
            for box, band in zip(self.band_boxes, described.bands):
                box.setRange(1, described.band_count)
                box.setValue(band)
            low, high = described.value_range
            self.stretch_min.setValue(low)
            self.stretch_max.setValue(high)
        finally:
            self._loading = loading
        per_band = ", ".join(f"{name} {lo:g}-{hi:g}" for name, lo, hi in zip("RGB", described.low, described.high))
        self.stretch_info.setText(f"From statistics: {per_band} ({described.crs_name})")

    def _stretch_mode_changed(self, text: str) -> None:
        fixed = text == FIXED_STRETCH
        self.stretch_min.setEnabled(fixed)
        self.stretch_max.setEnabled(fixed)

    def _backend_changed(self) -> None:
        sam = self.backend_combo.currentData() == "sam"
        for widget in (self.checkpoint, self.download_button, self.model_type, self.device):
            widget.setEnabled(sam)

    def download_model(self, name: str):
        """Download official checkpoint `name` in a QgsTask; the picker gets it when it is there. Returns the task."""
        from ..qgis_adapters.model_download import DownloadModelTask

        if self.download_task is not None:
            self.status.setText("A model is already being downloaded; see the task manager.")
            return self.download_task
        task = DownloadModelTask(name)
        task.progressChanged.connect(lambda percent: self.status.setText(f"Downloading SAM {name}: {percent:.0f} %"))
        task.downloadFinished.connect(self._model_downloaded)
        self.download_task = task
        QgsApplication.taskManager().addTask(task)
        return task

    def _model_downloaded(self, ok: bool, text: str) -> None:
        self.download_task = None
        if ok:
            self.checkpoint.setFilePath(text)
            self.status.setText(f"Downloaded and checked {os.path.basename(text)}; press Start to use it.")
        else:
            self.status.setText(f"<b>Problem:</b> {text}")

    def config(self) -> SessionConfig:
        """The dock's values as a SessionConfig; SegError with one sentence when something is missing."""
        raster = raster_layer_path(self.raster_combo.currentLayer())
        backend = self.backend_combo.currentData()
        checkpoint = self.checkpoint.filePath().strip() or None
        if backend == "sam" and not checkpoint:
            raise SettingError("Choose a SAM model (a .pth checkpoint or an exported ONNX model), Download one, or choose the classic backend.")
        value_range = ((self.stretch_min.value(), self.stretch_max.value())
                       if self.stretch_mode.currentText() == FIXED_STRETCH else None)
        return SessionConfig(raster=raster, backend=backend, checkpoint=checkpoint, model_type=self.model_type.currentData(),
                             device=self.device.currentText(), bands=tuple(b.value() for b in self.band_boxes),
                             value_range=value_range, cache_dir=self.cache_dir.filePath().strip() or None,
                             tile=self.tile.value(), overlap=self.overlap.value())

    def start(self) -> None:
        """Open (or reopen) the session with the dock's values."""
        self._restart_timer.stop()
        try:
            config = self.config()
        except SegError as exc:
            self.status.setText("<b>Problem:</b> " + str(exc))
            return
        self.controller.start_session(config)

    @property
    def restart_pending(self) -> bool:
        return self._restart_timer.isActive()

    def _connect_changes(self) -> None:
        """Every session setting restarts a session already asked for, and is remembered."""
        self.raster_combo.layerChanged.connect(self.raster_changed)
        self.raster_combo.layerChanged.connect(lambda layer: self._session_setting_changed())
        for box in self.band_boxes + [self.tile, self.overlap]:
            box.valueChanged.connect(lambda value: self._session_setting_changed())
        for box in (self.stretch_min, self.stretch_max):
            box.valueChanged.connect(lambda value: self._session_setting_changed(fixed_range=True))
        self.stretch_mode.currentIndexChanged.connect(lambda index: self._session_setting_changed())
        for combo in (self.backend_combo, self.model_type, self.device):
            combo.currentIndexChanged.connect(lambda index: self._session_setting_changed())
        for widget in (self.checkpoint, self.cache_dir):
            widget.fileChanged.connect(lambda path: self._session_setting_changed())

    def _session_setting_changed(self, fixed_range: bool = False) -> None:
        if self._loading:
            return
        self._remember_session_settings()
        if fixed_range and self.stretch_mode.currentText() == AUTO_STRETCH:
            return  # the fixed range is not in use
        if self.controller.session_config is None:
            return  # no session asked for yet: Start opens one
        self.status.setText("Settings changed: the session restarts with them...")
        self._restart_timer.start()

    # -- remembered settings -------------------------------------------------------------------

    def _remember(self, key: str, value) -> None:
        if self._loading:
            return
        try:
            settings_store.save_dock_value(key, value)
        except Exception as exc:  # noqa: BLE001 (settings must never break labeling)
            QgsMessageLog.logMessage(f"Could not remember {key}: {exc}", LOG_TAG, Qgis.MessageLevel.Warning)

    def _remember_session_settings(self) -> None:
        for key, value in (("backend", self.backend_combo.currentData()), ("checkpoint", self.checkpoint.filePath()),
                           ("model_type", self.model_type.currentData() or ""), ("device", self.device.currentText()),
                           ("cache_dir", self.cache_dir.filePath()), ("tile", self.tile.value()),
                           ("overlap", self.overlap.value())):
            self._remember(key, value)

    def _restore_settings(self) -> None:
        """The last values the user chose (QgsSettings seg/dock/...), else the shared defaults."""
        saved = settings_store.load_dock_values()
        shared = settings_store.shared_defaults()
        backend = saved.get("backend", "")
        if backend == "classic" or (backend == "sam" and self.sam_available):
            self.backend_combo.setCurrentIndex(self.backend_combo.findData(backend))
        self.checkpoint.setFilePath(saved.get("checkpoint", ""))
        index = self.model_type.findData(saved.get("model_type") or None)
        self.model_type.setCurrentIndex(max(index, 0))
        device = saved.get("device", shared.device)
        if self.device.findText(device) >= 0:
            self.device.setCurrentText(device)
        self.cache_dir.setFilePath(saved.get("cache_dir", shared.cache_folder))
        for box, key in ((self.tile, "tile"), (self.overlap, "overlap")):
            if saved.get(key, "").isdigit():
                box.setValue(int(saved[key]))
        self.hover_box.setChecked(saved.get("hover", "") == "true")
        self._backend_changed()

    # -- target layer, classes, tags -----------------------------------------------------------

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
        self._remember("tags", text)
        self.controller.set_tags(tags)

    def _hover_toggled(self, on: bool) -> None:
        self.controller.hover_enabled = on
        self._remember("hover", "true" if on else "false")

    def load_project_settings(self) -> None:
        """Classes and tags from the project; for a project without them, the user's last ones."""
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

    # -- messages ------------------------------------------------------------------------------

    def _problem(self, exc: BaseException, doing: str) -> None:
        """One sentence in the status line; a bug (not a SegError or missing package) is logged with its traceback."""
        self.status.setText("<b>Problem:</b> " + log_problem(exc, doing))


def _label(text: str, name: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(True)
    return label
