"""SAM embedding features from an embedding cache, sampled at every pixel.

A cached tile holds SAM's image embedding: float32 (1, 256, 64, 64) for the tile resized so its
longest side is 1024 (`input_size`) and padded to 1024 x 1024, one cell per 16 model pixels. The
256 channels are reduced to `components` principal components (fitted once, on the training
raster's tiles, and stored in the model recipe as plain numbers), then interpolated bilinearly to
pixel centres. Where tiles overlap, a pixel takes the tile in which it lies deepest (farthest from
the tile's edge), as the segmenter does for clicks. Memory: one projected grid per tile
(components x 64 x 64 float32).
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import SegError
from .features import FeatureRecipe

COMPONENTS = 16
CELL = 16  # model pixels per embedding cell


class EmbeddingFeatures:
    """The cache entries of one raster and one model. Use `open`."""

    def __init__(self, folder: str, entries: List[dict], model_id: str, checkpoint_sha256: str):
        self.folder, self.entries = folder, entries
        self.model_id, self.checkpoint_sha256 = model_id, checkpoint_sha256
        self.mean: Optional[np.ndarray] = None
        self.components: Optional[np.ndarray] = None
        self._grids: Dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, folder: str, source, checkpoint: Optional[str] = None) -> "EmbeddingFeatures":
        from ..engine.embedding_cache import EmbeddingCache

        if not os.path.isdir(folder):
            raise SegError(f"The embedding cache {folder} does not exist; encode the raster first (seg encode).")
        fingerprint = source.fingerprint()
        found = [e for e in EmbeddingCache(folder).entries() if e.get("fingerprint") == fingerprint]
        if checkpoint and os.path.isfile(checkpoint):
            from ..models.file_digest import file_sha256

            sha = file_sha256(checkpoint)
            found = [e for e in found if e.get("checkpoint_sha256") == sha]
        if not found:
            raise SegError(f"The cache {folder} holds no embeddings of {os.path.basename(source.path)} for this model; "
                           "encode the raster first (seg encode --cache).")
        models = {(e["model_id"], e["checkpoint_sha256"]) for e in found}
        if len(models) > 1:
            raise SegError(f"The cache {folder} holds embeddings of several models for this raster; name one with --checkpoint.")
        model_id, sha = models.pop()
        return cls(folder, found, model_id, sha)

    def extend_recipe(self, recipe: FeatureRecipe, source, components: int = COMPONENTS, sample: int = 20_000) -> FeatureRecipe:
        """Fit the principal components on cells of (up to 16 of) the raster's tiles and add them
        to `recipe`."""
        rng = np.random.default_rng(0)
        picked = [self.entries[i] for i in sorted(rng.choice(len(self.entries), min(16, len(self.entries)), replace=False))]
        cells = np.concatenate([self._raw(e).reshape(256, -1).T for e in picked])
        if len(cells) > sample:
            cells = cells[rng.choice(len(cells), sample, replace=False)]
        mean = cells.mean(axis=0)
        _, _, vt = np.linalg.svd(cells - mean, full_matrices=False)
        embedding = {"model_id": self.model_id, "checkpoint_sha256": self.checkpoint_sha256,
                     "mean": [float(v) for v in mean], "components": [[float(v) for v in row] for row in vt[:components]]}
        recipe = replace(recipe, embedding=embedding)
        self.use_recipe(recipe)
        return recipe

    def use_recipe(self, recipe: FeatureRecipe) -> None:
        spec = recipe.embedding
        if not spec:
            raise SegError("This model was trained without SAM embedding features; leave out --cache.")
        if spec["checkpoint_sha256"] != self.checkpoint_sha256:
            raise SegError(f"The model's SAM features come from checkpoint {spec['checkpoint_sha256'][:12]}, "
                           f"the cache's from {self.checkpoint_sha256[:12]}; encode the raster with the same checkpoint.")
        self.mean = np.asarray(spec["mean"], np.float32)
        self.components = np.asarray(spec["components"], np.float32)
        self._grids.clear()

    def window_features(self, window: Tuple[int, int, int, int]) -> np.ndarray:
        """float32 (components, h, w) for the full-resolution window (col, row, width, height)."""
        import cv2

        col, row, width, height = window
        out = np.zeros((len(self.components), height, width), np.float32)
        depth = np.full((height, width), -np.inf, np.float32)
        ys, xs = np.mgrid[row:row + height, col:col + width].astype(np.float32) + 0.5
        for entry in self.entries:
            c, r, w, h = json.loads(entry["window"])
            if c >= col + width or r >= row + height or c + w <= col or r + h <= row:
                continue
            inside = np.minimum(np.minimum(xs - c, c + w - xs), np.minimum(ys - r, r + h - ys))
            better = inside > depth
            if not better.any():
                continue
            grid = self._projected(entry)
            info = json.loads(entry["embedding"])
            th, tw = info["image_size"]
            h_in, w_in = info["meta"]["input_size"]
            map_x = ((xs - c) * (tw / w) * (w_in / tw) / CELL - 0.5).astype(np.float32)
            map_y = ((ys - r) * (th / h) * (h_in / th) / CELL - 0.5).astype(np.float32)
            for k, plane in enumerate(grid):
                sampled = cv2.remap(plane, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                out[k][better] = sampled[better]
            depth[better] = inside[better]
        if np.isinf(depth).any():
            raise SegError(f"The embedding cache does not cover the window {window}; encode the whole raster (seg encode).")
        return out

    def _projected(self, entry: dict) -> np.ndarray:
        name = entry["file"]
        if name not in self._grids:
            raw = self._raw(entry)
            grid = (self.components @ (raw.reshape(256, -1) - self.mean[:, None])).reshape(len(self.components), *raw.shape[1:])
            self._grids[name] = np.ascontiguousarray(grid, np.float32)
        return self._grids[name]

    def _raw(self, entry: dict) -> np.ndarray:
        from safetensors.numpy import load_file

        arrays = load_file(os.path.join(self.folder, entry["file"]))
        if "features" not in arrays:
            raise SegError(f"The cache entry {entry['file']} holds no SAM image embedding (classic backend?).")
        return arrays["features"].astype(np.float32)[0]
