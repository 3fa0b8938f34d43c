"""How much to trust a classic (weights-free) mask, judged from the mask and the image alone.

A graph cut is always sure of itself: its mean probability was 0.80-0.96 whatever the mask, so
alone it could not rank box prompts. The confidence here uses cues a person checks, each in [0, 1]:

- edges: does the outline run along image edges? g = mean gradient magnitude (Sobel, Lab) on
  the outline / mean over a window around the mask; edges = g / (g + 1) (0.5: no sharper than
  the window on average).
- fill: the share f of the box the mask covers; fill = min(1, f / FILL_LOW): a sliver of its box
  is doubtful.
- span: s = the IoU of the mask's bounding box with the box; span = min(1, s / SPAN_FULL): an
  object reaches across most of its box, a part of it does not. Both box cues saturate early, so
  a deliberately loose box (propagation grows the last outline's box by a quarter on each side)
  is not taken for a bad mask.
- agreement: the IoU of the mask with a second, coarser cut from the box shrunk by 8 % on each
  side (computed by the backend). A cut that found the object stays put; one that followed the
  box, or split the object by chance colours, moves.
- certainty: the mean of 2p - 1 over the mask, p the cut's per-pixel probability (colour
  likelihood ratio + cut decision).

confidence = the geometric mean of the cues: all five with a box, certainty alone with clicks.
No cue has a weight; one that fails pulls the score down whatever the others say.

Measured with bench/bench_classic_score.py (prompts from the truth, through the engine), Spearman
of score vs IoU with the truth; box / loose box (each side 5-25 % further out) / one click:
SpaceNet Atlanta buildings 0.64 / 0.47 / 0.46, Swiss tree patches (pixel truth) 0.49 / 0.60 /
0.41, NEON crowns (box truth; IoU with the box's inscribed ellipse) -0.01 / 0.56 / 0.54. A NEON
box prompt is its truth box, so the box-only truth cannot tell a crown from a mask that is the
whole box. FILL_LOW, SPAN_FULL and WINDOW_MARGIN were set by hand on SpaceNet. The geometric mean
was chosen among a dozen products of these cues on these same data; the weighted product used
before reached 0.64 / 0.38 on SpaceNet, 0.43 / 0.42 on Swiss and 0.12 / 0.38 on NEON boxes / loose
boxes. Colour contrast with a ring outside the mask was tried and left out: the cut's usual failure
is a high-contrast part of the object (a shadow, the sunlit half of a crown), so contrast ranked
masks the wrong way.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

FILL_LOW = 0.25
SPAN_FULL = 0.45
WINDOW_MARGIN = 40  # pixels around the mask and box where the edge cue takes its reference gradient


def mask_confidence(lab: np.ndarray, mask: np.ndarray, box: Optional[Tuple[int, int, int, int]] = None,
                    probability: Optional[np.ndarray] = None, agreement: Optional[float] = None) -> float:
    """lab: uint8 (H, W, 3); mask: bool (H, W); box: inclusive pixel (x0, y0, x1, y1) or None;
    probability: float (H, W), needed without a box; agreement: see the module docstring (1 when
    not given). Returns the confidence in [0, 1] (0 for an empty mask)."""
    cues = mask_cues(lab, mask, box, probability, agreement)
    if not cues:
        return 0.0
    score = float(np.prod(list(cues.values()))) ** (1.0 / len(cues))
    return float(np.clip(score, 0.0, 1.0))


def mask_cues(lab: np.ndarray, mask: np.ndarray, box: Optional[Tuple[int, int, int, int]] = None,
              probability: Optional[np.ndarray] = None, agreement: Optional[float] = None) -> Dict[str, float]:
    """The cues of `mask_confidence`, each in [0, 1], by name: "edges", "fill", "span" and
    "agreement" with a box, "certainty" when probability is given; empty for an empty mask."""
    if not mask.any():
        return {}
    if box is None and probability is None:
        raise ValueError("A mask from points is judged by its probability: pass probability.")
    certainty = {} if probability is None else {"certainty": float(np.clip(2.0 * probability[mask].mean() - 1.0, 0.0, 1.0))}
    if box is None:
        return certainty
    height, width = mask.shape
    rows, cols = np.nonzero(mask)
    r0, r1 = min(rows.min(), box[1]), max(rows.max() + 1, box[3] + 1)
    c0, c1 = min(cols.min(), box[0]), max(cols.max() + 1, box[2] + 1)
    r0, c0 = max(0, r0 - WINDOW_MARGIN), max(0, c0 - WINDOW_MARGIN)
    r1, c1 = min(height, r1 + WINDOW_MARGIN), min(width, c1 + WINDOW_MARGIN)
    inside = np.ascontiguousarray(mask[r0:r1, c0:c1]).astype(np.uint8)
    fill = float(mask[box[1]:box[3] + 1, box[0]:box[2] + 1].mean())
    return {"edges": _edge_cue(lab[r0:r1, c0:c1].astype(np.float32), inside),
            "fill": min(1.0, fill / FILL_LOW),
            "span": min(1.0, _box_iou((cols.min(), rows.min(), cols.max(), rows.max()), box) / SPAN_FULL),
            "agreement": 1.0 if agreement is None else float(np.clip(agreement, 0.0, 1.0)), **certainty}


def _edge_cue(colours: np.ndarray, inside: np.ndarray) -> float:
    import cv2

    gx = cv2.Sobel(colours, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(colours, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.sqrt((gx ** 2 + gy ** 2).sum(axis=2))
    outline = (cv2.dilate(inside, np.ones((3, 3), np.uint8)) - cv2.erode(inside, np.ones((3, 3), np.uint8))) > 0
    if not outline.any():
        return 0.0
    g = float(magnitude[outline].mean() / (magnitude.mean() + 1e-6))
    return g / (g + 1.0)


def _box_iou(a, b) -> float:
    """IoU of two inclusive pixel boxes (x0, y0, x1, y1)."""
    overlap = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1) * max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - overlap
    return float(overlap / area) if area else 0.0
