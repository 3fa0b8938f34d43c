"""Downloading an official SAM checkpoint from QGIS: a QgsTask around core.models.registry.download_model
(resumable from its .part file, size and sha256 checked, placed atomically) into the profile's models folder."""
from __future__ import annotations

import os
from typing import Optional

from qgis.core import QgsApplication, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from ..core.errors import Canceled, SegError


def models_folder() -> str:
    """<profile>/seg_models: checkpoints downloaded from QGIS, one folder per profile."""
    return os.path.join(QgsApplication.qgisSettingsDirPath(), "seg_models")


class _TaskProgress:
    def __init__(self, task: QgsTask):
        self.task = task

    def set_progress(self, percent: float) -> None:
        self.task.setProgress(min(percent, 99.0))

    def is_canceled(self) -> bool:
        return self.task.isCanceled()


class DownloadModelTask(QgsTask):
    """Downloads official model `name` (vit_b, vit_l, vit_h); emits downloadFinished(ok, path or one sentence).
    A canceled or broken download keeps its .part file: starting it again resumes."""

    downloadFinished = pyqtSignal(bool, str)

    def __init__(self, name: str, folder: Optional[str] = None, url: Optional[str] = None):
        super().__init__(f"Downloading SAM {name}", QgsTask.Flag.CanCancel)
        self.name, self.folder, self.url = name, folder or models_folder(), url
        self.result_text = ""

    def run(self) -> bool:  # worker thread
        from ..core.models.registry import download_model

        try:
            os.makedirs(self.folder, exist_ok=True)
            self.result_text = download_model(self.name, self.folder, _TaskProgress(self), url=self.url)
            return True
        except Canceled:
            self.result_text = f"The download of {self.name} was canceled; download it again to resume."
        except (SegError, OSError) as exc:
            self.result_text = str(exc) or type(exc).__name__
        return False

    def finished(self, ok: bool) -> None:  # main thread
        self.downloadFinished.emit(ok, self.result_text or f"The download of {self.name} was canceled; download it again to resume.")
