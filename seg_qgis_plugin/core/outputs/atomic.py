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

Limits: a rename is atomic for one file; a Shapefile's sidecars are moved one by one (`.shp` last).
Large outputs are not fsynced (a crash of the process cannot leave them half-written; a power cut
on some filesystems can).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

from ..errors import OutputError, SegError

TEMP_PREFIX = ".seg-write-"
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
        folder = os.path.dirname(self.path)
        try:
            self.tmpdir = tempfile.mkdtemp(dir=folder, prefix=TEMP_PREFIX)
        except OSError as exc:
            raise OutputError(f"Cannot write in {folder}: {reason(exc, folder)}.") from exc
        self.tmp = os.path.join(self.tmpdir, os.path.basename(self.path))

    def commit(self, durable: bool = False) -> str:
        """Move the finished file into place; returns `path`. durable: fsync it first."""
        try:
            if self.sidecars:
                stem = os.path.splitext(os.path.basename(self.path))[0]
                target_stem = os.path.splitext(self.path)[0]
                for ext in self.sidecars:
                    src = os.path.join(self.tmpdir, stem + ext)
                    if os.path.exists(src):
                        _replace(src, target_stem + ext, durable)
            else:
                for suffix in self.companions:
                    if os.path.exists(self.tmp + suffix):
                        _replace(self.tmp + suffix, self.path + suffix, durable)
                    elif os.path.exists(self.path + suffix):
                        os.remove(self.path + suffix)
                _replace(self.tmp, self.path, durable)
        except OSError as exc:
            raise OutputError(f"Cannot write {self.path}: {reason(exc, self.path)}; nothing was changed.") from exc
        finally:
            self.discard()
        return self.path

    def discard(self) -> None:
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
    parent = os.path.dirname(path)
    try:
        tmp = tempfile.mkdtemp(dir=parent, prefix=TEMP_PREFIX)
    except OSError as exc:
        raise OutputError(f"Cannot write in {parent}: {reason(exc, parent)}.") from exc
    try:
        yield tmp
        if os.path.isdir(path):
            _swap_folder(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        _reraise(exc, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: str, text: str, what: str = "", encoding: str = "utf-8") -> str:
    """Write `text` to `path` whole or not at all, fsyncing the file and its folder. Creates the
    folder if needed. what: how to name the file in an error ("the config file")."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    name = f"{what} {path}" if what else path
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=os.path.splitext(path)[1])
    except OSError as exc:
        raise OutputError(f"Cannot write {name}: {reason(exc, folder)}.") from exc
    try:
        with os.fdopen(fd, "w", encoding=encoding) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        _replace(tmp, path, durable=False)
        _fsync_folder(folder)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, SegError):
            raise OutputError(f"Cannot write {name}: {reason(exc, path)}; it was left as it was.") from exc
        raise
    return path


def write_json_atomic(path: str, value, what: str = "", indent: int = 2) -> str:
    """`value` as JSON (UTF-8, sorted as given) through write_text_atomic."""
    return write_text_atomic(path, json.dumps(value, indent=indent, ensure_ascii=False) + "\n", what)


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


def reason(exc: BaseException, path: str, needed: int = 0, tmp: Optional[str] = None) -> str:
    """Why a write of `path` failed, in words: 'No space left on device' when the disk is full
    (also when GDAL or SQLite only say that a commit or an I/O failed: then less than `needed`
    bytes free counts as full), else the OS's words or the first line of the message, with the
    temporary path `tmp` named as `path`."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(errno.ENOSPC) if exc.errno == errno.ENOSPC else exc.strerror or os.strerror(exc.errno)
    text = str(exc).lower()
    if "disk is full" in text or "no space left" in text or _disk_full(path, needed):
        return os.strerror(errno.ENOSPC)
    lines = str(exc).strip().splitlines()
    first = lines[0].rstrip(".") if lines else type(exc).__name__
    return first.replace(tmp, path) if tmp else first


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
    aside = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=TEMP_PREFIX)
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


def _disk_full(path: str, needed: int = 0) -> bool:
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return False
    return usage.free < max(64 * 1024, needed)


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


__all__ = ["StagedPath", "atomic_path", "atomic_folder", "write_text_atomic", "write_json_atomic", "file_lock",
           "reason", "write_error", "SHAPEFILE_SIDECARS"]
