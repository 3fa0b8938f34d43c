"""Resumable, verified HTTP downloads with the standard library (urllib), for model checkpoints.

`download_file(url, dest, sha256=..., size=...)` streams into `dest + ".part"`, resumes a partial
file with an HTTP `Range` request, checks the size and the sha256, and only then renames the
`.part` onto `dest` (atomic on one filesystem). So `dest` is either absent or complete and verified.

What is left behind, by outcome:
- success: `dest` only;
- wrong checksum or size: nothing (the `.part` is deleted; a corrupt file must not be resumed);
- cancel, Ctrl+C, network failure: the `.part`, so the same call resumes where it stopped.

Cost: hashing a resumed `.part` reads it once (about 1 s per GB); the download itself streams in
1 MiB blocks, so memory stays flat whatever the file size.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from typing import Optional

from ..errors import Canceled, CheckpointError, OutputError
from ..progress import NullProgress, Progress

BLOCK = 1 << 20
USER_AGENT = "seg-qgis-plugin (model download)"
NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError)


class DownloadError(CheckpointError):
    """A download failed on the network or the server; the `.part` file is kept for resuming."""


class ChecksumError(CheckpointError):
    """A downloaded or added file does not have the expected sha256 or size."""


def part_path(dest: str) -> str:
    return os.fspath(dest) + ".part"


def download_file(url: str, dest: str, sha256: Optional[str] = None, size: Optional[int] = None,
                  progress: Optional[Progress] = None, retries: int = 3, timeout: float = 30.0) -> str:
    """Download `url` to `dest`, resuming from `dest.part`; returns `dest`.

    sha256 (hex) and size (bytes), when given, are checked before `dest` appears. A dropped
    connection is resumed up to `retries` times within this call; after that a DownloadError
    says how much was kept. `progress.is_canceled()` is checked between 1 MiB blocks; a cancel
    raises Canceled and keeps the `.part`.
    """
    dest = os.fspath(dest)
    progress = progress or NullProgress()
    _prepare_folder(dest)
    failures = 0
    while True:
        try:
            _fetch_into_part(url, dest, size, progress, timeout)
            break
        except NETWORK_ERRORS as exc:
            failures += 1
            if failures > retries:
                kept = _size_of(part_path(dest))
                raise DownloadError(f"Downloading {url} failed ({_reason(exc)}); {kept} bytes are kept in "
                                    f"{part_path(dest)} and the next try resumes from there.") from exc
    _verify_and_place(dest, sha256, size)
    progress.set_progress(100.0)
    return dest


def _prepare_folder(dest: str) -> None:
    folder = os.path.dirname(os.path.abspath(dest))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the folder {folder} for {os.path.basename(dest)} ({exc.strerror}).") from exc
    if not os.access(folder, os.W_OK):
        raise OutputError(f"The folder {folder} is not writable; choose another models folder.")


def _fetch_into_part(url: str, dest: str, size: Optional[int], progress: Progress, timeout: float) -> None:
    """One HTTP request: append to the `.part` (206) or restart it (200)."""
    part = part_path(dest)
    have = _size_of(part)
    if size is not None and have >= size:
        if have == size:
            return  # complete already; verification decides
        os.remove(part)  # longer than the file can be: start again
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the range starts at the end: the .part is complete
            return
        raise DownloadError(f"The server refused {url} (HTTP {exc.code} {exc.reason}).") from exc
    with response:
        if have and response.status != 206:
            have = 0  # the server ignored the Range header: start over
        total = _total_size(response, have) or size
        with open(part, "ab" if have else "wb") as out:
            done = have
            while True:
                if progress.is_canceled():
                    raise Canceled(f"Download canceled; {done} bytes are kept in {part} and the next try resumes from there.")
                block = response.read1(BLOCK)
                if not block:
                    break
                out.write(block)
                done += len(block)
                if total:
                    progress.set_progress(min(99.9, 100.0 * done / total))
        if total and done < total:
            raise http.client.IncompleteRead(b"", total - done)


def _verify_and_place(dest: str, sha256: Optional[str], size: Optional[int]) -> None:
    part = part_path(dest)
    have = _size_of(part)
    if size is not None and have != size:
        os.remove(part)
        raise ChecksumError(f"The download of {os.path.basename(dest)} has {have} bytes, not {size}; it was deleted.")
    if sha256:
        digest = sha256_file(part)
        if digest != sha256.lower():
            os.remove(part)
            raise ChecksumError(f"The download of {os.path.basename(dest)} has sha256 {digest}, not the expected "
                                f"{sha256.lower()}; it was deleted (a damaged or substituted file).")
    with open(part, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(part, dest)


def sha256_file(path: str, block: int = BLOCK) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def _total_size(response, have: int) -> Optional[int]:
    """Full file size from Content-Range (206) or Content-Length (200)."""
    content_range = response.headers.get("Content-Range", "")
    if response.status == 206 and "/" in content_range:
        tail = content_range.rsplit("/", 1)[1].strip()
        if tail.isdigit():
            return int(tail)
    length = response.headers.get("Content-Length")
    if length and length.isdigit():
        return int(length) + (have if response.status == 206 else 0)
    return None


def _size_of(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return str(exc.reason)
    if isinstance(exc, http.client.IncompleteRead):
        return "the connection closed early"
    return str(exc) or type(exc).__name__
