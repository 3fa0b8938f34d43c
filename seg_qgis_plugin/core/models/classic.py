"""A weights-free backend: classic interactive segmentation behind the SAM session interface.

`ClassicBackend` lets the whole product run with no model download. It segments one object per
prompt with OpenCV GrabCut (colour Gaussian mixtures + graph cut) or, optionally, scikit-image's
random walker. Neither needs an image encoder, so `encode` only keeps the image (and a smoothed
CIE-Lab copy); all the work happens in `decode`.

How a prompt becomes a mask:

- The work happens in a region of interest (ROI), not on the whole tile: a box prompt uses the box
  plus a margin; points alone start with a window of `2 * point_radius` pixels around them, and the
  window doubles while the mask touches its inner edges (an object bigger than the window is not
  cut). The ROI is resampled so its longer side is `max_side` pixels (small objects are upsampled
  up to 4x, so OpenCV's fixed smoothness cost does not swallow them; big ROIs are downscaled,
  which bounds the cost): 0.1-1 s per prompt on 2 CPU cores, most of it in GrabCut.
- GrabCut can collapse onto its hard seeds when object and background colours overlap; then the
  initial region (the box, or the pixels most like the clicked colour) is kept instead.
- Box: outside the box is background, inside is "probably object". Positive points are object,
  negative points are background (small disks of hard seeds).
- Points only: the connected component(s) of the mask holding the positive points are kept.
  Box: the mask is clipped to the box.

The soft `probability` is a real per-pixel estimate, not a blurred mask: the log-likelihood ratio
of object vs background colour (3-D Lab histograms fitted on the segmentation) plus the graph-cut
decision, smoothed; pixels outside the kept object are pushed below 0.5, so
`mask == (probability > 0.5)` holds everywhere.

The score is not the mean probability (a graph cut is always sure of itself: 0.8-0.96 whatever
the mask) but a confidence judged from the mask and the image, see `classic_score`.
"""
from __future__ import annotations

import warnings
from typing import Optional, Tuple

import numpy as np

from ..errors import PromptError
from .backend import BOXES, POINTS, Embedding, MaskPrediction, TilePrompt, stability_score
from .classic_score import mask_confidence

_METHODS = ("grabcut", "randomwalker")


class ClassicBackend:
    """A model session with no weights. Cheap `encode`, a few hundred ms per `decode`.

    method: "grabcut" (default; best mean IoU on our labelled data, see bench/bench_classic.py)
    or "randomwalker" (needs scikit-image; weaker, see the bench). max_side: the ROI is resampled
    to this many pixels on its longer side (smaller = faster, coarser edges). point_radius:
    half-size in tile pixels of the first window around a points-only prompt. iterations:
    GrabCut iterations. beta: random-walker edge sensitivity.
    """

    checkpoint_sha256: Optional[str] = None
    cacheable: bool = False
    capabilities = frozenset({POINTS, BOXES})  # one object per prompt: no automatic grid

    def __init__(self, method: str = "grabcut", max_side: int = 384, point_radius: int = 96,
                 iterations: int = 3, beta: float = 130.0):
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, not {method!r}.")
        self.method = method
        self.model_id = f"classic-{method}"
        self.max_side = int(max_side)
        self.point_radius = int(point_radius)
        self.iterations = int(iterations)
        self.beta = float(beta)

    # ------------------------------------------------------------------ encode
    def close(self) -> None:
        pass  # nothing held

    def encode(self, image: np.ndarray) -> Embedding:
        """image: uint8 (H, W, 3) RGB. Returns arrays {"lab": uint8 (H, W, 3)}: the image lightly
        smoothed (3x3 Gaussian, against sensor noise and JPEG blocks) in OpenCV's 8-bit Lab."""
        import cv2

        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}.")
        smooth = cv2.GaussianBlur(np.ascontiguousarray(image), (3, 3), 0)
        lab = cv2.cvtColor(smooth, cv2.COLOR_RGB2LAB)
        return Embedding(image_size=image.shape[:2], arrays={"lab": lab},
                         meta={"model_id": self.model_id})

    # ------------------------------------------------------------------ decode
    def decode(self, embedding: Embedding, prompt: TilePrompt,
               multimask: Optional[bool] = None) -> MaskPrediction:
        """Segment one object. Returns mask bool (H, W), probability float32 (H, W) in [0, 1],
        score = `classic_score.mask_confidence` (with a box: the geometric mean of the outline on
        image edges, the share of the box filled and reached, the agreement with a second cut from
        a smaller box and the cut's certainty; points: the certainty; 0 for an empty mask), stability from
        `stability_score` on the logit map, low_res_logits None.

        `multimask` is accepted for interface compatibility and ignored: a classic method gives
        one mask. `prompt.mask_input` is ignored too."""
        lab = embedding.arrays["lab"]
        height, width = lab.shape[:2]
        points, labels, box = _validated(prompt, height, width)
        positives = points[labels == 1]

        if box is not None:
            roi, logit = self._segment_box(lab, points, labels, box, self.max_side)
        else:
            radius = self.point_radius
            while True:
                xs, ys = positives[:, 0], positives[:, 1]
                roi = _clip_roi(int(xs.min()) - radius, int(ys.min()) - radius,
                                int(xs.max()) + radius, int(ys.max()) + radius, height, width)
                logit = self._segment_roi(lab, roi, points, labels, None)
                keep = _components_at(logit > 0, positives, roi)
                logit = np.where(keep, logit, -np.abs(logit))
                if not _touches_inner_edge(keep, roi, height, width):
                    break
                radius *= 2

        full = np.full((height, width), -8.0, np.float32)
        r0, c0, r1, c1 = roi
        full[r0:r1, c0:c1] = logit
        mask = full > 0
        if box is None:
            mask = _components_at(mask, positives, (0, 0, height, width))
            full = np.where(mask, full, np.minimum(full, 0.0)).astype(np.float32)
        probability = (1.0 / (1.0 + np.exp(-full))).astype(np.float32)
        agreement = None if box is None else self._agreement(lab, points, labels, box, mask)
        score = mask_confidence(lab, mask, box, probability=probability, agreement=agreement)
        return MaskPrediction(mask=mask, probability=probability, score=score,
                              stability=stability_score(full), low_res_logits=None)

    # ------------------------------------------------------------------ internals
    def _segment_box(self, lab, points, labels, box, max_side):
        """(roi, logits at ROI size) for a box prompt: the box plus a quarter margin."""
        height, width = lab.shape[:2]
        x0, y0, x1, y1 = box
        margin = max(8, int(0.25 * max(x1 - x0 + 1, y1 - y0 + 1)))
        roi = _clip_roi(x0 - margin, y0 - margin, x1 + margin, y1 + margin, height, width)
        for x, y in points:  # every clicked point lies inside the ROI
            roi = _union_roi(roi, _clip_roi(int(x) - 4, int(y) - 4, int(x) + 4, int(y) + 4, height, width))
        return roi, self._segment_roi(lab, roi, points, labels, box, max_side)

    def _agreement(self, lab, points, labels, box, mask) -> float:
        """IoU of `mask` with a second, coarser cut from the box shrunk by 8 % on each side. A
        well-cut object stays put; a cut that followed the box (or a chance colour split) moves."""
        x0, y0, x1, y1 = box
        dx, dy = round(0.08 * (x1 - x0 + 1)), round(0.08 * (y1 - y0 + 1))
        inner = (x0 + dx, y0 + dy, max(x0 + dx, x1 - dx), max(y0 + dy, y1 - dy))
        (r0, c0, r1, c1), logit = self._segment_box(lab, points, labels, inner, self.max_side // 2)
        second = np.zeros_like(mask)
        second[r0:r1, c0:c1] = logit > 0
        union = np.count_nonzero(mask | second)
        return float(np.count_nonzero(mask & second) / union) if union else 0.0

    def _segment_roi(self, lab, roi, points, labels, box, max_side=None) -> np.ndarray:
        """Segment inside roi = (row0, col0, row1, col1) of lab; returns float32 logits at ROI size."""
        import cv2

        r0, c0, r1, c1 = roi
        crop = lab[r0:r1, c0:c1]
        h, w = crop.shape[:2]
        # A fixed working size makes the graph cut's smoothness cost scale-free: small objects are
        # upsampled (up to 4x) so their boundary does not outweigh their area.
        scale = min(4.0, (max_side or self.max_side) / max(h, w))
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(crop, (sw, sh), interpolation=interpolation) if scale != 1 else crop
        sy, sx = sh / h, sw / w

        def to_small(x, y):
            return (x - c0 + 0.5) * sx - 0.5, (y - r0 + 0.5) * sy - 0.5

        seeds = np.zeros((sh, sw), np.uint8)  # 0 unknown, 1 object, 2 background
        inside = None
        if box is not None:
            bx0, by0 = to_small(box[0] - 0.5, box[1] - 0.5)
            bx1, by1 = to_small(box[2] + 0.5, box[3] + 0.5)
            bx0, by0 = max(0, int(np.floor(bx0 + 0.5))), max(0, int(np.floor(by0 + 0.5)))
            bx1, by1 = min(sw - 1, max(bx0, int(np.ceil(bx1 - 0.5)))), min(sh - 1, max(by0, int(np.ceil(by1 - 0.5))))
            inside = np.zeros((sh, sw), bool)
            inside[by0:by1 + 1, bx0:bx1 + 1] = True
            seeds[~inside] = 2
        seed_radius = max(1, round(2 * min(sx, sy) + 1))
        for (x, y), lab_ in zip(points, labels):
            px, py = to_small(float(x), float(y))
            centre = (int(round(px)), int(round(py)))
            if lab_ == 0:  # a negative click removes the uniform region around it, not only a dot
                seeds[(_uniform_region(small, centre)) & (seeds != 1)] = 2
            cv2.circle(seeds, centre, seed_radius, 1 if lab_ == 1 else 2, -1)

        if self.method == "grabcut":
            logit_small = _grabcut_logits(small, seeds, inside, self.iterations)
        else:
            logit_small = _random_walker_logits(small, seeds, inside, self.beta)
        if inside is not None:
            logit_small = np.where(inside, logit_small, -np.abs(logit_small) - 1.0)
        if scale != 1:
            return cv2.resize(logit_small, (w, h), interpolation=cv2.INTER_AREA if scale > 1 else cv2.INTER_LINEAR)
        return logit_small


def _grabcut_logits(lab: np.ndarray, seeds: np.ndarray, inside: Optional[np.ndarray],
                    iterations: int) -> np.ndarray:
    """GrabCut on uint8 (h, w, 3) Lab with seeds (1 object, 2 background). Returns float32 (h, w)
    logits: colour log-likelihood ratio (Lab histograms fitted on the cut) + the cut's decision,
    Gaussian-smoothed."""
    import cv2

    gc = np.full(seeds.shape, cv2.GC_PR_BGD, np.uint8)
    if inside is not None:
        gc[inside] = cv2.GC_PR_FGD
    elif (seeds == 1).any():  # points only: start from the region grown from the clicks
        region = _grown_region(lab, seeds == 1) & (seeds != 2)
        if region.mean() > 0.9:  # the object fills the window: there is nothing to cut against
            return np.where(region | (seeds == 1), 4.0, -4.0).astype(np.float32)
        gc[region] = cv2.GC_PR_FGD
    gc[seeds == 1] = cv2.GC_FGD
    gc[seeds == 2] = cv2.GC_BGD
    initial = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    cut = initial
    if initial.any() and (~initial).any():
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # GrabCut's k-means starts from OpenCV's global RNG: the same prompt, the same mask
        cv2.grabCut(np.ascontiguousarray(lab), gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        cut = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
        if np.count_nonzero(cut & (seeds != 1)) < 0.05 * np.count_nonzero(initial):
            cut = initial  # the cut collapsed onto the seeds: OpenCV's fixed smoothness won
    llr = _colour_llr(lab, cut)
    logit = 0.5 * llr + np.where(cut, 2.0, -2.0).astype(np.float32)
    sigma = max(0.8, 0.004 * max(lab.shape[:2]))
    return cv2.GaussianBlur(logit, (0, 0), sigma)


def _random_walker_logits(lab: np.ndarray, seeds: np.ndarray, inside: Optional[np.ndarray],
                          beta: float) -> np.ndarray:
    """scikit-image random walker on uint8 (h, w, 3) Lab. Points-only prompts get background
    seeds where the colour is far from the object seeds (the most distant 30 %). Returns float32
    (h, w) logits of the object probability."""
    import cv2
    from skimage.segmentation import random_walker

    seeds = seeds.copy()
    if not (seeds == 2).any():
        seeds[(_colour_distance(lab, seeds == 1) > 0.7) & (seeds == 0)] = 2
    if not (seeds == 1).any() and inside is not None:  # box only: the box centre is object
        rows, cols = np.nonzero(inside)
        cy, cx = int(rows.mean()), int(cols.mean())
        cv2.circle(seeds, (cx, cy), max(1, int(0.1 * min(np.ptp(rows), np.ptp(cols)))), 1, -1)
    data = lab.astype(np.float32) / 255.0
    with warnings.catch_warnings():  # a loose tolerance can step a little outside [0, 1]: clipped
        warnings.simplefilter("ignore", UserWarning)
        prob = random_walker(data, seeds.astype(np.int32), beta=beta, mode="cg_j", tol=1e-3,
                             channel_axis=-1, return_full_prob=True)[0]
    prob = np.clip(prob, 1e-4, 1 - 1e-4)
    return np.log(prob / (1 - prob)).astype(np.float32)


def _uniform_region(lab: np.ndarray, seed: Tuple[int, int], tolerance: int = 10) -> np.ndarray:
    """bool (h, w): pixels flood-filled from seed = (x, y) through neighbours within `tolerance`
    Lab units; empty when the fill leaks over more than a quarter of the image."""
    import cv2

    h, w = lab.shape[:2]
    x, y = min(max(seed[0], 0), w - 1), min(max(seed[1], 0), h - 1)
    fill = np.zeros((h + 2, w + 2), np.uint8)
    cv2.floodFill(np.ascontiguousarray(lab), fill, (x, y), 0, (tolerance,) * 3, (tolerance,) * 3,
                  4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    region = fill[1:-1, 1:-1] > 0
    return region if region.sum() <= 0.25 * h * w else np.zeros_like(region)


def _grown_region(lab: np.ndarray, seeds: np.ndarray, tolerance: int = 12) -> np.ndarray:
    """bool (h, w): pixels reached from the seed pixels through 4-neighbours whose Lab colour
    differs from the seed's by at most `tolerance` per channel (a magic wand). A fixed range, not
    a floating one: on textured imagery a floating range leaks across the whole window (measured
    with bench/bench_classic.py: mean point IoU 0.11 floating, 0.29 fixed)."""
    import cv2

    h, w = lab.shape[:2]
    fill = np.zeros((h + 2, w + 2), np.uint8)
    image = np.ascontiguousarray(lab)
    for y, x in zip(*np.nonzero(seeds)):
        if not fill[y + 1, x + 1]:
            cv2.floodFill(image, fill, (int(x), int(y)), 0, (tolerance,) * 3, (tolerance,) * 3,
                          4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8))
    return fill[1:-1, 1:-1] > 0


def _colour_distance(lab: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Lab distance of every pixel to the mean colour of `where`, as its rank in [0, 1]
    (0 = the most similar pixel); float32 (h, w)."""
    data = lab.reshape(-1, 3).astype(np.float32)
    dist = np.linalg.norm(data - data[where.ravel()].mean(axis=0), axis=1)
    rank = np.empty(dist.size, np.float32)
    rank[np.argsort(dist, kind="stable")] = np.linspace(0, 1, dist.size, dtype=np.float32)
    return rank.reshape(where.shape)


def _colour_llr(lab: np.ndarray, fg: np.ndarray, bins: int = 16) -> np.ndarray:
    """log p(colour | object) - log p(colour | background) per pixel, from 3-D histograms of
    `bins`^3 Lab cells with add-one smoothing; float32 (h, w) clipped to [-6, 6]."""
    q = (lab.astype(np.int32) * bins) // 256
    idx = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    n = bins ** 3
    h_fg = np.bincount(idx[fg], minlength=n).astype(np.float32) + 1.0
    h_bg = np.bincount(idx[~fg], minlength=n).astype(np.float32) + 1.0
    table = np.log(h_fg / h_fg.sum()) - np.log(h_bg / h_bg.sum())
    return np.clip(table[idx], -6.0, 6.0).astype(np.float32)


def _validated(prompt: TilePrompt, height: int, width: int):
    """Check a prompt against a (height, width) tile; returns points float (N, 2), labels int
    (N,), box as an integer pixel (x0, y0, x1, y1) inclusive or None."""
    if prompt.is_empty:
        raise PromptError("The prompt is empty: give at least one point or a box.")
    points = np.asarray(prompt.points, np.float64).reshape(-1, 2)
    labels = np.asarray(prompt.labels).reshape(-1)
    if len(labels) != len(points):
        raise PromptError(f"The prompt has {len(points)} points but {len(labels)} labels.")
    if not np.all(np.isin(labels, (0, 1))):
        raise PromptError("Point labels must be 1 (object) or 0 (background).")
    if len(points) and (np.any(points < -0.5) or np.any(points[:, 0] > width - 0.5)
                        or np.any(points[:, 1] > height - 0.5)):
        raise PromptError(f"A prompt point lies outside the {width} x {height} tile.")
    points = np.clip(np.rint(points), 0, [width - 1, height - 1])
    box = None
    if prompt.box is not None:
        x0, y0, x1, y1 = (float(v) for v in prompt.box)
        if x1 < x0 or y1 < y0:
            raise PromptError("The box must be (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1.")
        c0, r0 = max(0, int(np.floor(x0 + 0.5))), max(0, int(np.floor(y0 + 0.5)))
        c1, r1 = min(width - 1, int(np.ceil(x1 - 0.5))), min(height - 1, int(np.ceil(y1 - 0.5)))
        if c1 < c0 or r1 < r0:
            raise PromptError(f"The box lies outside the {width} x {height} tile.")
        box = (c0, r0, c1, r1)
    elif not np.any(labels == 1):
        raise PromptError("A prompt without a box needs at least one positive (object) point.")
    return points, labels, box


def _clip_roi(x0, y0, x1, y1, height, width) -> Tuple[int, int, int, int]:
    """Inclusive pixel bounds -> (row0, col0, row1, col1) half-open, clipped to the tile."""
    return max(0, int(y0)), max(0, int(x0)), min(height, int(y1) + 1), min(width, int(x1) + 1)


def _union_roi(a, b):
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _components_at(mask: np.ndarray, points: np.ndarray, roi) -> np.ndarray:
    """The 8-connected components of mask (ROI-sized, ROI origin roi[:2]) that hold any point."""
    import cv2

    count, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    ids = set()
    for x, y in points:
        r, c = int(y) - roi[0], int(x) - roi[1]
        if 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and comp[r, c]:
            ids.add(int(comp[r, c]))
    if not ids:
        return np.zeros_like(mask, bool)
    return np.isin(comp, list(ids))


def _touches_inner_edge(keep: np.ndarray, roi, height: int, width: int) -> bool:
    """True when the kept mask reaches an ROI edge that is not also the tile edge."""
    r0, c0, r1, c1 = roi
    return bool((r0 > 0 and keep[0].any()) or (r1 < height and keep[-1].any())
                or (c0 > 0 and keep[:, 0].any()) or (c1 < width and keep[:, -1].any()))
