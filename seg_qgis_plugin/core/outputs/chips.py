"""Writing one tile of a raster as an image chip: GeoTIFF (raw bands, georeferenced) or PNG (8-bit).

A chip is read at the tile's level (`Tile.scale`), so a chip always has tile.width x tile.height
pixels and the transform `tile.transform(raster transform)`. GeoTIFF chips keep the raster's bands
and dtype (averaged when decimated), so a training pipeline sees the original values; PNG chips are
the three 8-bit channels SAM sees (the recorded band mapping and stretch), for viewing and for
pipelines that want RGB.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np

from ..errors import OutputError
from ..geo.radiometry import Radiometry
from ..geo.raster import RasterSource
from ..geo.tiling import Tile



def read_chip(source: RasterSource, tile: Tile) -> Tuple[np.ndarray, np.ndarray]:
    """Every band of `tile` in the raster's dtype: data (bands, h, w) and valid bool (h, w)."""
    data, valid = source.read(range(1, source.count + 1), tile.raster_window, out_shape=(tile.height, tile.width))
    dtype = np.dtype(source.dataset.dtypes[0])
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        data = np.clip(np.rint(data), info.min, info.max)
    return data.astype(dtype), valid


def write_image_chip(source: RasterSource, tile: Tile, path: str, radiometry: Optional[Radiometry] = None) -> str:
    """Write `tile` of `source` to `path` (.tif: all bands, original dtype, georeferenced;
    .png: uint8 RGB through `radiometry`, which is then required)."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext == "png":
        if radiometry is None:
            raise OutputError("PNG chips need a band mapping and stretch (radiometry).")
        data, valid = source.read(radiometry.bands, tile.raster_window, out_shape=(tile.height, tile.width))
        write_png(path, radiometry.apply(data, valid))
        return path
    data, _ = read_chip(source, tile)
    write_geotiff(path, data, source.crs, tile.transform(source.transform), nodata=source.dataset.nodata)
    return path


def write_geotiff(path: str, data: np.ndarray, crs, transform, nodata=None, tags: Optional[dict] = None) -> str:
    """data (bands, h, w) or (h, w) -> a deflate-compressed GeoTIFF on `transform` in `crs`."""
    import rasterio

    data = data[None] if data.ndim == 2 else data
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype.name,
                   crs=crs, transform=transform, nodata=nodata, compress="deflate")
    try:
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            if tags:
                dst.update_tags(**tags)
    except (OSError, rasterio.errors.RasterioIOError) as exc:
        raise OutputError(f"Cannot write the chip {path}: {exc}.") from exc
    return path


def write_png(path: str, image: np.ndarray) -> str:
    """image uint8 (h, w) or (h, w, 3) in RGB order -> PNG (no georeferencing)."""
    import cv2

    image = np.asarray(image)
    out = image[:, :, ::-1] if image.ndim == 3 else image
    if not cv2.imwrite(path, np.ascontiguousarray(out)):
        raise OutputError(f"Cannot write the chip {path}.")
    return path
