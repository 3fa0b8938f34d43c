"""Atomic writing: the one place where Seg makes files and folders appear whole or not at all.

Every output is built under a hidden temporary folder beside its destination (so on the same
filesystem, with the destination's own file name, so GDAL picks the driver from the extension and
writes its sidecars there too) and moved into place with `os.replace` only when the work finished
without an exception. Any exception, KeyboardInterrupt included, removes the temporary folder and
leaves the destination as it was.

- `atomic_path(path)`: yields a temporary path for one file (or a Shapefile and its sidecars).
- `StagedPath(path)`: the same with an explicit lifetime (`commit()` / `discard()`), for writers
  that outlive one block (LabelWriter).
- `atomic_folder(path)`: a whole folder of outputs (chips, COCO).
- `write_text_atomic` / `write_json_atomic`: small files (settings, model lists) with fsync of the
  file and of its folder, so they survive a power cut as well as a crash.
- `file_lock(path)`: serializes processes that rewrite the same file (appends to formats that have
  no transactions); the lock file is removed again when released.
- `staging_folder(parent)` / `staging_file(parent, suffix)` (core.outputs.staging): a bare hidden
  staging folder or file, named after its process so that the next run removes those of dead ones.

Limits: a rename is atomic for one file; a Shapefile's sidecars are moved one by one (`.shp` last).
Large outputs are not fsynced (a crash of the process cannot leave them half-written; a power cut
on some filesystems can).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

from ..errors import OutputError, SegError
from .publish import deferring
from .staging import (TEMP_PREFIX, _mode, _staging_file, _staging_prefix, reason, remove_stale_staging,  # noqa: F401 (re-exported)
                      staging_file, staging_folder)

SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg", ".qix", ".shp")  # .shp last: readers look for it first


class StagedPath:
    """A temporary path `tmp` beside `path` (same basename, in a fresh hidden folder). `commit()`
    moves it onto `path`; `discard()` removes the temporary folder. Raises OutputError when the
    folder cannot be written.

    sidecars: extensions replacing the file's own (a Shapefile's ".dbf", ...), moved when present.
    companions: suffixes added to the file name (GDAL's ".aux.xml"), moved when present and
    removed beside `path` when not, since they described the file being replaced."""

    def __init__(self, path: str, sidecars: Sequence[str] = (), companions: Sequence[str] = ()):
        self.path = os.path.abspath(os.fspath(path))
        self.sidecars, self.companions = tuple(sidecars), tuple(companions)
        self.tmpdir = staging_folder(os.path.dirname(self.path))
        self.tmp = os.path.join(self.tmpdir, os.path.basename(self.path))

    def commit(self, durable: bool = False) -> str:
        """Move the finished file into place (inside publish.outputs_together: when the run ends);
        returns `path`. durable: fsync it first."""
        moves = self._moves()
        held = deferring(self.path)
        if held is not None:
            self._held = True
            held.defer(moves, lambda: shutil.rmtree(self.tmpdir, ignore_errors=True), durable)
            return self.path
        try:
            for src, dst in moves:
                os.remove(dst) if src is None else _replace(src, dst, durable)
        except OSError as exc:
            raise OutputError(f"Cannot write {self.path}: {reason(exc, self.path)}; nothing was changed.") from exc
        finally:
            self.discard()
        return self.path

    def _moves(self):
        """(staged file, destination) pairs, in order; None: remove the destination."""
        if self.sidecars:
            stem = os.path.splitext(os.path.basename(self.path))[0]
            target_stem = os.path.splitext(self.path)[0]
            return [(os.path.join(self.tmpdir, stem + ext), target_stem + ext) for ext in self.sidecars
                    if os.path.exists(os.path.join(self.tmpdir, stem + ext))]
        moves = []
        for suffix in self.companions:
            if os.path.exists(self.tmp + suffix):
                moves.append((self.tmp + suffix, self.path + suffix))
            elif os.path.exists(self.path + suffix):
                moves.append((None, self.path + suffix))
        return moves + [(self.tmp, self.path)]

    def discard(self) -> None:
        if not getattr(self, "_held", False):  # once held by a publication, it removes the folder
            shutil.rmtree(self.tmpdir, ignore_errors=True)


@contextmanager
def atomic_path(path: str, sidecars: Sequence[str] = (), companions: Sequence[str] = (),
                durable: bool = False) -> Iterator[str]:
    """Yield a temporary path to write `path` to; on success it is moved into place, on any
    exception (KeyboardInterrupt too) it is removed and `path` is left untouched. An OS failure
    (full disk, permissions) becomes an OutputError with one sentence. sidecars, companions: see
    StagedPath; durable: fsync before the move.

        with atomic_path("out/classes.tif") as tmp:
            write tmp
    """
    staged = StagedPath(path, sidecars, companions)
    try:
        yield staged.tmp
    except BaseException as exc:
        staged.discard()
        _reraise(exc, staged.path)
    staged.commit(durable)


def atomic_folder(path: str, overwrite: bool = False):
    """Build a folder of outputs in a temporary folder beside `path`, moved into place only when
    the block ends without an exception; a failed or cancelled run leaves nothing. `path` may not
    exist or be empty; a non-empty folder is an error unless `overwrite` (then it is replaced).
    The target is checked when this is called, before any work (OutputError in one sentence).

        with atomic_folder("out/chips") as tmp:
            write files into tmp
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise OutputError(f"The folder {parent} does not exist.")
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"{path} is a file, not a folder.")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise OutputError(f"The folder {path} is not empty; choose an empty or new folder, or overwrite it.")
    return _atomic_folder(path)


@contextmanager
def _atomic_folder(path: str) -> Iterator[str]:
    tmp = staging_folder(os.path.dirname(path))
    held = None
    try:
        yield tmp
        os.chmod(tmp, _mode(0o777))
        held = deferring(path)
        if held is not None:
            held.defer([(tmp, path)], lambda: shutil.rmtree(tmp, ignore_errors=True))
        elif os.path.isdir(path):
            _swap_folder(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        _reraise(exc, path)
    finally:
        if held is None:
            shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: str, text: str, what: str = "", encoding: str = "utf-8") -> str:
    """Write `text` to `path` whole or not at all, fsyncing the file and its folder. Creates the
    folder if needed. what: how to name the file in an error ("the config file")."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    name = f"{what} {path}" if what else path
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = _staging_file(folder, os.path.splitext(path)[1])
    except OSError as exc:
        raise OutputError(f"Cannot write {name}: {reason(exc, folder)}.") from exc
    try:
        with os.fdopen(fd, "w", encoding=encoding) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        held = deferring(path)
        if held is not None:
            held.defer([(tmp, path)], lambda: _remove(tmp))
            return path
        _replace(tmp, path, durable=False)
        _fsync_folder(folder)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, SegError):
            raise OutputError(f"Cannot write {name}: {reason(exc, path)}; it was left as it was.") from exc
        raise
    return path


def write_json_atomic(path: str, value, what: str = "", indent: int = 2) -> str:
    """`value` as JSON (UTF-8, sorted as given) through write_text_atomic. JSON has no NaN or
    infinity: a value holding one is refused (OutputError) and nothing is written."""
    return write_text_atomic(path, json_text(value, path, indent), what)


def json_text(value, path: str = "", indent: Optional[int] = 2) -> str:
    """`value` as strict JSON text (UTF-8 characters kept, a final newline); one sentence
    (OutputError naming `path`) when it holds NaN or infinity, which JSON cannot hold."""
    try:
        return json.dumps(value, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as exc:
        raise OutputError(f"Cannot write {path or 'the JSON file'}: {_non_finite(value) or 'a value'} is not a finite "
                          "number, which JSON cannot hold; nothing was written.") from exc


def _non_finite(value, where: str = "") -> str:
    """The key path of the first NaN or infinity in `value` ('rows[2].iou'), or ''."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "a value"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        found = _non_finite(item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key))
        if found:
            return found
    return ""


@contextmanager
def file_lock(path: str, timeout: float = 120.0) -> Iterator[None]:
    """Hold an exclusive lock on `path` (through a hidden `.<name>.seg-lock` beside it) for the
    block, waiting up to `timeout` seconds for another process that holds it. Seg processes that
    rewrite the same file take turns instead of overwriting each other's work. The lock file is
    removed on release. Raises OutputError after `timeout`."""
    path = os.path.abspath(os.fspath(path))
    lock_path = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.seg-lock")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            raise OutputError(f"Cannot lock {path}: {reason(exc, lock_path)}.") from exc
        if _try_lock(fd):
            try:
                if os.path.samestat(os.fstat(fd), os.stat(lock_path)):
                    break  # the lock file we hold is still the one at lock_path
            except FileNotFoundError:
                pass  # its holder removed it as we waited: take the new one
            _unlock(fd)
        os.close(fd)
        if time.monotonic() > deadline:
            raise OutputError(f"Another program has been writing {path} for over {timeout:g} s; try again when it is done.")
        time.sleep(0.02)
    try:
        yield
    finally:
        _remove(lock_path)  # removed while held, so a waiter re-checks and takes a fresh one
        _unlock(fd)
        os.close(fd)


def write_error(exc: BaseException, path: str, existed: bool, needed: int = 0, tmp: Optional[str] = None) -> OutputError:
    """The OutputError for a failed write of `path` (raise it `from exc`); see `reason`."""
    outcome = "nothing was changed" if existed else "nothing was written"
    return OutputError(f"Cannot write {path}: {reason(exc, path, needed, tmp)}; {outcome}.")


def _reraise(exc: BaseException, path: str) -> None:
    """Re-raise `exc` from inside an except block; an OS failure as an OutputError."""
    if isinstance(exc, OSError) and not isinstance(exc, SegError):
        raise write_error(exc, path, os.path.exists(path)) from exc
    raise exc


def _swap_folder(new: str, path: str) -> None:
    """Replace the folder `path` by `new`; the old one is moved aside first and put back on failure."""
    aside = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=_staging_prefix())
    old = os.path.join(aside, "old")
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise
    finally:
        if os.path.isdir(path):
            shutil.rmtree(aside, ignore_errors=True)


def _replace(src: str, dst: str, durable: bool) -> None:
    if durable:
        with open(src, "rb") as f:
            os.fsync(f.fileno())
    os.replace(src, dst)


def _fsync_folder(folder: str) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a folder; the rename is still atomic
    finally:
        os.close(fd)


def _remove(path: Optional[str]) -> None:
    if path:
        try:
            os.remove(path)
        except OSError:
            pass


try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
except ImportError:  # Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass


__all__ = ["StagedPath", "atomic_path", "atomic_folder", "write_text_atomic", "write_json_atomic", "json_text", "file_lock",
           "staging_folder", "staging_file", "remove_stale_staging", "reason", "write_error", "SHAPEFILE_SIDECARS"]
