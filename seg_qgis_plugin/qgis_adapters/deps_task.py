"""Installing Seg's dependencies from QGIS: a QgsTask around `installer.install`, and the profile's
private folder.

    folder = private_folder()                        # <profile>/python/seg_deps/py311-linux-x86_64
    activate_private_folder()                        # call once when the plugin loads (cheap)
    statuses = deps.check(folder)                    # what is missing, without importing it
    task = InstallDependenciesTask(groups=("core", "assist", "onnx", "sam"), target=folder)
    task.lineReceived.connect(log_widget.appendPlainText)
    task.installFinished.connect(on_done)            # (ok: bool, message: str)
    QgsApplication.taskManager().addTask(task)

Nothing is installed before the user asks (the caller shows what will be installed and where);
only the private folder is ever written, and it joins sys.path at the end, after QGIS's own packages.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence

from qgis.core import QgsApplication, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from .. import deps, installer
from ..core.errors import Canceled, SegError


def private_folder() -> str:
    """This profile's folder for Seg's packages, keyed by Python version and platform."""
    return deps.private_folder(os.path.join(QgsApplication.qgisSettingsDirPath(), "python"))


def activate_private_folder() -> bool:
    """Add the private folder to the end of sys.path if it exists; True if added now."""
    return deps.activate(private_folder())


class _TaskProgress:
    def __init__(self, task: QgsTask):
        self.task = task

    def set_progress(self, percent: float) -> None:
        self.task.setProgress(percent)

    def is_canceled(self) -> bool:
        return self.task.isCanceled()


class InstallDependenciesTask(QgsTask):
    """Runs pip in the background; emits every pip line, the step it is at ("Downloading torch 2.13.0
    (526.6 MB)"), then installFinished(ok, message).

    With `groups`, what deps.check finds missing of them is installed one group at a time
    (installer.install_groups: an optional group that fails never blocks the core); with `requirements`,
    exactly those, in one pip run. ok means the core works. On success the folder is activated, so
    new modules import without restarting QGIS (one QGIS had already imported in an older version
    still needs a restart; the message says so).
    """

    lineReceived = pyqtSignal(str)
    stepChanged = pyqtSignal(str)
    installFinished = pyqtSignal(bool, str)

    def __init__(self, requirements: Optional[Sequence[str]] = None, target: Optional[str] = None,
                 pip_options: Sequence[str] = (), python: Optional[str] = None, groups: Optional[Sequence[str]] = None):
        super().__init__("Installing Seg's dependencies", QgsTask.Flag.CanCancel)
        self.requirements, self.groups = list(requirements or ()), list(groups or ())
        self.pip_options, self.python = list(pip_options), python
        self.target = target or private_folder()
        self.outcomes: List[installer.GroupOutcome] = []
        self.exception: Optional[BaseException] = None
        self.message = ""

    def _line(self, line: str) -> None:
        self.lineReceived.emit(line)
        step = installer.describe_step(line)
        if step:
            self.stepChanged.emit(step)

    def run(self) -> bool:  # worker thread: no widgets here
        options = dict(python=self.python, on_line=self._line, pip_options=self.pip_options)
        try:
            if self.groups:
                self.outcomes = installer.install_groups(deps.check(self.target), self.groups, self.target,
                                                    progress=_TaskProgress(self), **options)
            else:
                report = installer.install(self.requirements, self.target, progress=_TaskProgress(self), **options)
                self.outcomes = [installer.GroupOutcome("core", tuple(self.requirements), report.installed)]
        except Canceled as exc:
            self.message = str(exc)
            return False
        except SegError as exc:
            self.message = str(exc)
            return False
        except Exception as exc:  # a QgsTask drops what run() raises: keep it for the caller
            self.exception = exc
            self.message = f"Installing Seg's dependencies failed unexpectedly ({type(exc).__name__}: {exc})."
            return False
        if self.groups:
            self.message = installer.outcome_sentence(self.outcomes) + f" The packages are in {self.target}."
        else:
            self.message = (f"Installed {', '.join(self.outcomes[0].installed) or 'nothing new'} into {self.target}; "
                            "restart QGIS if Seg still reports a module as missing.")
        return True

    def finished(self, ok: bool) -> None:  # main thread
        if ok:
            deps.activate(self.target)
        elif not self.message:
            self.message = "Installing Seg's dependencies was canceled."
        self.installFinished.emit(ok, self.message)
