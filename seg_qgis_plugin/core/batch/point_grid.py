"""Automatic mask generation on one tile: a regular grid of point prompts, decoded in batches,
filtered and de-duplicated.

This is SAM's "segment everything" recipe, restricted to one tile so memory follows the tile: a
grid of n x n positive points (n = points_per_side) is decoded against the tile's embedding; each
point keeps its best-scoring mask; masks with a low predicted IoU or unstable edges are dropped,
and masks overlapping a better one by more than `nms_iou` (mask IoU) are dropped too.

Cost: one decoder pass per point. SAM decodes the points of a tile in batches of `batch` (one
prompt-encoder and mask-decoder call per batch); other backends are called point by point. Peak
memory is about batch x tile pixels x 5 bytes (logits and mask).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ..models.backend import BATCHED, Embedding, TilePrompt


@dataclass
class TileMask:
    """One candidate object on a tile: mask bool (h, w) in tile pixels, the model's score and
    stability, and the grid point (x, y) that produced it."""

    mask: np.ndarray
    score: float
    stability: float
    point: tuple


def grid_points(height: int, width: int, points_per_side: int, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """float32 (N, 2) points (x, y) in tile pixels (SAM's convention: pixel centre at its index),
    at the centres of an n x n grid of cells; points on invalid pixels are dropped."""
    n = int(points_per_side)
    xs = (np.arange(n) + 0.5) * width / n - 0.5
    ys = (np.arange(n) + 0.5) * height / n - 0.5
    points = np.array([(x, y) for y in ys for x in xs], np.float32).reshape(-1, 2)
    if valid is not None and len(points):
        cols = np.clip(np.rint(points[:, 0]).astype(int), 0, width - 1)
        rows = np.clip(np.rint(points[:, 1]).astype(int), 0, height - 1)
        points = points[valid[rows, cols]]
    return points


def decode_points(backend, embedding: Embedding, points: np.ndarray, batch: int = 16) -> List[TileMask]:
    """One mask per point (the best of the backend's candidates); in batches where the backend
    decodes many points in one pass."""
    if BATCHED in backend.capabilities:
        return [TileMask(mask, score, stability, (float(x), float(y)))
                for (x, y), (mask, score, stability) in zip(points, backend.decode_points(embedding, points, batch))]
    out = []
    for x, y in points:
        prompt = TilePrompt(points=np.array([[x, y]], np.float32), labels=np.ones(1, np.int32))
        pred = backend.decode(embedding, prompt, True)
        out.append(TileMask(pred.mask, float(pred.score), float(pred.stability), (float(x), float(y))))
    return out


def filter_masks(masks: List[TileMask], min_score: float, min_stability: float, nms_iou: float,
                 valid: Optional[np.ndarray] = None, min_pixels: int = 1) -> List[TileMask]:
    """Drop weak masks, clip to valid pixels, then greedy non-maximum suppression by mask IoU
    (best score first)."""
    kept: List[TileMask] = []
    candidates = [m for m in masks if m.score >= min_score and m.stability >= min_stability]
    for m in sorted(candidates, key=lambda m: -m.score):
        mask = m.mask & valid if valid is not None else m.mask
        area = int(np.count_nonzero(mask))
        if area < min_pixels:
            continue
        if any(_iou(mask, k.mask) > nms_iou for k in kept):
            continue
        kept.append(TileMask(mask, m.score, m.stability, m.point))
    return kept


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.count_nonzero(a & b)
    if not inter:
        return 0.0
    return inter / np.count_nonzero(a | b)
