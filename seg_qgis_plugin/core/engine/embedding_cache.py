"""Embeddings on disk, one safetensors file per tile.

safetensors holds only arrays and a string header: no pickle, nothing executable. Each file
describes itself (format, raster fingerprint and file name, window, radiometry, model id and
checkpoint sha256, dtype, creation time), and files are named by a hash of that key, so a cache
folder needs no index, holds no absolute paths, and can be copied from a GPU server to a laptop.
Files are written to a temporary name and renamed, so an interrupted run leaves only whole
entries and a second run encodes just what is missing.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Dict, Iterator, Optional

import numpy as np

from ..errors import CacheError, OutputError
from ..models.backend import Embedding
from ..geo.radiometry import Radiometry
from ..geo.tiling import Tile

FORMAT = "seg-embedding/1"


@dataclass(frozen=True)
class CacheKey:
    fingerprint: str
    tile: Tile
    radiometry: Radiometry
    model_id: str
    checkpoint_sha256: str

    def digest(self) -> str:
        text = json.dumps([FORMAT, self.fingerprint, self.tile.label(), self.radiometry.to_json(), self.model_id, self.checkpoint_sha256])
        return hashlib.sha256(text.encode()).hexdigest()[:24]


class EmbeddingCache:
    """A folder of tile embeddings. float16=True halves the size (decoder masks change by far
    less than a pixel on typical imagery); reading always returns float32."""

    def __init__(self, folder: str, float16: bool = False):
        self.folder = os.fspath(folder)
        self.float16 = float16
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"Cannot create the cache folder {self.folder}: {exc.strerror}.") from exc

    def path_for(self, key: CacheKey) -> str:
        return os.path.join(self.folder, key.digest() + ".safetensors")

    def __contains__(self, key: CacheKey) -> bool:
        return os.path.exists(self.path_for(key))

    def get(self, key: CacheKey) -> Optional[Embedding]:
        path = self.path_for(key)
        if not os.path.exists(path):
            return None
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            meta = read_header(path)
            arrays = {k: v.astype(np.float32) for k, v in load_file(path).items()}
        except (SafetensorError, OSError, ValueError, KeyError) as exc:
            raise CacheError(f"The cache entry {os.path.basename(path)} is unreadable ({exc}); delete it and encode again.") from exc
        if meta.get("fingerprint") != key.fingerprint or meta.get("checkpoint_sha256") != key.checkpoint_sha256:
            raise CacheError(f"The cache entry {os.path.basename(path)} belongs to another raster or model.")
        _touch(path)
        info = json.loads(meta["embedding"])
        return Embedding(image_size=tuple(info["image_size"]), arrays=arrays, meta=info["meta"])

    def put(self, key: CacheKey, embedding: Embedding, raster_name: str) -> str:
        from safetensors import SafetensorError
        from safetensors.numpy import save_file

        from ..outputs.atomic import atomic_path, reason

        dtype = np.float16 if self.float16 else np.float32
        arrays = {k: np.ascontiguousarray(v.astype(dtype)) for k, v in embedding.arrays.items()}
        c, r, w, h = key.tile.raster_window
        header = {
            "format": FORMAT, "fingerprint": key.fingerprint, "raster": os.path.basename(raster_name),
            "window": json.dumps([c, r, w, h]), "scale": str(key.tile.scale), "tile": json.dumps([key.tile.col, key.tile.row, key.tile.width, key.tile.height]),
            "radiometry": key.radiometry.to_json(), "model_id": key.model_id, "checkpoint_sha256": key.checkpoint_sha256,
            "dtype": np.dtype(dtype).name, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "embedding": json.dumps({"image_size": list(embedding.image_size), "meta": embedding.meta}),
        }
        path = self.path_for(key)
        try:
            with atomic_path(path) as tmp:
                try:
                    save_file(arrays, tmp, metadata=header)
                except SafetensorError as exc:  # safetensors reports a full disk as its own error
                    raise OSError(reason(exc, tmp)) from exc
        except OutputError as exc:
            raise OutputError(f"Cannot write to the cache folder {self.folder}: {reason(exc.__cause__ or exc, self.folder)}.") from exc
        return path

    def entries(self) -> Iterator[Dict[str, str]]:
        """The header of every whole entry (for coverage layers and `seg info`)."""
        from safetensors import SafetensorError

        for name in sorted(os.listdir(self.folder)):
            if name.endswith(".safetensors"):
                try:
                    yield dict(read_header(os.path.join(self.folder, name)), file=name)
                except (OSError, ValueError, SafetensorError):
                    continue


    def prune(self, max_bytes: int) -> int:
        """Delete the least recently used entries until the folder holds at most `max_bytes`.
        Returns how many entries were deleted."""
        entries = [os.path.join(self.folder, n) for n in os.listdir(self.folder) if n.endswith(".safetensors")]
        entries.sort(key=os.path.getmtime)
        total = sum(os.path.getsize(p) for p in entries)
        deleted = 0
        for path in entries:
            if total <= max_bytes:
                break
            total -= os.path.getsize(path)
            _remove(path)
            deleted += 1
        return deleted


def _touch(path: str) -> None:
    """Mark an entry as used (its mtime orders `prune`)."""
    try:
        os.utime(path)
    except OSError:
        pass  # a read-only cache still serves


def read_header(path: str) -> Dict[str, str]:
    """The metadata of one cache file, read without loading its arrays."""
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} file")
    return meta


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
