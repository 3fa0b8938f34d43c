"""SAM's image frames in numpy (no torch): the input resized and padded for the encoder, and a
low-resolution mask brought back to the image.

SAM resizes a tile so its longer side is 1024 (`ResizeLongestSide`), normalises it and pads it to
1024 x 1024; the decoder answers 256 x 256 logits over that padded frame. `encoder_input`
reproduces torch's `F.interpolate(bilinear, antialias=True)` as two small weight matrices, so the
torch and ONNX backends see the same pixels and their embeddings can share a cache.
`MaskUpsampler` brings the chosen 256 x 256 logits back to (H, W) with bilinear interpolation
(align_corners=False, as `SamPredictor.postprocess_masks`), but only inside the rectangle where
the mask or its probability can matter; outside it every pixel is far below the decision boundary.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

PIXEL_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], np.float32)


def input_size(height: int, width: int, size: int = 1024) -> Tuple[int, int]:
    """SAM's ResizeLongestSide: the (h, w) an image is resized to before padding to `size`."""
    scale = size / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """float32 (n_out, n_in): antialiased bilinear resampling along one axis (a triangle filter
    widened by the scale when shrinking, weights normalised), as torch's antialias=True."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    lo = np.maximum((centres - support + 0.5).astype(np.int64), 0)
    hi = np.minimum((centres + support + 0.5).astype(np.int64), n_in)
    j = np.arange(n_in)[None, :]
    weights = np.maximum(0.0, 1.0 - np.abs((j - centres[:, None] + 0.5) / support))
    weights[(j < lo[:, None]) | (j >= hi[:, None])] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    return weights.astype(np.float32)


def encoder_input(image: np.ndarray, size: int = 1024) -> Tuple[np.ndarray, Tuple[int, int]]:
    """image uint8 (H, W, 3) -> float32 (1, 3, size, size) resized, normalised, zero-padded; and
    the (h_in, w_in) it was resized to."""
    h, w = image.shape[:2]
    h_in, w_in = input_size(h, w, size)
    x = image.astype(np.float32)
    if (h_in, w_in) != (h, w):
        x = (resize_matrix(h, h_in) @ x.reshape(h, w * 3)).reshape(h_in, w, 3)
        x = np.einsum("ow,hwc->hoc", resize_matrix(w, w_in), x, optimize=True)
    out = np.zeros((1, 3, size, size), np.float32)
    out[0, :, :h_in, :w_in] = ((x - PIXEL_MEAN) / PIXEL_STD).transpose(2, 0, 1)
    return out, (h_in, w_in)


class MaskUpsampler:
    """The chosen low-resolution logits (256, 256) over the padded `size` frame -> a mask over an
    image of `image_size` (H, W) that was resized to `input_size` (h_in, w_in).

    The logits are upsampled bilinearly (align_corners=False, as `SamPredictor.postprocess_masks`)
    with OpenCV, so the mask equals SamPredictor's. The sigmoid (the costly part: an exp per pixel)
    and the stability score are computed only inside the window that low-resolution logits above
    -crop_margin can reach: bilinear interpolation never exceeds its neighbours, so outside it every
    logit is below -crop_margin and the probability there is set to 0 (the exact value is below
    sigmoid(-16) = 1.1e-7: float32 rounding near 0). For a one-object click the window is a few percent of the tile.
    direct: the logits cover the image itself, unpadded (SAM 2 resizes to a square): upsample
    straight to (H, W), as `SAM2Transforms.postprocess_masks`.
    """

    def __init__(self, image_size: Tuple[int, int], input_size: Tuple[int, int], size: int = 1024, crop_margin: float = 16.0,
                 direct: bool = False):
        self.image_size, self.input_size, self.size, self.crop_margin = tuple(image_size), tuple(input_size), size, crop_margin
        self.direct = direct

    def logits(self, low_res: np.ndarray) -> np.ndarray:
        """low_res float32 (256, 256) -> logits float32 (H, W)."""
        import cv2

        h, w = self.image_size
        if self.direct:
            return cv2.resize(low_res, (w, h), interpolation=cv2.INTER_LINEAR)
        full = cv2.resize(low_res, (self.size, self.size), interpolation=cv2.INTER_LINEAR)[:self.input_size[0], :self.input_size[1]]
        if tuple(self.input_size) == (h, w):
            return full
        return cv2.resize(np.ascontiguousarray(full), (w, h), interpolation=cv2.INTER_LINEAR)

    def __call__(self, low_res: np.ndarray, score: float):
        """low_res float32 (256, 256) -> MaskPrediction at (H, W)."""
        from .backend import MaskPrediction

        low_res = np.ascontiguousarray(low_res, np.float32)
        logits = self.logits(low_res)
        probability = np.zeros(logits.shape, np.float32)
        stability = 0.0
        rows, cols = self._window(low_res, logits.shape)
        if rows is not None:
            window = logits[rows[0]:rows[1], cols[0]:cols[1]]
            probability[rows[0]:rows[1], cols[0]:cols[1]] = _sigmoid(window)
            stability = _stability(window)
        return MaskPrediction(mask=logits > 0, probability=probability, score=score, stability=stability, low_res_logits=low_res[None])

    def _window(self, low_res: np.ndarray, shape):
        """(row range, column range) of the image pixels whose logits can exceed -crop_margin."""
        if self.direct:  # an output pixel blends the low-resolution cells next to it: one cell of margin
            rows, cols = np.nonzero(low_res > -self.crop_margin)
            if not len(rows):
                return None, None
            fy, fx = shape[0] / low_res.shape[0], shape[1] / low_res.shape[1]
            return ((max(int((rows.min() - 1) * fy), 0), min(int(np.ceil((rows.max() + 2) * fy)), shape[0])),
                    (max(int((cols.min() - 1) * fx), 0), min(int(np.ceil((cols.max() + 2) * fx)), shape[1])))
        rows, cols = _footprint(low_res > -self.crop_margin, low_res.shape[0], self.size, self.input_size)
        if rows is None or tuple(self.input_size) == tuple(shape):
            return rows, cols
        fy, fx = shape[0] / self.input_size[0], shape[1] / self.input_size[1]
        rows = (max(int(rows[0] * fy) - 1, 0), min(int(np.ceil(rows[1] * fy)) + 1, shape[0]))
        cols = (max(int(cols[0] * fx) - 1, 0), min(int(np.ceil(cols[1] * fx)) + 1, shape[1]))
        return rows, cols


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """float32 sigmoid; OpenCV's exp is several times faster than numpy's here."""
    import cv2

    e = cv2.exp(np.negative(x))  # inf for x < -88: 1 / (1 + inf) = 0, as it should
    e += 1.0
    return np.reciprocal(e, out=e)


def _stability(logits: np.ndarray, offset: float = 1.0) -> float:
    """SAM's stability score: IoU of logits > offset and logits > -offset."""
    low = np.count_nonzero(logits > -offset)
    return float(np.count_nonzero(logits > offset) / low) if low else 0.0


def _footprint(positive: np.ndarray, low: int, size: int, shape):
    """Row and column ranges (of the full frame, clipped to `shape`) that bilinear interpolation
    of `positive` low-resolution pixels can reach; (None, None) when none is positive."""
    if not positive.any():
        return None, None
    f = size // low
    r = np.flatnonzero(positive.any(axis=1))
    c = np.flatnonzero(positive.any(axis=0))
    rows = (max((int(r[0]) - 1) * f, 0), min((int(r[-1]) + 2) * f, shape[0]))
    cols = (max((int(c[0]) - 1) * f, 0), min((int(c[-1]) + 2) * f, shape[1]))
    if rows[0] >= rows[1] or cols[0] >= cols[1]:
        return None, None
    return rows, cols
