"""How much to trust a classic (weights-free) mask, judged from the mask and the image alone.

A graph cut is always sure of itself: its mean probability was 0.80-0.96 whatever the mask, so it
could not rank masks. The confidence here uses cues a person checks, each in [0, 1]:

- edges: does the outline run along image edges? g = mean gradient magnitude (Sobel, Lab) on
  the outline / mean over a window around the mask; edges = g / (g + 1) (0.5: no sharper than
  the window on average).
- fill (box prompts): the share f of the box the mask covers; fill = min(1, f / FILL_LOW): a
  sliver of its box is doubtful.
- span (box prompts): s = the IoU of the mask's bounding box with the box; span = min(1, s /
  SPAN_FULL): an object reaches across most of its box, a part of it does not. Both box cues
  saturate early, so a deliberately loose box (propagation grows the last outline's box by a
  quarter on each side) is not taken for a bad mask.
- contrast (points only, no box to compare with): d = |mean colour inside - mean in a thin ring
  outside| / pooled standard deviation (Lab); contrast = d / (d + 1).

confidence = fill * span * (1 + 2 * edges) / 3 with a box, sqrt(contrast * edges) without one.

Measured with bench/bench_classic_score.py (boxes from the truth, through the engine), Spearman
of score vs IoU: SpaceNet Atlanta buildings 0.59 (old score -0.04; FILL_LOW, SPAN_FULL, the edge
weight and WINDOW_MARGIN were set by hand there); Swiss tree patches with pixel truth 0.30 (old
0.22); NEON crowns -0.20 (old -0.20): there the classic backend mostly returns the whole box, which
the box-only truth rates above most cut crowns, and the early saturation kept for loose boxes hides
the fill differences between the cut crowns. No cue we tried (stability, colour separation,
agreement with a second method, compactness) ranks tree masks well on both tree datasets. Colour
contrast is left out of box prompts: on both datasets the cut's usual failure is a high-contrast
part of the object (a shadow, the sunlit half of a crown), so contrast ranked masks the wrong way.
Nothing is fitted.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

CONTRAST_HALF = 1.0
FILL_LOW = 0.25
SPAN_FULL = 0.45
WINDOW_MARGIN = 40  # pixels around the mask and box where the edge cue takes its reference gradient


def mask_confidence(lab: np.ndarray, mask: np.ndarray, box: Optional[Tuple[int, int, int, int]] = None) -> float:
    """lab: uint8 (H, W, 3); mask: bool (H, W); box: inclusive pixel (x0, y0, x1, y1) or None.
    Returns the confidence in [0, 1] (0 for an empty mask); see the module docstring."""
    cues = mask_cues(lab, mask, box)
    if not cues:
        return 0.0
    if box is None:
        score = np.sqrt(cues["contrast"] * cues["edges"])
    else:
        score = cues["fill"] * cues["span"] * (1.0 + 2.0 * cues["edges"]) / 3.0
    return float(np.clip(score, 0.0, 1.0))


def mask_cues(lab: np.ndarray, mask: np.ndarray, box: Optional[Tuple[int, int, int, int]] = None) -> Dict[str, float]:
    """The cues of `mask_confidence`, each in [0, 1], by name ("contrast", "edges" and, with a
    box, "fill" and "span"); empty for an empty mask."""
    import cv2

    if not mask.any():
        return {}
    height, width = mask.shape
    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    if box is not None:
        r0, r1 = min(r0, box[1]), max(r1, box[3] + 1)
        c0, c1 = min(c0, box[0]), max(c1, box[2] + 1)
    area = len(rows)
    ring_width = int(np.clip(round(0.15 * np.sqrt(area / np.pi)), 2, 12))
    pad = max(2 * ring_width + 2, WINDOW_MARGIN)
    r0, c0 = max(0, r0 - pad), max(0, c0 - pad)
    r1, c1 = min(height, r1 + pad), min(width, c1 + pad)
    inside = np.ascontiguousarray(mask[r0:r1, c0:c1]).astype(np.uint8)
    colours = lab[r0:r1, c0:c1].astype(np.float32)

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring_width + 1, 2 * ring_width + 1))
    ring = (cv2.dilate(inside, kernel) > 0) & (inside == 0)
    cues = {"contrast": _contrast(colours, inside > 0, ring), "edges": _edge_cue(colours, inside)}
    if box is not None:
        fill = float(mask[box[1]:box[3] + 1, box[0]:box[2] + 1].mean())
        cues["fill"] = min(1.0, fill / FILL_LOW)
        cues["span"] = min(1.0, _box_iou((cols.min(), rows.min(), cols.max(), rows.max()), box) / SPAN_FULL)
    return cues


def _contrast(colours: np.ndarray, inside: np.ndarray, ring: np.ndarray) -> float:
    if not ring.any():  # the mask fills its whole window: nothing to tell it from
        return 0.0
    a, b = colours[inside], colours[ring]
    spread = np.sqrt(0.5 * (a.var(axis=0).sum() + b.var(axis=0).sum())) + 1.0
    d = float(np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)) / spread)
    return d / (d + CONTRAST_HALF)


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
