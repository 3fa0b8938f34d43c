"""Spectral indices as an independent witness of what an outline holds on a date: water by NDWI
(green vs near infrared), vegetation by NDVI (near infrared vs red).

A class says which index speaks for it: its ontology entry's `index`, or, without one, its name
(water, pond, lake, ... -> NDWI; tree, forest, crop, ... -> NDVI). A raster says which bands are
red, green and near infrared: by GDAL's colour interpretation or band descriptions, or, for a
4-band raster that names none, NAIP's order red, green, blue, near infrared; the user can name
them. Without both, there is no index check and nothing is claimed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
from affine import Affine

# index -> (band a, band b, threshold): a pixel holds the material when (a - b) / (a + b) > threshold
INDICES = {"ndwi": ("green", "nir", 0.1), "ndvi": ("nir", "red", 0.3)}
NAME_HINTS = {
    "ndwi": ("water", "pond", "lake", "river", "flood", "wetland", "reservoir", "pothole", "stream"),
    "ndvi": ("tree", "vegetation", "forest", "crop", "grass", "crown", "shrub", "wood", "meadow"),
}
ROLE_WORDS = {"red": ("red", "b4", "b04"), "green": ("green", "b3", "b03"), "nir": ("nir", "near infrared", "infrared", "b8", "b08")}


def class_index(name: str, ontology=None) -> Optional[str]:
    """The index that speaks for class `name` ("ndwi", "ndvi") or None."""
    if ontology is not None:
        index = ontology.index_of(name) if name in ontology else None
        if index:
            return index
    words = re.findall(r"[a-z]+", str(name).lower())
    for index, hints in NAME_HINTS.items():
        if any(word.startswith(hint) for word in words for hint in hints):
            return index
    return None


def band_roles(source, given: Optional[Dict[str, int]] = None) -> Optional[Dict[str, int]]:
    """{"red": band, "green": band, "nir": band} (1-based) of `source`, or None when it cannot tell."""
    if given:
        return dict(given)
    dataset = source.dataset
    roles: Dict[str, int] = {}
    for band, (interp, text) in enumerate(zip(dataset.colorinterp, dataset.descriptions), start=1):
        label = (text or "").strip().lower()
        for role, words in ROLE_WORDS.items():
            if interp.name == role or label in words:
                roles.setdefault(role, band)
    if len(roles) < 3 and dataset.count == 4 and not any(dataset.descriptions):
        roles = {"red": 1, "green": 2, "nir": 4}  # NAIP's and most 4-band aerial imagery's order
    return roles if len(roles) == 3 else None


@dataclass(frozen=True)
class IndexLook:
    """An index over an outline on one date: share of its pixels above the index's threshold, the
    mean index inside it, and the median and robust deviation (1.4826 MAD) of a ring around it (an
    object that moved a little lies partly in its old ring)."""

    share: float
    inside: float
    ring: float
    ring_std: float = 0.0

    @property
    def contrast(self) -> float:
        """How the outline stands out from its ring by the index, in ring deviations: haze pulls
        both towards 0 alike, so this keeps its size where the plain difference shrinks."""
        return (self.inside - self.ring) / max(self.ring_std, 0.02)


def index_look(source, geometry, index: str, roles: Dict[str, int], max_side: int = 256) -> Optional[IndexLook]:
    """The IndexLook of `geometry` (shapely, the raster's CRS); None when it holds no valid pixel."""
    import cv2
    from rasterio.features import rasterize

    from .appearance import pixel_window

    a_role, b_role, threshold = INDICES[index]
    pixel = abs(source.transform.a)
    ring_px = max(3.0, 0.25 * np.sqrt(max(geometry.area, pixel * pixel)) / pixel)
    window = pixel_window(source, geometry.bounds, pad=ring_px + 2)
    if window is None:
        return None
    col, row, width, height = window
    factor = max(1.0, max(width, height) / max_side)
    shape = (max(1, round(height / factor)), max(1, round(width / factor)))
    data, valid = source.read((roles[a_role], roles[b_role]), window, out_shape=shape)
    transform = source.transform * Affine.translation(col, row) * Affine.scale(width / shape[1], height / shape[0])
    outline = rasterize([geometry], out_shape=shape, transform=transform, all_touched=True).astype(np.uint8)
    step = max(1, int(round(ring_px / factor)))
    ring = (cv2.dilate(outline, np.ones((2 * step + 1, 2 * step + 1), np.uint8)) > 0) & (outline == 0) & valid
    inside = (outline > 0) & valid
    if not inside.any():
        return None
    value = (data[0] - data[1]) / np.maximum(data[0] + data[1], 1e-9)
    around = value[ring] if ring.any() else value[inside]
    middle = float(np.median(around))
    return IndexLook(float(np.count_nonzero(value[inside] > threshold) / np.count_nonzero(inside)), float(value[inside].mean()),
                     middle, 1.4826 * float(np.median(np.abs(around - middle))))


def trim_to_index(source, geometry, index: str, roles: Dict[str, int], keep: float = 0.5):
    """`geometry` (shapely, the raster's CRS) cut to the pixels where `index` says material
    (opened by one pixel against speckle), or `geometry` itself when less than `keep` of it would
    remain (haze, or an index that does not see this object)."""
    import cv2
    from rasterio.features import rasterize

    from ..geo.vectorize import mask_to_geometry
    from .appearance import pixel_window

    a_role, b_role, threshold = INDICES[index]
    window = pixel_window(source, geometry.bounds, pad=1)
    if window is None:
        return geometry
    col, row, width, height = window
    data, valid = source.read((roles[a_role], roles[b_role]), window)
    transform = source.transform * Affine.translation(col, row)
    outline = rasterize([geometry], out_shape=(height, width), transform=transform).astype(bool)
    value = (data[0] - data[1]) / np.maximum(data[0] + data[1], 1e-9)
    material = cv2.morphologyEx((value > threshold).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    kept = outline & material & valid
    if kept.sum() < keep * max(outline.sum(), 1):
        return geometry
    trimmed = mask_to_geometry(kept, transform, fill_holes=float("inf"))
    return trimmed if trimmed is not None else geometry
