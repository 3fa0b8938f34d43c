"""The sha256 of a model file, remembered while the file is unchanged.

Checkpoints and ONNX graphs are hashed for provenance and checked against their manifest on each
load: 100-400 MB, 0.3-1 s of a laptop's CPU every time, on the way to the first mask. The digest
is kept in the user's cache with the file's identity: device, inode, size, modification and
change times. Writing to the file, replacing it or setting its times back all change its change
time (ctime), which no user command sets, so the same identity means the same bytes. A file
changed in the last SETTLED_S seconds is not remembered: two writes within one tick of the
filesystem's clock share their times (git's "racily clean" files).
"""
from __future__ import annotations

import json
import os
import threading
import time

from .download import sha256_file

KEPT = 256  # files remembered; the least recently used are forgotten
SETTLED_S = 2.0
_lock = threading.Lock()


def file_sha256(path: str) -> str:
    """The sha256 (hex) of the file at `path`, read only when it changed since last time."""
    key = os.path.realpath(path)
    identity = _identity(key)
    with _lock:
        known = _read()
    entry = known.get(key)
    if entry is not None and entry[:-1] == identity:
        return entry[-1]
    digest = sha256_file(key)
    settled = time.time_ns() - identity[-1] > SETTLED_S * 1e9
    if settled and _identity(key) == identity:  # and not written to while it was read
        with _lock:
            known = _read()
            known.pop(key, None)
            known[key] = identity + [digest]
            _write(dict(list(known.items())[-KEPT:]))
    return digest


def _identity(path: str) -> list:
    st = os.stat(path)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _store() -> str:
    from ..settings import user_dir

    return os.path.join(user_dir("cache"), "file-sha256.json")


def _read() -> dict:
    try:
        with open(_store()) as f:
            known = json.load(f)
        return known if isinstance(known, dict) else {}
    except (OSError, ValueError):  # none yet, or damaged: hash again
        return {}


def _write(known: dict) -> None:
    store = _store()
    part = f"{store}.{os.getpid()}.{threading.get_ident()}.part"
    try:
        os.makedirs(os.path.dirname(store), exist_ok=True)
        with open(part, "w") as f:
            json.dump(known, f)
        os.replace(part, store)
    except OSError:  # a read-only or full cache: the file is hashed again next time
        try:
            os.remove(part)
        except OSError:
            pass
