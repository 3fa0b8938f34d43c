"""Where the algorithms' engine work runs when Processing runs them in the background.

Processing runs an algorithm in a QGIS pool thread, which Python sees as a new thread each time;
pyproj's PROJ context (and torch) crash or slow down there (see gui/worker.py). So the work goes to
one long-lived thread, always the same, while the pool thread waits: QGIS keeps its background
task, its progress bar and its Cancel button. What QGIS binds to the pool thread (layers made for
parameters, feature sinks) is made there: `on_caller` hands such a call back to the waiting thread.
Called from the main thread (the Python console, a script, the tests) the work runs in place.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Optional

_executor: Optional[ThreadPoolExecutor] = None
_state = threading.local()
_DONE = object()


def _engine() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seg-processing")
    return _executor


def on_main_thread() -> bool:
    from qgis.PyQt.QtCore import QCoreApplication, QThread

    app = QCoreApplication.instance()
    return app is None or QThread.currentThread() == app.thread()


def run_in_engine_thread(work: Callable):
    """work() on the long-lived engine thread, serving its `on_caller` calls here meanwhile; in
    place when called on the main thread or already on the engine thread."""
    if on_main_thread() or getattr(_state, "calls", None) is not None:
        return work()
    calls: "queue.Queue" = queue.Queue()

    def job():
        _state.calls = calls
        try:
            return work()
        finally:
            _state.calls = None
            calls.put(_DONE)

    future = _engine().submit(job)
    for call in iter(calls.get, _DONE):
        call()
    return future.result()


def on_caller(function: Callable, *args, **kwargs):
    """function(*args, **kwargs) on the thread that waits for the engine thread (in place elsewhere)."""
    calls = getattr(_state, "calls", None)
    if calls is None:
        return function(*args, **kwargs)
    answer: Future = Future()

    def call():
        try:
            answer.set_result(function(*args, **kwargs))
        except BaseException as exc:  # raised again on the engine thread, where the algorithm handles it
            answer.set_exception(exc)

    calls.put(call)
    return answer.result()
