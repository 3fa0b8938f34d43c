"""Synthetic georeferenced orthomosaics with known objects, for the demo, tests and benchmarks.

Everything is generated from a fixed seed, so anyone can regenerate the same data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

CRS = "EPSG:32633"
ORIGIN = (500000.0, 4650000.0)


@dataclass(frozen=True)
class TruthObject:
    """A known object: class, a prompt point and box in pixel coordinates (col, row), and its mask
    (bool, full raster size)."""

    name: str
    class_name: str
    point: Tuple[float, float]
    box: Tuple[float, float, float, float]
    mask: np.ndarray


def _ellipse(h, w, cy, cx, ry, rx):
    yy, xx = np.ogrid[:h, :w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _rect(h, w, r0, c0, r1, c1):
    m = np.zeros((h, w), bool)
    m[r0:r1, c0:c1] = True
    return m


def make_scene(width: int = 1536, height: int = 1536, seed: int = 0) -> Tuple[np.ndarray, List[TruthObject]]:
    """A 4-band (red, green, blue, near-infrared) uint16 scene of fields, ponds and buildings.

    Returns data uint16 (4, height, width) and the truth objects. One pond is large enough to
    cross tile borders at 512-pixel tiles.
    """
    rng = np.random.default_rng(seed)
    h, w = height, width
    # reflectance-like values x 10000: fields in strips of crops, bare soil and grass
    data = np.empty((4, h, w), np.float32)
    field_colours = [(600, 900, 500, 3500), (1400, 1200, 900, 2200), (800, 1100, 600, 3000), (1100, 1000, 800, 2600)]
    strip = 256
    for i, c0 in enumerate(range(0, w, strip)):
        for j, r0 in enumerate(range(0, h, strip)):
            colour = field_colours[(i * 3 + j) % len(field_colours)]
            for b in range(4):
                data[b, r0:r0 + strip, c0:c0 + strip] = colour[b]
    data += rng.normal(0, 60, size=data.shape).astype(np.float32)
    objects: List[TruthObject] = []

    def paint(mask, colour, texture=25.0):
        for b in range(4):
            data[b][mask] = colour[b] + rng.normal(0, texture, size=int(mask.sum()))

    ponds = [("big pond", h * 0.42, w * 0.36, h * 0.16, w * 0.3), ("pond", h * 0.78, w * 0.2, 55, 80), ("pond", h * 0.15, w * 0.8, 70, 50)]
    for name, cy, cx, ry, rx in ponds:
        m = _ellipse(h, w, cy, cx, ry, rx)
        paint(m, (300, 450, 600, 150))
        objects.append(TruthObject(name, "water", (cx, cy), (cx - rx, cy - ry, cx + rx, cy + ry), m))
    buildings = [(0.70, 0.62, 60, 90), (0.72, 0.80, 70, 50), (0.88, 0.55, 40, 120)]
    for fy, fx, bh, bw in buildings:
        r0, c0 = int(h * fy), int(w * fx)
        shadow = _rect(h, w, r0 + 6, c0 + 6, r0 + bh + 10, c0 + bw + 10)
        paint(shadow, (250, 250, 260, 400), 10)
        m = _rect(h, w, r0, c0, r0 + bh, c0 + bw)
        paint(m, (2600, 2500, 2450, 2700), 40)
        objects.append(TruthObject("building", "building", (c0 + bw / 2, r0 + bh / 2), (c0, r0, c0 + bw, r0 + bh), m))
    return np.clip(data, 0, 10000).astype(np.uint16), objects


def pixel_square(col: float, row: float, side: float = 12, resolution: float = 0.5):
    """The square of `side` pixels whose top-left pixel corner is (col, row) on a written scene's
    grid, as a shapely box in its CRS (a small label of the kind the assistant learns from)."""
    from shapely.geometry import box

    x0, y0 = ORIGIN[0] + col * resolution, ORIGIN[1] - (row + side) * resolution
    return box(x0, y0, x0 + side * resolution, y0 + side * resolution)


def write_scene(path: str, width: int = 1536, height: int = 1536, seed: int = 0, resolution: float = 0.5,
                nodata_border: int = 0) -> List[TruthObject]:
    """Write the scene as a tiled GeoTIFF in UTM 33N (pixel size `resolution` m) and return its
    truth. nodata_border > 0 makes a frame of that many pixels nodata (0)."""
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.transform import from_origin

    data, objects = make_scene(width, height, seed)
    if nodata_border:
        data[:, :nodata_border] = 0
        data[:, -nodata_border:] = 0
        data[:, :, :nodata_border] = 0
        data[:, :, -nodata_border:] = 0
    profile = dict(driver="GTiff", width=width, height=height, count=4, dtype="uint16", crs=CRS,
                   transform=from_origin(ORIGIN[0], ORIGIN[1], resolution, resolution), tiled=True,
                   blockxsize=256, blockysize=256, compress="deflate", nodata=0 if nodata_border else None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined]
        dst.set_band_description(4, "nir")
    return objects
