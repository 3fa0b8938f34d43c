"""The model-session interface every backend implements, and the values that cross it.

A session has one expensive step, `encode` (the image encoder: seconds on a CPU), and one cheap
step, `decode` (prompt -> mask: milliseconds). Encode each tile once, then decode as many prompts
as the user clicks. All coordinates here are tile pixels: x = column, y = row, in SAM's index
convention (the centre of pixel (i, j) is at (i, j)).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Optional, Protocol, Tuple

import numpy as np


@dataclass(frozen=True)
class TilePrompt:
    """Prompts in one tile's pixel coordinates.

    points: float32 (N, 2) of (x, y); labels: int32 (N,), 1 = object, 0 = background;
    box: (x0, y0, x1, y1) or None; mask_input: float32 (1, 256, 256) low-resolution logits of a
    previous prediction on the same tile (refinement) or None.
    """

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    box: Optional[Tuple[float, float, float, float]] = None
    mask_input: Optional[np.ndarray] = None

    @property
    def is_empty(self) -> bool:
        return len(self.points) == 0 and self.box is None


@dataclass
class Embedding:
    """What `encode` produced for one tile image of `image_size` = (height, width) pixels.

    arrays: named arrays the backend needs to decode (SAM: "features", float (1, 256, 64, 64));
    meta: small JSON-able facts (input size after resizing, ...).
    """

    image_size: Tuple[int, int]
    arrays: Dict[str, np.ndarray]
    meta: Dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class MaskPrediction:
    """One mask for one tile: mask bool (H, W); probability float32 (H, W) in [0, 1];
    score = the model's own quality estimate (SAM: predicted IoU); stability = IoU of the mask
    thresholded a little above and below its decision boundary (1 = crisp edges);
    low_res_logits float32 (1, 256, 256) to feed back as `TilePrompt.mask_input`, or None."""

    mask: np.ndarray
    probability: np.ndarray
    score: float
    stability: float
    low_res_logits: Optional[np.ndarray] = None


POINTS, BOXES, MASKS, AUTOMATIC, BATCHED = "points", "boxes", "masks", "automatic", "batched"


class Backend(Protocol):
    """A model session. `model_id` names the model (e.g. "sam-vit_b", "classic-grabcut");
    `checkpoint_sha256` is None for weights-free backends; `cacheable` says whether embeddings
    are worth keeping on disk; `capabilities` says what it can do, so callers never guess:
    POINTS and BOXES (prompt kinds), MASKS (a previous mask as a prompt), AUTOMATIC (reliable
    enough for a point grid over a whole tile), BATCHED (`decode_points` decodes many single-point
    prompts in one pass)."""

    model_id: str
    checkpoint_sha256: Optional[str]
    cacheable: bool
    capabilities: FrozenSet[str]

    def encode(self, image: np.ndarray) -> Embedding:
        """image: uint8 (H, W, 3), already band-mapped and stretched."""
        ...

    def decode(self, embedding: Embedding, prompt: TilePrompt, multimask: Optional[bool] = None) -> MaskPrediction:
        """multimask None chooses for you: three candidates for one lone click (ambiguous: a
        roof or the whole building?), one mask for richer prompts. The best-scoring mask is kept."""
        ...

    def close(self) -> None:
        """Release the model (memory, GPU); the session is not used afterwards."""
        ...


def model_frame(embedding: Embedding, prompt: TilePrompt, multimask: Optional[bool]) -> Tuple[bool, float, float]:
    """What every SAM-style decode starts with: refuse an empty prompt, choose `multimask` when the
    caller did not (three candidates for one lone click), and the scale (sx, sy) from tile pixels to
    the model's resized input frame."""
    from ..errors import PromptError

    if prompt.is_empty:
        raise PromptError("The prompt is empty for this tile; give at least one point or a box.")
    if multimask is None:
        multimask = len(prompt.points) == 1 and prompt.box is None and prompt.mask_input is None
    (h, w), (h_in, w_in) = embedding.image_size, embedding.meta["input_size"]
    return multimask, w_in / w, h_in / h


def stability_score(logits: np.ndarray, threshold: float = 0.0, offset: float = 1.0) -> float:
    """IoU of (logits > threshold + offset) and (logits > threshold - offset), as in SAM."""
    high = np.count_nonzero(logits > threshold + offset)
    low = np.count_nonzero(logits > threshold - offset)
    return float(high / low) if low else 0.0
