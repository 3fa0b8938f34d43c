"""Pixel features that need no weights, ilastik style, computed window by window.

For every band (scaled once per sensor by the recipe's fixed low/high, so a model applies to other
rasters of the same sensor), at every sigma: Gaussian smoothing, Laplacian of Gaussian, gradient
magnitude, the two eigenvalues of the structure tensor (gradients at sigma, products smoothed at
sigma / 2) and the two eigenvalues of the Hessian of Gaussian; plus the band itself. With
`indices`, the normalized difference of every band pair (NDVI, NDWI and their kin) of the raw values,
raw and smoothed at the smallest sigma: trees cannot form ratios themselves.

Every filter is local, so a window read with a halo of `recipe.halo` pixels (clipped at the raster
edge, where the filters reflect exactly as they would on the whole raster) gives the same features
as the whole raster would: window borders do not show. Cost grows with bands x sigmas x pixels; one
512 x 512 window of a 4-band raster takes about 116 float32 maps (120 MB).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import SegError, SettingError

SIGMAS = (0.7, 1.6, 3.5, 5.0)
KINDS = ("gauss", "log", "gradient", "structure", "hessian")


@dataclass(frozen=True)
class FeatureRecipe:
    """How pixels become feature vectors; stored with a model.

    bands: 1-based raster bands; low/high: per band, the values mapped to 0 and 1 (fixed for the
    sensor, not recomputed per raster); nodata_fill: value (scaled) given to invalid pixels;
    embedding: the SAM embedding recipe (see embedding_features.py) or None."""

    bands: Tuple[int, ...]
    low: Tuple[float, ...]
    high: Tuple[float, ...]
    sigmas: Tuple[float, ...] = SIGMAS
    kinds: Tuple[str, ...] = KINDS
    indices: bool = True
    embedding: Optional[dict] = field(default=None, compare=False)

    def __post_init__(self):
        if not self.bands:
            raise SettingError("The feature recipe needs at least one band.")
        if len(self.low) != len(self.bands) or len(self.high) != len(self.bands):
            raise SettingError("The feature recipe needs one low and one high value per band.")
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise SettingError(f"Unknown feature kinds {sorted(unknown)}; choose from {', '.join(KINDS)}.")
        if any(s <= 0 for s in self.sigmas):
            raise SettingError("Feature sigmas must be positive.")

    @property
    def halo(self) -> int:
        """Pixels of context each side a window needs for exact features (Gaussian kernels reach
        4 sigma, the structure tensor's second smoothing 2 sigma more, derivatives 1 pixel)."""
        return int(math.ceil(6 * max(self.sigmas, default=0.0))) + 2

    def names(self) -> List[str]:
        names = []
        for b in self.bands:
            names.append(f"b{b}")
            for s in self.sigmas:
                for kind in self.kinds:
                    parts = ("1", "2") if kind in ("structure", "hessian") else ("",)
                    names.extend(f"b{b}_{kind}{p}_s{s:g}" for p in parts)
        if self.indices:
            for i, a in enumerate(self.bands):
                for b in self.bands[i + 1:]:
                    names.extend((f"nd_b{a}_b{b}", f"nd_b{a}_b{b}_s{min(self.sigmas, default=0):g}"))
        if self.embedding:
            names.extend(f"sam_pc{k}" for k in range(len(self.embedding["components"])))
        return names

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bands"], d["low"], d["high"] = list(self.bands), list(self.low), list(self.high)
        d["sigmas"], d["kinds"] = list(self.sigmas), list(self.kinds)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureRecipe":
        return cls(bands=tuple(int(b) for b in d["bands"]), low=tuple(map(float, d["low"])), high=tuple(map(float, d["high"])),
                   sigmas=tuple(map(float, d.get("sigmas", SIGMAS))), kinds=tuple(d.get("kinds", KINDS)),
                   indices=bool(d.get("indices", True)), embedding=d.get("embedding"))


def make_recipe(source, bands: Optional[Sequence[int]] = None, sigmas: Sequence[float] = SIGMAS,
                indices: bool = True, percentiles: Tuple[float, float] = (1.0, 99.0)) -> FeatureRecipe:
    """A recipe for `source` (a RasterSource): all bands unless given, each scaled by its global
    percentiles read on a decimated view (at most 1024 pixels a side), nodata excluded."""
    bands = tuple(bands) if bands else tuple(range(1, source.count + 1))
    for b in bands:
        if not 1 <= b <= source.count:
            raise SettingError(f"Band {b} does not exist; {source.path} has {source.count} band(s).")
    factor = max(1.0, max(source.width, source.height) / 1024)
    shape = (max(1, round(source.height / factor)), max(1, round(source.width / factor)))
    data, valid = source.read(bands, (0, 0, source.width, source.height), out_shape=shape)
    pixels = data[:, valid]
    pixels = pixels[:, np.isfinite(pixels).all(axis=0)]
    if not pixels.shape[1]:
        raise SegError(f"{source.path} holds only nodata; there is nothing to learn from.")
    low = np.percentile(pixels, percentiles[0], axis=1)
    high = np.maximum(np.percentile(pixels, percentiles[1], axis=1), low + 1e-6)
    return FeatureRecipe(bands, tuple(map(float, low)), tuple(map(float, high)), tuple(map(float, sigmas)), indices=indices)


def compute_features(data: np.ndarray, valid: np.ndarray, recipe: FeatureRecipe) -> np.ndarray:
    """data float32 (bands, H, W) of `recipe.bands`, valid bool (H, W) -> float32 (F, H, W) in the
    order of `recipe.names()` (without the SAM part). Filters reflect at the array edge."""
    import cv2

    if data.shape[0] != len(recipe.bands):
        raise SettingError(f"Expected {len(recipe.bands)} bands for the feature recipe, got {data.shape[0]}.")
    raw = np.where(np.isfinite(data) & valid[None], data, 0.0).astype(np.float32)
    low = np.asarray(recipe.low, np.float32)[:, None, None]
    span = np.asarray(recipe.high, np.float32)[:, None, None] - low
    scaled = np.where(valid[None], (raw - low) / span, 0.0).astype(np.float32)
    h, w = valid.shape
    out = np.empty((len(recipe.names()) - _embedding_count(recipe), h, w), np.float32)
    k = 0
    for band in scaled:
        out[k] = band
        k += 1
        for sigma in recipe.sigmas:
            k = _band_features(cv2, band, sigma, recipe.kinds, out, k)
    if recipe.indices:
        smallest = min(recipe.sigmas, default=0.0)
        n = len(recipe.bands)
        for i in range(n):
            for j in range(i + 1, n):
                nd = (raw[i] - raw[j]) / (np.abs(raw[i]) + np.abs(raw[j]) + 1e-6)
                out[k] = nd
                out[k + 1] = _blur(cv2, nd, smallest) if smallest else nd
                k += 2
    return out


def _band_features(cv2, band: np.ndarray, sigma: float, kinds, out: np.ndarray, k: int) -> int:
    smooth = _blur(cv2, band, sigma)
    need_first = "gradient" in kinds or "structure" in kinds
    need_second = "log" in kinds or "hessian" in kinds
    if need_first:
        dx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8, borderType=cv2.BORDER_REFLECT_101)
        dy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8, borderType=cv2.BORDER_REFLECT_101)
    if need_second:
        dxx = cv2.Sobel(smooth, cv2.CV_32F, 2, 0, ksize=3, scale=1 / 4, borderType=cv2.BORDER_REFLECT_101)
        dyy = cv2.Sobel(smooth, cv2.CV_32F, 0, 2, ksize=3, scale=1 / 4, borderType=cv2.BORDER_REFLECT_101)
        dxy = cv2.Sobel(smooth, cv2.CV_32F, 1, 1, ksize=3, scale=1 / 4, borderType=cv2.BORDER_REFLECT_101)
    for kind in kinds:
        if kind == "gauss":
            out[k] = smooth
        elif kind == "log":
            out[k] = (dxx + dyy) * sigma ** 2
        elif kind == "gradient":
            out[k] = np.sqrt(dx * dx + dy * dy) * sigma
        elif kind == "structure":
            outer = sigma / 2
            out[k], out[k + 1] = _eigenvalues(_blur(cv2, dx * dx, outer), _blur(cv2, dx * dy, outer), _blur(cv2, dy * dy, outer))
            out[k:k + 2] *= sigma ** 2
        elif kind == "hessian":
            out[k], out[k + 1] = _eigenvalues(dxx, dxy, dyy)
            out[k:k + 2] *= sigma ** 2
        k += 2 if kind in ("structure", "hessian") else 1
    return k


def _blur(cv2, image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def _eigenvalues(a: np.ndarray, b: np.ndarray, c: np.ndarray):
    """Eigenvalues (larger, smaller) of the symmetric 2 x 2 matrices [[a, b], [b, c]] per pixel."""
    mean = (a + c) * 0.5
    root = np.sqrt(((a - c) * 0.5) ** 2 + b * b)
    return mean + root, mean - root


def _embedding_count(recipe: FeatureRecipe) -> int:
    return len(recipe.embedding["components"]) if recipe.embedding else 0


def read_window_features(source, recipe: FeatureRecipe, window: Tuple[int, int, int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Features of the full-resolution `window` (col, row, width, height) of `source`, read with
    the recipe's halo so they equal the whole raster's. Returns float32 (F, h, w) (weights-free
    features only; see embedding_features for the SAM part) and valid bool (h, w)."""
    col, row, width, height = window
    halo = recipe.halo
    c0, r0 = max(0, col - halo), max(0, row - halo)
    c1, r1 = min(source.width, col + width + halo), min(source.height, row + height + halo)
    data, valid = source.read(recipe.bands, (c0, r0, c1 - c0, r1 - r0))
    if data.dtype != np.float32:
        data = data.astype(np.float32)
    valid = valid & np.isfinite(data).all(axis=0)
    features = compute_features(data, valid, recipe)
    y, x = row - r0, col - c0
    return features[:, y:y + height, x:x + width], valid[y:y + height, x:x + width]
