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
- `staging_folder(parent)` / `staging_file(parent, suffix)`: a bare hidden staging folder or file.

A staging name records the process and host that own it (`.seg-write-<pid>-<host hash>-...`): a
process killed outright (SIGKILL, power cut) cannot remove its own, so the next Seg run writing into
the same folder removes those whose process is gone. Published files get the mode any new file
gets (0666 less the umask), folders 0777 less the umask, however they were staged.

Limits: a rename is atomic for one file; a Shapefile's sidecars are moved one by one (`.shp` last).
Large outputs are not fsynced (a crash of the process cannot leave them half-written; a power cut
on some filesystems can).
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

from ..errors import OutputError, SegError
from .publish import deferring

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


def staging_folder(parent: str) -> str:
    """A fresh hidden staging folder in `parent` owned by this process (see the module docstring);
    stale ones of dead Seg processes in `parent` are removed first. OutputError when `parent`
    cannot be written."""
    remove_stale_staging(parent)
    try:
        return tempfile.mkdtemp(dir=parent, prefix=_staging_prefix())
    except OSError as exc:
        raise OutputError(f"Cannot write in {parent}: {reason(exc, parent)}.") from exc


def staging_file(parent: str, suffix: str = "") -> str:
    """A fresh hidden, empty staging file in `parent` owned by this process, with the mode of a
    new file; move it into place with os.replace. OutputError when `parent` cannot be written."""
    try:
        fd, tmp = _staging_file(parent, suffix)
    except OSError as exc:
        raise OutputError(f"Cannot write in {parent}: {reason(exc, parent)}.") from exc
    os.close(fd)
    return tmp


def remove_stale_staging(parent: str) -> int:
    """Remove the staging folders and files in `parent` left by Seg processes of this host that no
    longer run (killed before they could clean up); returns how many. Runs once per folder and
    process; entries of live processes, of other hosts and of unknown form are left alone."""
    parent = os.path.abspath(parent)
    if parent in _CLEANED:
        return 0
    _CLEANED.add(parent)
    try:
        names = [n for n in os.listdir(parent) if n.startswith(TEMP_PREFIX)]
    except OSError:
        return 0
    removed = 0
    for name in names:
        m = _STAGING_NAME.match(name)
        if not m or m.group(2) != _host_tag() or _process_alive(int(m.group(1))):
            continue
        full = os.path.join(parent, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            _remove(full)
        removed += 1
    return removed


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


_STAGING_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-([0-9a-f]{8})-")
_CLEANED: set = set()


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _staging_prefix() -> str:
    return f"{TEMP_PREFIX}{os.getpid()}-{_host_tag()}-"


def _staging_file(parent: str, suffix: str):
    """(fd, path) of a new staging file in `parent` with the mode of a new file (mkstemp's is 0600)."""
    remove_stale_staging(parent)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=_staging_prefix(), suffix=suffix)
    try:
        os.chmod(tmp, _mode(0o666))
    except OSError:
        pass  # a filesystem without modes
    return fd, tmp


def _mode(full: int) -> int:
    """`full` (0o666 for files, 0o777 for folders) less this process's umask."""
    return full & ~_umask()


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or a platform that cannot tell: keep its files
    return True


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


__all__ = ["StagedPath", "atomic_path", "atomic_folder", "write_text_atomic", "write_json_atomic", "json_text", "file_lock",
           "staging_folder", "staging_file", "remove_stale_staging", "reason", "write_error", "SHAPEFILE_SIDECARS"]
