"""Staging names and their cleanup: where atomic writes are built before they are published.

A staging name records the process and host that own it (`.seg-write-<pid>-<host hash>-...`): a
process killed outright (SIGKILL, power cut) cannot remove its own, so the next Seg run writing into
the same folder removes those whose process is gone. Staged files get the mode any new file gets
(0666 less the umask), folders 0777 less the umask. `reason` says in words why a write failed.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
from typing import Optional

from ..errors import OutputError

TEMP_PREFIX = ".seg-write-"


_STAGING_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-([0-9a-f]{8})-")
_CLEANED: set = set()


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
            _remove_file(full)
        removed += 1
    return removed


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


def _disk_full(path: str, needed: int = 0) -> bool:
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return False
    return usage.free < max(64 * 1024, needed)


def _remove_file(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
