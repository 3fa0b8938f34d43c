"""The host protocol: how the engine reports progress and learns about cancellation.

The engine knows nothing of QGIS or terminals. A host passes any object with `set_progress` and
`is_canceled`; QGIS feedback objects and QgsTasks are adapted in `qgis_adapters`, the CLI uses a
tqdm bar.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Optional, Protocol, TypeVar

from .errors import Canceled

T = TypeVar("T")


class Progress(Protocol):
    def set_progress(self, percent: float) -> None: ...

    def is_canceled(self) -> bool: ...


class NullProgress:
    """Reports nowhere and never cancels."""

    def set_progress(self, percent: float) -> None:
        pass

    def is_canceled(self) -> bool:
        return False


def check_canceled(progress: Optional[Progress]) -> None:
    if progress is not None and progress.is_canceled():
        raise Canceled("Canceled by the user; nothing was written.")


def track(items: Iterable[T], total: int, progress: Optional[Progress]) -> Iterator[T]:
    """Yield `items`, checking for cancellation before each and reporting percent after each."""
    progress = progress or NullProgress()
    for done, item in enumerate(items, start=1):
        check_canceled(progress)
        yield item
        progress.set_progress(100.0 * done / max(total, 1))


class Part:
    """A stretch start..end (percent) of another progress: a job's steps share one bar."""

    def __init__(self, progress: Optional[Progress], start: float, end: float):
        self.progress, self.start, self.end = progress or NullProgress(), start, end

    def set_progress(self, percent: float) -> None:
        self.progress.set_progress(self.start + (self.end - self.start) * min(max(percent, 0.0), 100.0) / 100.0)

    def is_canceled(self) -> bool:
        return self.progress.is_canceled()
