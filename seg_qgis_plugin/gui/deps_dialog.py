"""What Seg is missing, said in the dock, and the dialog that installs it.

`missing_report()` checks (without importing anything) what the engine and SAM need;
`InstallDependenciesDialog` shows what will be installed, where, and with which Python, then runs
`InstallDependenciesTask` (pip into the profile's private folder) as a QGIS task, with a progress
bar, pip's log as it comes, Cancel, and at the end a request to restart QGIS.

Widgets have object names (SegInstall...) so a desktop driver can find them.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from qgis.core import QgsApplication
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (QCheckBox, QDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                                 QProgressBar, QPushButton, QVBoxLayout)

from .. import deps, installer
from ..core.errors import SegError

SAM_GROUPS = ("sam", "sam2")  # optional: the classic backend and exported ONNX models work without them
PIP_OPTIONS_ENV = "SEG_PIP_OPTIONS"  # e.g. "--no-index --find-links /media/wheels" for an offline install


@dataclass(frozen=True)
class MissingReport:
    """core: modules the engine needs that are missing or too old (nothing labels without them);
    sam: the same for the SAM backend (the classic backend works without them)."""

    core: Sequence[str]
    sam: Sequence[str]
    summary: str

    @property
    def anything(self) -> bool:
        return bool(self.core or self.sam)

    def sentence(self) -> str:
        """What the dock shows: deps.missing_sentence for the engine, else for SAM (plain text)."""
        if self.core:
            return deps.sentence_for(("core", "sam") if self.sam else ("core",), [*self.core, *self.sam])
        if self.sam:
            groups = tuple(g for g in SAM_GROUPS if any(r.group == g and r.module in self.sam for r in deps.PINS))
            return deps.sentence_for(groups, self.sam) + " The classic backend and exported ONNX models work meanwhile."
        return "Everything Seg needs is installed."


def private_folder() -> str:
    from ..qgis_adapters.deps_task import private_folder as folder

    return folder()


def missing_report(folder: Optional[str] = None) -> MissingReport:
    """What deps.check reports as unusable, by group. Never raises: a failing check is reported."""
    try:
        statuses = deps.check(folder if folder is not None else private_folder())
    except Exception as exc:  # noqa: BLE001 (a broken check must not stop the dock from opening)
        return MissingReport((), (), f"Could not check Seg's dependencies ({type(exc).__name__}: {exc}).")
    bad = [s for s in statuses if not s.usable]
    return MissingReport(tuple(s.requirement.module for s in bad if s.requirement.group not in SAM_GROUPS),
                         tuple(s.requirement.module for s in bad if s.requirement.group in SAM_GROUPS), deps.summary(statuses))


def groups_to_install(with_sam: bool) -> Tuple[str, ...]:
    """The default: everything (SAM and SAM 2.1 on torch included); unticking SAM leaves torch out."""
    return deps.GROUPS if with_sam else tuple(g for g in deps.GROUPS if g not in SAM_GROUPS)


def requirements_to_install(folder: str, with_sam: bool) -> List[str]:
    """The requirements for what is missing in `folder`'s view of the world, in install order."""
    statuses = deps.check(folder)
    return [pin for group in groups_to_install(with_sam) for pin in deps.to_install(statuses, (group,))]


class InstallDependenciesDialog(QDialog):
    """Shows what will be installed and where; Install runs pip in a QgsTask. `installFinished(ok,
    message)` is emitted when the task ends (the dock re-checks what is missing).

    requirements: a fixed list of pip requirements (tests, or a caller that knows better); None means
    "what deps.check says is missing", with a checkbox for the SAM packages."""

    installFinished = pyqtSignal(bool, str)

    def __init__(self, parent=None, requirements: Optional[Sequence[str]] = None, target: Optional[str] = None,
                 pip_options: Optional[str] = None):
        super().__init__(parent)
        self.setObjectName("SegInstallDialog")
        self.setWindowTitle("Seg: install dependencies")
        self.setMinimumWidth(560)
        self.target = target or private_folder()
        self.fixed_requirements = list(requirements) if requirements is not None else None
        self.task = None
        self.finished_ok: Optional[bool] = None
        self.lines: List[str] = []
        layout = QVBoxLayout(self)
        self.what = QLabel()
        self.what.setObjectName("SegInstallWhat")
        self.what.setWordWrap(True)
        self.what.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.what)
        self.sam_box = QCheckBox("Also install SAM and SAM 2.1 on torch")
        self.sam_box.setObjectName("SegInstallSam")
        self.sam_box.setChecked(True)
        self.sam_box.toggled.connect(lambda on: self.refresh())
        sam_size = QLabel("torch, torchvision, segment-anything and sam2: about 200 MB from PyTorch's CPU index, "
                          "about 3 GB from PyPI where that index cannot be reached.")
        sam_size.setWordWrap(True)
        for widget in (self.sam_box, sam_size):
            widget.setVisible(self.fixed_requirements is None)
            layout.addWidget(widget)
        form = QFormLayout()
        self.python = QgsFileWidget()
        self.python.setObjectName("SegInstallPython")
        self.python.setToolTip("The Python that QGIS runs (same version); pip runs with it.")
        form.addRow("Python", self.python)
        self.pip_options = QLineEdit(pip_options if pip_options is not None else os.environ.get(PIP_OPTIONS_ENV, ""))
        self.pip_options.setObjectName("SegInstallPipOptions")
        self.pip_options.setPlaceholderText("optional, e.g. --no-index --find-links /path/to/wheels")
        form.addRow("pip options", self.pip_options)
        layout.addLayout(form)
        self.progress = QProgressBar()
        self.progress.setObjectName("SegInstallProgress")
        self.progress.setRange(0, 100)
        layout.addWidget(self.progress)
        self.step = QLabel("")
        self.step.setObjectName("SegInstallStep")
        layout.addWidget(self.step)
        self.log = QPlainTextEdit()
        self.log.setObjectName("SegInstallLog")
        self.log.setReadOnly(True)
        self.log.setMinimumHeight(180)
        layout.addWidget(self.log, 1)
        self.result = QLabel("")
        self.result.setObjectName("SegInstallResult")
        self.result.setWordWrap(True)
        layout.addWidget(self.result)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.install_button = QPushButton("Install")
        self.install_button.setObjectName("SegInstallStart")
        self.install_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("SegInstallCancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.install_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self._find_python()
        self.refresh()

    def _find_python(self) -> None:
        try:
            self.python.setFilePath(installer.find_python())
        except SegError as exc:
            self.result.setText(str(exc) + " Choose the Python executable QGIS runs above.")

    def requirements(self) -> List[str]:
        if self.fixed_requirements is not None:
            return list(self.fixed_requirements)
        return requirements_to_install(self.target, self.sam_box.isChecked())

    def refresh(self) -> None:
        """Say what will be installed and where."""
        try:
            wanted = self.requirements()
        except Exception as exc:  # noqa: BLE001 (shown, not raised, in a dialog)
            wanted = []
            self.result.setText(f"Could not work out what is missing ({type(exc).__name__}: {exc}).")
        if wanted:
            self.what.setText(f"pip will install {len(wanted)} package{'s' if len(wanted) > 1 else ''} ({'; '.join(wanted)}) "
                              f"into Seg's private folder {self.target}. QGIS's own packages (GDAL, PROJ, numpy, Qt) are "
                              "not touched; the folder comes after them on the Python path.")
        else:
            self.what.setText("Nothing to install: everything Seg needs is there.")
        self.install_button.setEnabled(bool(wanted) and self.task is None)

    @property
    def running(self) -> bool:
        return self.task is not None

    def start(self) -> None:
        """Start pip in a QgsTask (nothing happens while one is running)."""
        from ..qgis_adapters.deps_task import InstallDependenciesTask

        if self.task is not None:
            return
        wanted = self.requirements()
        if not wanted:
            self.result.setText("Nothing to install.")
            return
        try:
            options = shlex.split(self.pip_options.text())
        except ValueError as exc:
            self.result.setText(f"Cannot read the pip options ({exc}).")
            return
        python = self.python.filePath().strip() or None
        self.finished_ok = None
        self.log.clear()
        self.lines = []
        self.progress.setValue(0)
        self.result.setText("Installing... (this can take minutes; QGIS stays usable)")
        if self.fixed_requirements is not None:
            task = InstallDependenciesTask(wanted, self.target, pip_options=options, python=python)
        else:
            task = InstallDependenciesTask(target=self.target, pip_options=options, python=python,
                                           groups=groups_to_install(self.sam_box.isChecked()))
        task.lineReceived.connect(self._line)
        task.stepChanged.connect(self.step.setText)
        task.progressChanged.connect(lambda percent: self.progress.setValue(int(percent)))
        task.installFinished.connect(self._finished)
        self.task = task
        self.install_button.setEnabled(False)
        self.sam_box.setEnabled(False)
        QgsApplication.taskManager().addTask(task)

    def _line(self, line: str) -> None:
        self.lines.append(line)
        self.log.appendPlainText(line)

    def cancel(self) -> None:
        """Cancel a running install (pip is stopped, the folder stays as it was), else close."""
        if self.task is not None:
            self.task.cancel()
            self.result.setText("Canceling...")
        else:
            self.reject()

    def _finished(self, ok: bool, message: str) -> None:
        self.task = None
        self.finished_ok = ok
        self.sam_box.setEnabled(True)
        if ok:
            self.progress.setValue(100)
            self.step.setText("")
            self.result.setText(f"<b>Done.</b> {message} <b>Restart QGIS</b> so that Seg loads them.")
            self.cancel_button.setText("Close")
        else:
            self.result.setText(f"<b>Not installed:</b> {message}")
        self.refresh()
        self.installFinished.emit(ok, message)
