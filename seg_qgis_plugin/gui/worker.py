"""All model work runs here, off the UI thread, one job at a time, in QGIS tasks.

A `Job` is a function of a progress object (core Progress protocol) plus what to do with its
result on the UI thread. `ModelWorker` runs jobs serially as `QgsTask`s (progress and cancel in
QGIS's task manager), so the model and the Segmenter are only ever touched by one thread at a time,
and QGIS never freezes, even when a prompt needs a tile encoded first (seconds on a CPU).

Scheduling: jobs have a priority (opening a session, then prompts, then hover previews, then
encoding ahead). A job of a replaceable kind replaces a queued job of the same kind (only the
latest click or hover position matters). A running encode-ahead job is canceled when a prompt
arrives (it stops after the current tile) and queued again behind it.

Threads: a QgsTask runs in a pool thread that Python sees as a new thread each time; objects that
keep per-thread state (pyproj's PROJ context, torch) crash or slow down there (pyproj segfaults on
the second task). So each task hands its job to one long-lived Python thread (a one-worker
executor) and waits for it: the task gives progress, cancel and a place in the task manager, the
executor thread does the work, always the same thread.

Errors are never swallowed: an exception in a job is kept with its traceback and handed to the
job's `on_error` (the controller shows it in the dock and the message bar). The QGIS message log
gets expected problems (a SegError: a user mistake; a missing package) as one warning line without
traceback, and anything else (a bug) as CRITICAL with its traceback.

Progress: a running job's task never shows 100 % (QGIS sets that when the task finishes), so the
bar cannot claim "done" while the last tile is still being encoded.
"""
from __future__ import annotations

import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsTask
from qgis.PyQt.QtCore import QObject, pyqtSignal

from ..core.errors import Canceled, SegError

PRIORITY = {"open": 0, "segment": 1, "hover": 2, "find": 3, "encode": 4}
REPLACEABLE = {"segment", "hover", "encode"}
LOG_TAG = "Seg"
RUNNING_MAX_PERCENT = 99.0


def error_message(error: BaseException) -> str:
    """One sentence for the user: a SegError's own text; a missing package named, with the way out."""
    if isinstance(error, ModuleNotFoundError) and not isinstance(error, SegError) and error.name:
        from .. import deps

        module = error.name.split(".")[0]
        group = next((r.group for r in deps.PINS if r.module == module), "core")
        return deps.sentence_for((group,), [module])  # the dock's, Processing's and the message bar's wording
    return str(error) or type(error).__name__


def is_expected(error: BaseException) -> bool:
    """A user mistake or a missing package: logged as a warning, without traceback."""
    return isinstance(error, (SegError, ImportError))


def log_problem(error: BaseException, doing: str) -> str:
    """Log `error` met while `doing` (e.g. "saving the mask") and return one sentence for the user:
    an expected problem as a warning line, a bug as CRITICAL with its traceback (call it inside the
    `except` block, where the traceback is current)."""
    if is_expected(error):
        message = error_message(error)
        QgsMessageLog.logMessage(f"{doing}: {message}", LOG_TAG, Qgis.MessageLevel.Warning)
        return message
    QgsMessageLog.logMessage(f"{doing} failed:\n{traceback.format_exc()}", LOG_TAG, Qgis.MessageLevel.Critical)
    return f"Something went wrong while {doing} ({type(error).__name__}: {error}); the Seg log has the details."


class _TaskProgress:
    """core.progress.Progress on a running QgsTask, held below 100 % until the task has finished."""

    def __init__(self, task: QgsTask):
        self.task = task

    def set_progress(self, percent: float) -> None:
        self.task.setProgress(max(0.0, min(float(percent), RUNNING_MAX_PERCENT)))

    def is_canceled(self) -> bool:
        return self.task.isCanceled()


@dataclass(eq=False)
class Job:
    """kind: one of PRIORITY; run(progress) -> result runs in the task's thread; on_done(result)
    and on_error(exception) run on the UI thread."""

    kind: str
    description: str
    run: Callable
    on_done: Callable = lambda result: None
    on_error: Optional[Callable] = None
    requeue_when_preempted: bool = field(default=False)


class ModelTask(QgsTask):
    """A QgsTask that runs one Job; the result or the exception is kept for `finished`."""

    def __init__(self, job: Job, executor: ThreadPoolExecutor, when_finished: Callable):
        super().__init__(f"Seg: {job.description}", QgsTask.Flag.CanCancel)
        self.job, self.executor, self.when_finished = job, executor, when_finished
        self.result, self.error, self.trace = None, None, ""

    def run(self) -> bool:  # worker thread
        try:
            self.result = self.executor.submit(self.job.run, _TaskProgress(self)).result()
            return True
        except Canceled:
            return False
        except Exception as exc:  # kept and surfaced in finished(), on the UI thread
            self.error, self.trace = exc, traceback.format_exc()
            return False

    def finished(self, ok: bool) -> None:  # UI thread
        self.when_finished(self, ok)


class ModelWorker(QObject):
    """Runs Jobs one at a time through QgsApplication.taskManager()."""

    idleChanged = pyqtSignal(bool)
    errorRaised = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._queue: List[Job] = []
        self._task: Optional[ModelTask] = None
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seg-model")

    def submit(self, job: Job) -> None:
        if self._closed:
            return
        if job.kind in REPLACEABLE:
            self._queue = [queued for queued in self._queue if queued.kind != job.kind]
        self._queue.append(job)
        self._queue.sort(key=lambda queued: PRIORITY[queued.kind])
        running = self._task.job if self._task is not None else None
        if running is not None and running.kind == "encode" and PRIORITY[job.kind] < PRIORITY["encode"]:
            running.requeue_when_preempted = True
            self._task.cancel()
        self._start_next()

    def drop(self, kind: str) -> None:
        """Forget queued jobs of `kind` (a running one finishes)."""
        self._queue = [queued for queued in self._queue if queued.kind != kind]

    def has_job(self, kind: str) -> bool:
        """Whether a job of `kind` is queued or running."""
        return self.running_kind == kind or any(queued.kind == kind for queued in self._queue)

    @property
    def is_idle(self) -> bool:
        return self._task is None and not self._queue

    @property
    def running_kind(self) -> Optional[str]:
        return self._task.job.kind if self._task is not None else None

    def close(self, timeout_ms: int = 30000) -> None:
        """Cancel everything and wait for a running task to stop (plugin unload)."""
        self._closed = True
        self._queue.clear()
        task, stopped = self._task, True
        if task is not None:
            task.cancel()
            stopped = task.waitForFinished(timeout_ms)
        self._task = None
        self._executor.shutdown(wait=stopped, cancel_futures=True)

    def _start_next(self) -> None:
        if self._task is not None or not self._queue or self._closed:
            return
        job = self._queue.pop(0)
        job.requeue_when_preempted = False
        self._task = ModelTask(job, self._executor, self._finished)
        self.idleChanged.emit(False)
        QgsApplication.taskManager().addTask(self._task)

    def _finished(self, task: ModelTask, ok: bool) -> None:
        if task is not self._task:
            return
        self._task = None
        job = task.job
        try:
            if ok:
                job.on_done(task.result)
            elif task.error is not None:
                self._report(job, task.error, task.trace)
            elif job.requeue_when_preempted and not self._closed:
                self._queue.append(job)
                self._queue.sort(key=lambda queued: PRIORITY[queued.kind])
        except Exception as exc:  # a bug in a UI-thread callback: shown, not lost (and no abort from PyQt)
            self._report(Job("open", f"{job.description} (result)", job.run), exc, traceback.format_exc())
        finally:
            self._start_next()
            if self._task is None:
                self.idleChanged.emit(True)

    def _report(self, job: Job, error: Exception, trace: str) -> None:
        if is_expected(error):
            QgsMessageLog.logMessage(f"{job.description}: {error_message(error)}", LOG_TAG, Qgis.MessageLevel.Warning)
        else:
            QgsMessageLog.logMessage(f"{job.description} failed:\n{trace}", LOG_TAG, Qgis.MessageLevel.Critical)
        if job.on_error is not None:
            job.on_error(error)
        else:
            self.errorRaised.emit(error_message(error))
