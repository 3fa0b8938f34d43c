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

from ..models.backend import Embedding, TilePrompt, stability_score


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
    """One mask per point (the best of SAM's three candidates)."""
    if _is_sam(backend):
        return _decode_sam_batches(backend, embedding, points, batch)
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


def _is_sam(backend) -> bool:
    return hasattr(backend, "model") and hasattr(getattr(backend, "model"), "mask_decoder")


def _decode_sam_batches(backend, embedding: Embedding, points: np.ndarray, batch: int) -> List[TileMask]:
    import torch
    import torch.nn.functional as F

    model, dev = backend.model, backend.device
    h, w = embedding.image_size
    h_in, w_in = embedding.meta["input_size"]
    sx, sy = w_in / w, h_in / h
    size = model.image_encoder.img_size
    out: List[TileMask] = []
    with torch.inference_mode():
        features = torch.from_numpy(np.ascontiguousarray(embedding.arrays["features"])).float().to(dev)
        image_pe = model.prompt_encoder.get_dense_pe()
        for start in range(0, len(points), batch):
            chunk = points[start:start + batch]
            coords = torch.as_tensor(chunk * (sx, sy), dtype=torch.float32, device=dev)[:, None, :]
            labels = torch.ones((len(chunk), 1), dtype=torch.int, device=dev)
            sparse, dense = model.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
            low_res, iou = model.mask_decoder(image_embeddings=features, image_pe=image_pe, sparse_prompt_embeddings=sparse,
                                              dense_prompt_embeddings=dense, multimask_output=True)
            best = torch.argmax(iou, dim=1)
            chosen = low_res[torch.arange(len(chunk)), best][:, None]
            up = F.interpolate(chosen, (size, size), mode="bilinear", align_corners=False)[..., :h_in, :w_in]
            if (h_in, w_in) != (h, w):
                up = F.interpolate(up, (h, w), mode="bilinear", align_corners=False)
            logits = up[:, 0].float().cpu().numpy()
            scores = iou[torch.arange(len(chunk)), best].float().cpu().numpy()
            for k, (x, y) in enumerate(chunk):
                out.append(TileMask(logits[k] > 0, float(scores[k]), stability_score(logits[k]), (float(x), float(y))))
    return out
