"""All outputs of a run appear together or none of them does.

Inside `outputs_together(paths)`, every atomic write (atomic.py: StagedPath, atomic_path,
atomic_folder, write_text_atomic, hence LabelWriter, the rasters, the reports) whose destination
is one of `paths` is finished in its temporary place but not moved: the moves are made together
when the block ends without an exception, and dropped with their temporary files when it raises.
If one move fails (a folder made read-only meanwhile), those already made are undone and what they
replaced is put back, so the run leaves every destination as it was.

    with outputs_together([args.out, args.csv, args.png]):
        write_json_atomic(args.out, ...)
        write_text_atomic(args.csv, ...)
        change_png(report, args.png)      # raises: neither the JSON nor the CSV appears

Writes that cannot wait are made at once: an append into an existing GeoPackage (one SQLite
transaction into the file) and database targets. Other files (resume manifests, caches) are never
held back.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

from ..errors import OutputError

Move = Tuple[Optional[str], str]  # (finished temporary file or folder, destination); None: remove the destination

_current: ContextVar[Optional["Publication"]] = ContextVar("seg_publication", default=None)


class Publication:
    """Moves held back until the run's end; see the module doc."""

    def __init__(self, paths: Iterable[str]):
        from .output_checks import file_of

        self.keys = {_key(p) for p in (file_of(p) for p in paths) if p}
        self.pending: List[Tuple[List[Move], Callable[[], None], bool]] = []

    def takes(self, path: str) -> bool:
        return _key(os.path.abspath(path)) in self.keys

    def defer(self, moves: List[Move], cleanup: Callable[[], None], durable: bool = False) -> None:
        self.pending.append((list(moves), cleanup, durable))

    def publish(self) -> None:
        from .staging import reason

        done: List[Tuple[Optional[str], str, Optional[str], bool]] = []
        ok = False
        try:
            for moves, _, durable in self.pending:
                for src, dst in moves:
                    done.append((src, dst, _move_aside(dst), False))
                    if src is not None:
                        if durable and os.path.isfile(src):
                            with open(src, "rb") as f:
                                os.fsync(f.fileno())
                        os.replace(src, dst)
                        done[-1] = done[-1][:3] + (True,)
            ok = True
        except OSError as exc:
            failed = done[-1][1] if done else "an output"
            _undo(done)
            raise OutputError(f"Cannot write {failed}: {reason(exc, failed)}; no output of this run was written.") from exc
        finally:
            self.discard()
            for _, _, aside, _ in done:
                if aside and (ok or not os.path.lexists(aside)):  # an old file not put back stays aside
                    shutil.rmtree(os.path.dirname(aside), ignore_errors=True)

    def discard(self) -> None:
        for _, cleanup, _ in self.pending:
            cleanup()
        self.pending = []


@contextmanager
def outputs_together(paths: Iterable[Optional[str]]) -> Iterator[Publication]:
    """Hold back the atomic writes to `paths` (paths or layer URIs; None is skipped) until the
    block ends; publish them together then, or drop them all when it raises. A block inside
    another one joins it."""
    outer = _current.get()
    if outer is not None:
        outer.keys |= Publication(paths).keys
        yield outer
        return
    publication = Publication(paths)
    token = _current.set(publication)
    try:
        yield publication
    except BaseException:
        _current.reset(token)
        publication.discard()
        raise
    _current.reset(token)
    publication.publish()


def deferring(path: str) -> Optional[Publication]:
    """The open Publication that holds back a write to `path`, or None: write it now."""
    publication = _current.get()
    return publication if publication is not None and publication.takes(path) else None


def _move_aside(dst: str) -> Optional[str]:
    """Move an existing `dst` into a hidden folder beside it; its new path, or None."""
    if not os.path.lexists(dst):
        return None
    from .staging import TEMP_PREFIX

    aside = os.path.join(tempfile.mkdtemp(dir=os.path.dirname(dst), prefix=TEMP_PREFIX), "old")
    os.replace(dst, aside)
    return aside


def _undo(done) -> None:
    for src, dst, aside, placed in reversed(done):
        try:
            if placed:
                shutil.rmtree(dst) if os.path.isdir(dst) and not os.path.islink(dst) else os.remove(dst)
            if aside:
                os.replace(aside, dst)
        except OSError:
            pass  # best effort: the aside copy stays in its hidden folder


def _key(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


__all__ = ["outputs_together", "deferring", "Publication"]
