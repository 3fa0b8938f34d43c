"""The dock's Model group: the backend, the model picker with its Download menu, what SAM needs
here, the device, the embedding cache and the tiling.

`ModelRow` is mixed into SegDock (gui/dock.py): its widgets and methods are the dock's own
(`dock.checkpoint`, `dock.download_model`), and it uses the dock's `status` line.

Object names for drivers: SegSamStatus, SegCheckpoint, SegDownloadModel.
"""
from __future__ import annotations

import os

from qgis.core import QgsApplication
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QMenu, QSpinBox, QToolButton

from ..core.models.checkpoints import ARCHITECTURES
from ..core.models.registry import OFFICIAL_MODELS
from ..core.models.sam2_checkpoints import SAM2_TYPES
from .session import sam_status


class ModelRow:
    """The Model group of SegDock; the dock starts `download_task` (the running DownloadModelTask) at None."""

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
        self.dependency_label = named_label(message, "SegSamStatus")
        self.dependency_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if not available:
            self.dependency_label.setStyleSheet("color: #b00020")
        form.addRow(self.dependency_label)
        self.checkpoint = QgsFileWidget()
        self.checkpoint.setObjectName("SegCheckpoint")
        self.checkpoint.setFilter("SAM models (*.pth *.pt manifest.json);;All files (*)")
        self.checkpoint.setToolTip("A SAM checkpoint (.pth) or SAM 2.1 checkpoint (.pt), told apart by their weights, or an "
                                   "exported ONNX model: its manifest.json or its folder")
        self.download_button = QToolButton()
        self.download_button.setObjectName("SegDownloadModel")
        self.download_button.setText("Download")
        self.download_button.setToolTip("Download an official SAM checkpoint (resumable, checked by sha256)")
        self.download_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.download_button)
        recommended = recommended_model()
        for spec in sorted(OFFICIAL_MODELS.values(), key=lambda spec: spec.name != recommended):
            note = ", recommended" if spec.name == recommended else ""
            action = menu.addAction(f"{spec.name} ({spec.size / 1e6:,.0f} MB{note})")
            action.setToolTip(spec.description)
            action.triggered.connect(lambda checked=False, name=spec.name: self.download_model(name))
        self.download_button.setMenu(menu)
        picker = QHBoxLayout()
        picker.addWidget(self.checkpoint, 1)
        picker.addWidget(self.download_button)
        form.addRow("Model", picker)
        self.model_type = QComboBox()
        self.model_type.addItem("detect from file", None)
        for name in (*ARCHITECTURES, *SAM2_TYPES):
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


def recommended_model() -> str:
    """The model offered first: SAM 2.1 Hiera-Tiny where SAM 2 is installed (its tile encodes about
    4x faster than vit_b's on a CPU: bench/bench_first_mask.py), else vit_b."""
    from .. import deps

    return "sam2.1_hiera_tiny" if not deps.missing(("sam", "sam2")) else "vit_b"


def named_label(text: str, name: str) -> QLabel:
    """A word-wrapped QLabel with an object name (for drivers and style)."""
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(True)
    return label
