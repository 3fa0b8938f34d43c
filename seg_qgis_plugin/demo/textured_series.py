"""Harder synthetic time series for judging lost and kept objects: textured backgrounds (crop
fields, forest, urban), five dates with haze over the whole second date and a global brightness
change on the fourth, and ponds that stay, shrink, move, dry out into a field of three crop colours,
or appear. Bands are red, green, blue and near infrared, so NDWI tells water as on real imagery.

Fixed seeds; truth masks on the common grid (UTM 33N, 0.5 m pixels).
"""
from __future__ import annotations

import os
from typing import List

import numpy as np

from .scene import CRS, _ellipse
from .series import Series, SeriesObject

DATES = ("2022-04-15", "2022-05-15", "2022-06-15", "2022-07-15", "2022-08-15")
SIZE = 400
BACKGROUNDS = ("fields", "forest", "urban")
HAZE_DATE, BRIGHT_DATE = 1, 3
WATER = (300, 450, 600, 150)
CROPS = ((600, 900, 500, 3500), (1400, 1200, 900, 2200), (1100, 1000, 800, 2600))
DRIED = 2  # the drying pond is a field from this date on


def objects() -> List[SeriesObject]:
    n, s = len(DATES), SIZE
    return [
        SeriesObject("steady pond", "water", tuple(_ellipse(s, s, 90, 90, 40, 55) for _ in range(n))),
        SeriesObject("shrinking pond", "water", tuple(_ellipse(s, s, 300, 100, 55 * f, 45 * f) for f in (1.0, 0.9, 0.8, 0.72, 0.65))),
        SeriesObject("moving pond", "water", tuple(_ellipse(s, s, 100, 260 + 12 * k, 30, 30) for k in range(n))),
        SeriesObject("drying pond", "water", tuple(_ellipse(s, s, 290, 290, 45, 50) if k < DRIED else None for k in range(n))),
        SeriesObject("new pond", "water", tuple(_ellipse(s, s, 200, 190, 28, 34) if k >= 3 else None for k in range(n))),
    ]


def background(kind: str, rng: np.random.Generator) -> np.ndarray:
    """float32 (4, SIZE, SIZE) of one background kind, the same on every date."""
    import cv2

    out = np.empty((4, SIZE, SIZE), np.float32)
    if kind == "fields":
        for i, c0 in enumerate(range(0, SIZE, 80)):
            for j, r0 in enumerate(range(0, SIZE, 100)):
                out[:, r0:r0 + 100, c0:c0 + 80] = np.asarray(CROPS[(i * 2 + j) % 3], np.float32)[:, None, None]
        out += rng.normal(0, 80, out.shape).astype(np.float32)
    elif kind == "forest":
        canopy = cv2.GaussianBlur(rng.normal(0, 1, (SIZE, SIZE)).astype(np.float32), (0, 0), 4) > 0
        dark, light = np.array((300, 500, 300, 3200), np.float32), np.array((700, 900, 600, 2600), np.float32)
        out[:] = np.where(canopy[None], dark[:, None, None], light[:, None, None])
        out += rng.normal(0, 120, out.shape).astype(np.float32)
    elif kind == "urban":
        out[:] = np.array((900, 900, 950, 1000), np.float32)[:, None, None]  # asphalt
        for r0 in range(10, SIZE, 50):
            for c0 in range(10, SIZE, 60):
                roof = rng.choice([np.array((1800, 1700, 1600, 1900)), np.array((1300, 700, 600, 1400)), np.array((2200, 2200, 2300, 2400))])
                out[:, r0:r0 + 35, c0:c0 + 45] = roof[:, None, None]
        out += rng.normal(0, 60, out.shape).astype(np.float32)
    else:
        raise ValueError(f"background is one of {', '.join(BACKGROUNDS)}, not {kind!r}")
    return out


def make_date(k: int, kind: str, things: List[SeriesObject], seed: int = 0) -> np.ndarray:
    """Date `k` as uint16 (4, SIZE, SIZE)."""
    base = background(kind, np.random.default_rng(seed))
    rng = np.random.default_rng(seed * 100 + k + 1)
    base += rng.normal(0, 25, base.shape).astype(np.float32)
    for obj in things:
        if obj.masks[k] is not None:
            for b in range(4):
                base[b][obj.masks[k]] = WATER[b] + rng.normal(0, 30, int(obj.masks[k].sum()))
        elif obj.name == "drying pond" and k >= DRIED:  # three crop stripes where the pond was
            footprint = obj.masks[0]
            stripes = (np.arange(SIZE)[None, :] // 30) % 3
            for b in range(4):
                colour = np.array([c[b] for c in CROPS], np.float32)[stripes]
                base[b][footprint] = np.broadcast_to(colour, (SIZE, SIZE))[footprint] + rng.normal(0, 60, int(footprint.sum()))
    if k == HAZE_DATE:
        base = 0.6 * base + 0.4 * 3000.0
    if k == BRIGHT_DATE:
        base = base * 1.3 + 150
    return np.clip(base, 1, 10000).astype(np.uint16)


def write_textured_series(folder: str, kind: str = "fields", seed: int = 0) -> Series:
    """Write the five dates (textured_<kind>_YYYYMMDD.tif) and labels.gpkg (each pond on its first
    date, with a `name` tag). Returns the Series with its truth."""
    import rasterio
    from rasterio.enums import ColorInterp

    from ..core.engine.labels import Label, attributes
    from ..core.geo.vectorize import mask_to_geometry
    from ..core.outputs.vectors import write_labels

    things = objects()
    series = Series((), DATES, "", tuple(things))
    paths = []
    for k, iso in enumerate(DATES):
        path = os.path.join(folder, f"textured_{kind}_{iso.replace('-', '')}.tif")
        profile = dict(driver="GTiff", width=SIZE, height=SIZE, count=4, dtype="uint16", crs=CRS,
                       transform=series.transform, compress="deflate")
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(make_date(k, kind, things, seed))
            dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined]
            dst.set_band_description(4, "nir")
        paths.append(path)
    labels = [Label(mask_to_geometry(obj.masks[obj.first_date()], series.transform), CRS,
                    attributes(obj.class_name, {"date": DATES[obj.first_date()], "name": obj.name}, status="accepted"))
              for obj in things]
    labels_path = write_labels(labels, os.path.join(folder, f"labels_{kind}.gpkg"), mode="overwrite")
    return Series(tuple(paths), DATES, labels_path, tuple(things))

