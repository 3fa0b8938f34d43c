"""How an object looks on one date, under that raster's fixed radiometry (decision.py compares
looks across dates).

An object's signature is how it stands out from its surroundings: the mean stretched colour inside
it minus the mean colour of a ring around it (a 3-vector), divided by the ring's own spread (its
pooled standard deviation). Haze, a change of gain or of stretch is close to an affine change of the
local values, which scales contrast and spread alike, so the signature keeps its length and
direction; an object that is gone (a dried pond, a demolished roof) no longer stands out, or stands
out in another way. Reads are windows around the object,
decimated to at most `max_side` pixels, so cost does not grow with the raster.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from affine import Affine

MIN_CONTRAST = 2.0       # below this (ring spreads) an object does not stand out enough to judge its look


@dataclass(frozen=True)
class Look:
    """inside, ring: mean stretched colour float64 (3,) of the object and of a ring around it;
    spread: the ring's pooled standard deviation (0..255 units), ring_std: per band (3,); valid:
    share of the object's pixels that hold data (0..1)."""

    inside: np.ndarray
    ring: np.ndarray
    valid: float
    spread: float = 0.0
    ring_std: Optional[np.ndarray] = None

    @property
    def contrast(self) -> np.ndarray:
        """How the object stands out, in ring spreads (a quantisation step is the least spread)."""
        return (self.inside - self.ring) / max(self.spread, 1.0)


def footprint(source):
    """The raster's extent as a shapely polygon in its own CRS."""
    from shapely.geometry import box

    t = source.transform
    x0, y1 = t * (0, 0)
    x1, y0 = t * (source.width, source.height)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def pixel_window(source, bounds: Tuple[float, float, float, float], pad: float = 0.0) -> Optional[Tuple[int, int, int, int]]:
    """Map bounds (raster CRS) -> pixel window (col, row, width, height) grown by `pad` pixels and
    clipped to the raster; None when nothing is left."""
    inverse = ~source.transform
    xs, ys = zip(*(inverse * (x, y) for x in (bounds[0], bounds[2]) for y in (bounds[1], bounds[3])))
    c0, c1 = int(np.floor(min(xs) - pad)), int(np.ceil(max(xs) + pad))
    r0, r1 = int(np.floor(min(ys) - pad)), int(np.ceil(max(ys) + pad))
    c0, r0, c1, r1 = max(c0, 0), max(r0, 0), min(c1, source.width), min(r1, source.height)
    if c1 <= c0 or r1 <= r0:
        return None
    return c0, r0, c1 - c0, r1 - r0


def stretched(source, radiometry, window: Tuple[int, int, int, int], max_side: int = 512):
    """The window under the raster's fixed radiometry, unclipped (a bright roof keeps its
    brightness above the stretch's top): float32 (h, w, 3), valid bool (h, w) and the affine of
    those pixels (decimated to at most max_side on the longer side)."""
    col, row, width, height = window
    factor = max(1.0, max(width, height) / max_side)
    shape = (max(1, round(height / factor)), max(1, round(width / factor)))
    data, valid = source.read(radiometry.bands, window, out_shape=shape)
    transform = source.transform * Affine.translation(col, row) * Affine.scale(width / shape[1], height / shape[0])
    return radiometry.scale(data).transpose(1, 2, 0), valid, transform


def look(source, radiometry, geometry, max_side: int = 512) -> Optional[Look]:
    """The object's look on this raster; `geometry` is shapely in the raster's CRS. None when
    the object misses the raster."""
    import cv2
    from rasterio.features import rasterize

    pixel = abs(source.transform.a)
    side = np.sqrt(max(geometry.area, pixel * pixel)) / pixel
    ring_px = max(3.0, 0.25 * side)
    window = pixel_window(source, geometry.bounds, pad=ring_px + 2)
    if window is None:
        return None
    image, valid, transform = stretched(source, radiometry, window, max_side)
    inside = rasterize([geometry], out_shape=valid.shape, transform=transform, all_touched=False).astype(bool)
    if not inside.any():
        return None
    step = max(1, int(round(ring_px * valid.shape[1] / window[2])))
    grown = cv2.dilate(inside.astype(np.uint8), np.ones((2 * step + 1, 2 * step + 1), np.uint8)) > 0
    ring = grown & ~inside & valid
    core = inside & valid
    share = float(core.sum() / inside.sum())
    if not core.any() or not ring.any():
        return Look(np.zeros(3), np.zeros(3), share)
    pixels = image.reshape(-1, 3).astype(np.float64)
    around = pixels[ring.ravel()]
    variance = around.var(axis=0)
    return Look(pixels[core.ravel()].mean(axis=0), around.mean(axis=0), share, float(np.sqrt(variance.mean())), np.sqrt(variance))


def points_that_still_match(source, radiometry, points: Sequence[Tuple[float, float]], before: Optional[Look],
                            here: Optional[Look]) -> list:
    """Of `points` (raster CRS), those whose colour on this raster still stands out the way the
    object did: (colour - ring here), projected on the earlier contrast's direction, reaches half
    the contrast expected here (the earlier signature times this date's ring spread). Interior
    points of an object that moved fall on background and are dropped."""
    if before is None or here is None or np.linalg.norm(before.contrast) < MIN_CONTRAST:
        return list(points)
    strength = float(np.linalg.norm(before.contrast))
    unit = before.contrast / strength
    expected = strength * max(here.spread, 1.0)
    kept = []
    inverse = ~source.transform
    for x, y in points:
        c, r = inverse * (x, y)
        window = (int(c) - 1, int(r) - 1, 3, 3)
        if window[0] < 0 or window[1] < 0 or window[0] + 3 > source.width or window[1] + 3 > source.height:
            continue
        data, valid = source.read(radiometry.bands, window)
        if not valid.any():
            continue
        colour = radiometry.apply(data, valid).reshape(-1, 3)[valid.ravel()].mean(axis=0)
        if float(np.dot(colour - here.ring, unit)) >= 0.5 * expected:
            kept.append((x, y))
    return kept
