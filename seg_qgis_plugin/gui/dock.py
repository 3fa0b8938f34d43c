"""The Seg dock: what to segment, with which model, into which layer, as which class.

Thin by design: widgets read and show values; `SessionConfig` carries them to the controller,
which does every model call in the background. Raster statistics (for the band and stretch
defaults) come from `session.describe_raster`, a small decimated read.

Layout: what is missing (with Install dependencies) and the action rows and status line sit at the
top, outside the scroll area, so they are always in view; the settings scroll below them.
Changes to the raster, model, bands, stretch, cache or tiling restart a running session by
themselves. The choices are remembered in QgsSettings (seg/dock/...); classes and tags also travel
with the project. Creating the dock imports nothing third-party: what is missing is shown.

The Model group (picker, Download menu, what SAM needs) is gui/model_row.py, the Labels group
(target layer, classes, tags) gui/labels_group.py; both are mixed into SegDock, so their widgets
and methods are the dock's own.

Object names for drivers: SegDock, SegDepsBox, SegDepsLabel, SegInstallDepsButton, SegStartButton,
SegAcceptButton, SegClearButton, SegUndoButton, SegRedoButton, SegStatus, SegBackgroundLabel,
SegSettingsScroll, SegClassTable, SegAddClassButton.
"""
from __future__ import annotations

from typing import Optional

from qgis.core import Qgis, QgsMapLayerProxyModel, QgsMessageLog, QgsProviderRegistry, QgsRasterLayer
from qgis.gui import QgsDockWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QPushButton,
                                 QScrollArea, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from .. import deps
from ..core.errors import SegError, SettingError
from ..qgis_adapters import settings_store
from ..qgis_adapters.layers import raster_layer_path
from .deps_dialog import missing_report
from .labels_group import LabelsGroup
from .model_row import ModelRow, named_label
from .session import SessionConfig, describe_raster
from .worker import LOG_TAG, log_problem

AUTO_STRETCH, FIXED_STRETCH = "Per band, 2-98 % of the raster statistics", "Fixed min / max"
RESTART_DELAY_MS = 400  # several quick changes (raster -> bands -> stretch) restart the session once
MIN_DOCK_WIDTH = 380


class SegDock(ModelRow, LabelsGroup, QgsDockWidget):
    """See the module docstring."""

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
        self.status = named_label("Choose a raster and a model, then press Start.", "SegStatus")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.status)
        self.background_label = named_label("", "SegBackgroundLabel")
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
        self.deps_label = named_label("", "SegDepsLabel")
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
        from .find_all import FindAllBox

        self.find_all_box = FindAllBox(self.controller)
        rows.addLayout(first)
        rows.addLayout(second)
        rows.addWidget(self.find_all_box)
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
        self.stretch_info = named_label("", "SegStretchInfo")
        form.addRow(self.stretch_info)
        self._stretch_mode_changed(AUTO_STRETCH)
        group.setLayout(form)
        return group

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

    # -- messages ------------------------------------------------------------------------------

    def _problem(self, exc: BaseException, doing: str) -> None:
        """One sentence in the status line; a bug (not a SegError or missing package) is logged with its traceback."""
        self.status.setText("<b>Problem:</b> " + log_problem(exc, doing))

