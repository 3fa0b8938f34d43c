"""One training chip in memory: its image, class mask, instance mask and objects, in chip pixels.

Chip pixel coordinates: x right, y down, origin at the chip's top-left pixel corner, one unit per
level pixel. Every format writer (COCO, VOC, YOLO) and the augmentation work on this value, so the
formats agree with each other and with the labels to the pixel.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import List, Sequence, Tuple

import numpy as np

from ..geo.raster import RasterSource
from ..geo.tiling import Tile
from .chips import read_chip


@dataclass(frozen=True)
class ChipObject:
    """One label inside a chip: class code, `shape` (shapely Polygon/MultiPolygon, the part of the
    label inside the chip, in chip pixels) and whether the chip edge cut it."""
    code: int
    shape: object
    truncated: bool = False


@dataclass(frozen=True)
class ChipSample:
    """image: (bands, h, w) in the raster's dtype (GeoTIFF chips) or uint8 RGB (PNG/JPEG chips).
    instances: uint16 (h, w), k = objects[k - 1] covers the pixel (centre inside; a later object
    wins), 0 = background. mask: uint8 (h, w) class codes. transform: chip pixel -> map (raster CRS).
    split: train | val | test | all. augmentation: '' or the transform's name."""
    stem: str
    image: np.ndarray
    instances: np.ndarray
    mask: np.ndarray
    objects: Tuple[ChipObject, ...]
    transform: object
    window: str
    split: str
    augmentation: str = ""
    labeled_fraction: float = field(default=0.0)

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    @property
    def height(self) -> int:
        return int(self.mask.shape[0])

    def with_(self, **changes) -> "ChipSample":
        return replace(self, **changes)


def burn_instances(hits: Sequence[Tuple[object, int]], tile: Tile, transform) -> np.ndarray:
    """uint16 (h, w): k + 1 where the pixel centre lies in hits[k]'s geometry (map coords), later wins."""
    from rasterio.features import rasterize

    if not hits:
        return np.zeros((tile.height, tile.width), np.uint16)
    return rasterize([(g, k + 1) for k, (g, _) in enumerate(hits)], out_shape=(tile.height, tile.width),
                     transform=transform, fill=0, dtype="uint16")


def class_mask(instances: np.ndarray, objects: Sequence[ChipObject]) -> np.ndarray:
    """uint8 (h, w) class codes from an instance mask."""
    lut = np.zeros(len(objects) + 1, np.uint8)
    lut[1:] = [o.code for o in objects]
    return lut[instances]


def chip_objects(hits: Sequence[Tuple[object, int]], footprint, transform) -> List[ChipObject]:
    """The part of each (geometry in map coords, code) inside the chip `footprint`, in chip pixels
    (an empty shape when nothing of positive area is inside), in the order of `hits`."""
    import shapely
    from shapely.geometry import MultiPolygon, Polygon

    inverse = ~transform
    objects = []
    for geometry, code in hits:
        clipped = geometry.intersection(footprint)
        polygons = []
        if not clipped.is_empty and clipped.area > 0:
            pixels = shapely.transform(clipped, lambda xy: np.column_stack(inverse * (xy[:, 0], xy[:, 1])))
            polygons = [g for g in getattr(pixels, "geoms", [pixels]) if g.geom_type == "Polygon" and g.area > 0]
        shape = polygons[0] if len(polygons) == 1 else MultiPolygon(polygons) if polygons else Polygon()
        objects.append(ChipObject(int(code), shape, not geometry.within(footprint)))
    return objects


def read_image(source: RasterSource, tile: Tile, radiometry=None) -> np.ndarray:
    """(bands, h, w) in the raster's dtype, or uint8 (3, h, w) through `radiometry` when given."""
    if radiometry is None:
        return read_chip(source, tile)[0]
    data, valid = source.read(radiometry.bands, tile.raster_window, out_shape=(tile.height, tile.width))
    return radiometry.apply(data, valid).transpose(2, 0, 1)


def polygon_rings(shape) -> List[np.ndarray]:
    """Exterior rings of a Polygon/MultiPolygon as float (k, 2) arrays without the closing vertex
    (holes dropped: COCO and YOLO polygons have none)."""
    return [np.asarray(p.exterior.coords)[:-1] for p in getattr(shape, "geoms", [shape]) if not p.is_empty]


def visible_objects(sample: ChipSample) -> List[Tuple[int, ChipObject]]:
    """(instance id, object) for the objects with a polygon inside the chip."""
    return [(k + 1, o) for k, o in enumerate(sample.objects) if not o.shape.is_empty]


def write_chip_image(path: str, sample: ChipSample, crs, nodata=None, tags=None) -> str:
    """Write the image (or, with a (h, w) array passed as `sample.image`, a mask) of `sample`:
    .tif georeferenced on the chip's transform, .png/.jpg 8-bit without georeferencing."""
    from .chips import write_geotiff, write_png

    image = sample.image
    if path.lower().endswith(".tif"):
        return write_geotiff(path, image, crs, sample.transform, nodata=nodata, tags=tags)
    rgb = image.transpose(1, 2, 0) if image.ndim == 3 else image
    if rgb.ndim == 3 and rgb.shape[2] == 1:
        rgb = rgb[:, :, 0]
    return write_png(path, rgb)
