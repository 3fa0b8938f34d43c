"""Pixel features that need no weights, ilastik style, computed window by window.

For every band (scaled once per sensor by the recipe's fixed low/high, so a model applies to other
rasters of the same sensor), at every sigma, the recipe's kinds of: Gaussian smoothing, Laplacian of
Gaussian (not by default), gradient magnitude, the two eigenvalues of the structure tensor
(gradients at sigma, products smoothed at sigma / 2) and the two eigenvalues of the Hessian of
Gaussian; plus the band itself. With
`indices`, the normalized difference of every band pair (NDVI, NDWI and their kin) of the raw values,
raw and smoothed at the smallest sigma: trees cannot form ratios themselves.

Every filter is local, so a window read with a halo of `recipe.halo` pixels (clipped at the raster
edge, where the filters reflect exactly as they would on the whole raster) gives the same features
as the whole raster would: window borders do not show. Cost grows with bands x sigmas x pixels; one
512 x 512 window of a 4-band raster takes 88 float32 maps (88 MB) with the defaults. A model that keeps only the
features it uses most (`selected`, see classifier.py) gets only those computed: the groups
(band, sigma) none of them needs are skipped, and the halo shrinks to what they reach.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import SegError, SettingError

KINDS = ("gauss", "log", "gradient", "structure", "hessian")
# The defaults leave out what the rest repeats: the Laplacian of Gaussian is the sum of the Hessian's
# eigenvalues, and sigma 3.5 lies between 1.6 and 5.0. 88 features on 4 bands instead of 128, the
# same IoU on Sen1Floods11 and the Swiss trees (bench/bench_assist.py), a third less prediction time.
SIGMAS = (0.7, 1.6, 5.0)
MAX_SIGMA = 64.0  # a window's halo grows with it (4-6 sigma)
DEFAULT_KINDS = ("gauss", "gradient", "structure", "hessian")
SAVED_DEFAULTS = dict(sigmas=(0.7, 1.6, 3.5, 5.0), kinds=KINDS)  # what a saved recipe without these keys meant


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
    kinds: Tuple[str, ...] = DEFAULT_KINDS
    indices: bool = True
    embedding: Optional[dict] = field(default=None, compare=False)
    selected: Optional[Tuple[str, ...]] = None

    def __post_init__(self):
        if not self.bands:
            raise SettingError("The feature recipe needs at least one band.")
        if any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in self.bands):
            raise SettingError(f"The feature recipe's bands must be band numbers from 1, not {list(self.bands)}.")
        if len(self.low) != len(self.bands) or len(self.high) != len(self.bands):
            raise SettingError("The feature recipe needs one low and one high value per band.")
        if not all(math.isfinite(v) for v in self.low + self.high):
            raise SettingError("The feature recipe's low and high values must be finite numbers.")
        if not all(math.isfinite(s) and s <= MAX_SIGMA for s in self.sigmas):
            raise SettingError(f"Feature sigmas must be finite and at most {MAX_SIGMA} pixels.")
        if self.embedding is not None and not (isinstance(self.embedding, dict)
                                               and isinstance(self.embedding.get("components"), list)):
            raise SettingError("The feature recipe's SAM embedding part is damaged.")
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise SettingError(f"Unknown feature kinds {sorted(unknown)}; choose from {', '.join(KINDS)}.")
        if any(s <= 0 for s in self.sigmas):
            raise SettingError("Feature sigmas must be positive.")
        if self.selected is not None:
            unknown = sorted(set(self.selected) - set(self.all_names()))
            if unknown or not self.selected:
                raise SettingError(f"The feature recipe selects features it cannot compute: {', '.join(unknown[:5]) or 'none'}.")

    @property
    def halo(self) -> int:
        """Pixels of context each side a window needs for exact features of the computed (selected)
        features: Gaussian kernels reach 4 sigma, the structure tensor's second smoothing 2 sigma
        more, derivatives 1 pixel."""
        used = set(self.feature_names())
        reach = 0.0
        for name, kind, _, sigma in self.catalog():
            if name in used and sigma:
                reach = max(reach, (6 if kind == "structure" else 4) * sigma)
        return int(math.ceil(reach)) + 2

    def catalog(self) -> List[Tuple[str, str, int, float]]:
        """Every weights-free feature the recipe can compute, in order: (name, kind, position of
        its band in `bands` (of the first band for an index), sigma or 0). Kinds are "band", "nd"
        and KINDS; structure and hessian have two entries each (eigenvalues 1 >= 2)."""
        rows = []
        for i, b in enumerate(self.bands):
            rows.append((f"b{b}", "band", i, 0.0))
            for s in self.sigmas:
                for kind in self.kinds:
                    parts = ("1", "2") if kind in ("structure", "hessian") else ("",)
                    rows.extend((f"b{b}_{kind}{p}_s{s:g}", kind, i, s) for p in parts)
        if self.indices:
            smallest = min(self.sigmas, default=0.0)
            for i, a in enumerate(self.bands):
                for b in self.bands[i + 1:]:
                    rows.append((f"nd_b{a}_b{b}", "nd", i, 0.0))
                    rows.append((f"nd_b{a}_b{b}_s{smallest:g}", "nd", i, smallest))
        return rows

    def all_names(self) -> List[str]:
        """Every weights-free feature the recipe can compute (what training sees)."""
        return [row[0] for row in self.catalog()]

    def feature_names(self) -> List[str]:
        """The weights-free features computed for prediction: the selected ones (in catalog
        order) or all."""
        names = self.all_names()
        if self.selected is None:
            return names
        keep = set(self.selected)
        return [n for n in names if n in keep]

    def names(self) -> List[str]:
        """The columns a model sees, in order: feature_names() then the SAM components."""
        names = self.feature_names()
        if self.embedding:
            names.extend(f"sam_pc{k}" for k in range(len(self.embedding["components"])))
        return names

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bands"], d["low"], d["high"] = list(self.bands), list(self.low), list(self.high)
        d["sigmas"], d["kinds"] = list(self.sigmas), list(self.kinds)
        if self.selected is None:
            del d["selected"]  # as a model without selection was always written
        else:
            d["selected"] = list(self.selected)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureRecipe":
        return cls(bands=tuple(int(b) for b in d["bands"]), low=tuple(map(float, d["low"])), high=tuple(map(float, d["high"])),
                   sigmas=tuple(map(float, d.get("sigmas", SAVED_DEFAULTS["sigmas"]))),
                   kinds=tuple(d.get("kinds", SAVED_DEFAULTS["kinds"])),
                   indices=bool(d.get("indices", True)), embedding=d.get("embedding"),
                   selected=tuple(map(str, d["selected"])) if d.get("selected") is not None else None)


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
    order of `recipe.feature_names()` (no SAM part). Filters reflect at the array edge. Only the
    selected features are computed."""
    import cv2

    if data.shape[0] != len(recipe.bands):
        raise SettingError(f"Expected {len(recipe.bands)} bands for the feature recipe, got {data.shape[0]}.")
    raw = np.where(np.isfinite(data) & valid[None], data, 0.0).astype(np.float32)
    low = np.asarray(recipe.low, np.float32)[:, None, None]
    span = np.asarray(recipe.high, np.float32)[:, None, None] - low
    scaled = np.where(valid[None], (raw - low) / span, 0.0).astype(np.float32)
    h, w = valid.shape
    slot = {name: k for k, name in enumerate(recipe.feature_names())}
    out = np.empty((len(slot), h, w), np.float32)
    wanted = {}  # (band position, sigma) -> the filter kinds needed there
    for name, kind, i, sigma in recipe.catalog():
        if name in slot and kind in KINDS:
            wanted.setdefault((i, sigma), set()).add(kind)
    for i, (b, band) in enumerate(zip(recipe.bands, scaled)):
        if f"b{b}" in slot:
            out[slot[f"b{b}"]] = band
        for sigma in recipe.sigmas:
            if (i, sigma) in wanted:
                _band_features(cv2, band, b, sigma, wanted[(i, sigma)], slot, out)
    if recipe.indices:
        smallest = min(recipe.sigmas, default=0.0)
        n = len(recipe.bands)
        for i in range(n):
            for j in range(i + 1, n):
                name = f"nd_b{recipe.bands[i]}_b{recipe.bands[j]}"
                smoothed = f"{name}_s{smallest:g}"
                if name not in slot and smoothed not in slot:
                    continue
                nd = (raw[i] - raw[j]) / (np.abs(raw[i]) + np.abs(raw[j]) + 1e-6)
                if name in slot:
                    out[slot[name]] = nd
                if smoothed in slot:
                    out[slot[smoothed]] = _blur(cv2, nd, smallest) if smallest else nd
    return out


def _band_features(cv2, band: np.ndarray, b: int, sigma: float, kinds, slot: dict, out: np.ndarray) -> None:
    """Write the features of `kinds` of one band at one sigma straight into their slots of `out`
    (a feature not selected gets no slot and is not written)."""
    suffix = f"_s{sigma:g}"

    def target(name: str) -> Optional[np.ndarray]:
        k = slot.get(f"b{b}_{name}{suffix}")
        return None if k is None else out[k]

    gauss = target("gauss")
    smooth = _blur(cv2, band, sigma, gauss)
    if "gradient" in kinds or "structure" in kinds:
        dx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8, borderType=cv2.BORDER_REFLECT_101)
        dy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8, borderType=cv2.BORDER_REFLECT_101)
    if "log" in kinds or "hessian" in kinds:
        dxx = cv2.Sobel(smooth, cv2.CV_32F, 2, 0, ksize=3, scale=1 / 4, borderType=cv2.BORDER_REFLECT_101)
        dyy = cv2.Sobel(smooth, cv2.CV_32F, 0, 2, ksize=3, scale=1 / 4, borderType=cv2.BORDER_REFLECT_101)
    log = target("log")
    if log is not None:
        np.add(dxx, dyy, out=log)
        log *= sigma ** 2
    gradient = target("gradient")
    if gradient is not None:
        cv2.magnitude(dx, dy, gradient)
        gradient *= sigma
    if "structure" in kinds:
        outer = sigma / 2
        _eigenvalues_into(_blur(cv2, dx * dx, outer), _blur(cv2, dx * dy, outer), _blur(cv2, dy * dy, outer), sigma ** 2,
                          target("structure1"), target("structure2"))
    if "hessian" in kinds:
        dxy = cv2.Sobel(smooth, cv2.CV_32F, 1, 1, ksize=3, scale=1 / 4, borderType=cv2.BORDER_REFLECT_101)
        _eigenvalues_into(dxx, dxy, dyy, sigma ** 2, target("hessian1"), target("hessian2"))


def _blur(cv2, image: np.ndarray, sigma: float, dst: Optional[np.ndarray] = None) -> np.ndarray:
    """Gaussian of `image`, written into `dst` when given (a C-contiguous float32 map)."""
    if dst is None:
        return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    cv2.GaussianBlur(image, (0, 0), dst=dst, sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    return dst


def _eigenvalues_into(a: np.ndarray, b: np.ndarray, c: np.ndarray, scale: float, larger: Optional[np.ndarray],
                      smaller: Optional[np.ndarray]) -> None:
    """Eigenvalues of the symmetric 2 x 2 matrices [[a, b], [b, c]] per pixel, times `scale`,
    written into `larger` and `smaller` (either may be None): (a + c) / 2 +- |((a - c) / 2, b)|."""
    import cv2

    mean = cv2.addWeighted(a, 0.5 * scale, c, 0.5 * scale, 0.0)
    root = cv2.magnitude(cv2.addWeighted(a, 0.5 * scale, c, -0.5 * scale, 0.0), b * np.float32(scale))
    if larger is not None:
        cv2.add(mean, root, dst=larger)
    if smaller is not None:
        cv2.subtract(mean, root, dst=smaller)


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
