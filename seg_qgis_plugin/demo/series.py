"""A synthetic time series with known truth: four dates of one area in which objects shrink, move,
vanish and appear, one field changes crop after the first date, the third date has haze over its
left half, and every date has its own sensor gain.

Everything comes from fixed seeds, so anyone can regenerate the same data. Truth masks are on the
rasters' common grid (UTM 33N, 0.5 m pixels), so truth areas are pixel counts x 0.25 m^2.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from .scene import CRS, ORIGIN, _ellipse, _rect

DATES = ("2021-04-15", "2021-06-15", "2021-08-15", "2021-10-15")
RESOLUTION = 0.5
SIZE = 400
HAZE_DATE = 2              # index of the hazy date
HAZE_COLUMNS = (0, 220)    # haze at full strength left of column 180, fading out by column 220
GAINS = (1.0, 1.05, 0.96, 1.02)
HARVESTED = (300, 0)       # (col, row) of the 100-pixel field whose crop changes from the second date on
WATER = (300, 450, 600, 150)
ROOF = (2600, 2500, 2450, 2700)
FIELDS = ((600, 900, 500, 3500), (1400, 1200, 900, 2200), (800, 1100, 600, 3000), (1100, 1000, 800, 2600))


@dataclass(frozen=True)
class SeriesObject:
    """A known object: name, class, and its mask bool (SIZE, SIZE) on each date (None: absent)."""

    name: str
    class_name: str
    masks: Tuple[Optional[np.ndarray], ...]

    def first_date(self) -> int:
        return next(i for i, m in enumerate(self.masks) if m is not None)


@dataclass(frozen=True)
class Series:
    """The written series: raster paths by date, the starting labels' path, the truth objects."""

    rasters: Tuple[str, ...]
    dates: Tuple[str, ...]
    labels: str
    objects: Tuple[SeriesObject, ...]

    @property
    def transform(self):
        from rasterio.transform import from_origin

        return from_origin(ORIGIN[0], ORIGIN[1], RESOLUTION, RESOLUTION)

    def truth_areas(self, class_name: str) -> List[float]:
        """Area in m^2 of the union of `class_name` objects on each date."""
        return [float(self.union(class_name, k).sum()) * RESOLUTION ** 2 for k in range(len(self.dates))]

    def union(self, class_name: str, k: int) -> np.ndarray:
        out = np.zeros((SIZE, SIZE), bool)
        for obj in self.objects:
            if obj.class_name == class_name and obj.masks[k] is not None:
                out |= obj.masks[k]
        return out


def series_objects() -> List[SeriesObject]:
    n, s = len(DATES), SIZE
    shrink = (1.0, 0.85, 0.72, 0.62)
    return [
        SeriesObject("shrinking pond", "water", tuple(_ellipse(s, s, 110, 110, 50 * f, 40 * f) for f in shrink)),
        SeriesObject("moving pond", "water", tuple(_ellipse(s, s, 110, 285 + 10 * k, 32, 28) for k in range(n))),
        SeriesObject("hazy building", "building", tuple(_rect(s, s, 255, 80, 300, 150) for _ in range(n))),
        SeriesObject("vanishing pond", "water", tuple(_ellipse(s, s, 275, 290, 26, 30) if k < 2 else None for k in range(n))),
        SeriesObject("new building", "building", tuple(_rect(s, s, 335, 290, 372, 350) if k >= 2 else None for k in range(n))),
    ]


def make_date(k: int, objects: List[SeriesObject], seed: int = 0) -> np.ndarray:
    """Date `k` as uint16 (4, SIZE, SIZE): fields, the objects present, haze, the date's gain."""
    rng = np.random.default_rng(seed * 100 + k)
    base = np.empty((4, SIZE, SIZE), np.float32)
    strip = 100
    for i, c0 in enumerate(range(0, SIZE, strip)):
        for j, r0 in enumerate(range(0, SIZE, strip)):
            colour = FIELDS[(i * 3 + j + (k >= 1 and (c0, r0) == HARVESTED)) % len(FIELDS)]
            base[:, r0:r0 + strip, c0:c0 + strip] = np.asarray(colour, np.float32)[:, None, None]
    base += rng.normal(0, 60, size=base.shape).astype(np.float32)
    for obj in objects:
        mask = obj.masks[k]
        if mask is None:
            continue
        colour = WATER if obj.class_name == "water" else ROOF
        for b in range(4):
            base[b][mask] = colour[b] + rng.normal(0, 30, size=int(mask.sum()))
    if k == HAZE_DATE:
        cols = np.arange(SIZE, dtype=np.float32)
        a0, a1 = HAZE_COLUMNS
        alpha = 0.45 * np.clip((a1 - cols) / (a1 - 180), 0, 1)[None, None, :]
        base = (1 - alpha) * base + alpha * 3500.0
    return np.clip(base * GAINS[k], 1, 10000).astype(np.uint16)


def write_series(folder: str, seed: int = 0) -> Series:
    """Write the four dates (series_YYYYMMDD.tif, each also dated by TIFFTAG_DATETIME) and
    labels.gpkg: every object on its first date, drawn from the truth, with a `date` and a
    `name` tag. Returns the Series with its truth."""
    import rasterio
    from rasterio.enums import ColorInterp

    from ..core.engine.labels import Label, attributes
    from ..core.geo.vectorize import mask_to_geometry
    from ..core.outputs.vectors import write_labels

    objects = series_objects()
    series = Series((), DATES, "", tuple(objects))
    paths = []
    for k, iso in enumerate(DATES):
        path = os.path.join(folder, f"series_{iso.replace('-', '')}.tif")
        profile = dict(driver="GTiff", width=SIZE, height=SIZE, count=4, dtype="uint16", crs=CRS,
                       transform=series.transform, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(make_date(k, objects, seed))
            dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined]
            dst.update_tags(TIFFTAG_DATETIME=iso.replace("-", ":") + " 10:30:00")
        paths.append(path)
    labels = []
    for obj in objects:
        k = obj.first_date()
        geometry = mask_to_geometry(obj.masks[k], series.transform)
        labels.append(Label(geometry, CRS, attributes(obj.class_name, {"date": DATES[k], "name": obj.name}, status="accepted")))
    labels_path = write_labels(labels, os.path.join(folder, "labels.gpkg"), mode="overwrite")
    return Series(tuple(paths), DATES, labels_path, tuple(objects))


def truth_by_name(series: Series) -> Dict[str, SeriesObject]:
    return {obj.name: obj for obj in series.objects}
