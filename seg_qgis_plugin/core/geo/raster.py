"""Windowed access to any GDAL raster, with georeferencing we can trust.

`RasterSource` opens a raster once, refuses one whose georeferencing would give silently wrong
answers (no CRS, no or rotated geotransform), and reads windows only, optionally decimated to a
working resolution (GDAL uses overviews when the file has them). Memory grows with the window,
never with the raster.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from ..errors import CrsError, RasterError

# GDAL's block cache defaults to 5 % of RAM (1.2 GB on a 24 GB laptop) and fills up on big mosaics;
# windowed reads need only a few blocks. Applies to rasterio's GDAL only, unless the user set it.
GDAL_CACHE_MB = 256


@dataclass(frozen=True)
class RasterInfo:
    path: str
    width: int
    height: int
    count: int
    dtype: str
    crs_wkt: str
    crs_name: str
    transform: Tuple[float, float, float, float, float, float]  # affine a, b, c, d, e, f
    nodata: Optional[float]
    band_names: Tuple[str, ...]
    overviews: Tuple[int, ...]

    @property
    def resolution(self) -> Tuple[float, float]:
        a, _, _, _, e, _ = self.transform
        return abs(a), abs(e)


class RasterSource:
    """An open raster. Use as a context manager or call `close()`.

    Pixel coordinates are continuous: column x, row y, with pixel (i, j) covering
    [i, i+1) x [j, j+1). `level(scale)` gives a decimated view for working at coarser GSD.
    """

    def __init__(self, path: str):
        import rasterio
        from rasterio.errors import RasterioIOError

        if "GDAL_CACHEMAX" not in os.environ:
            from rasterio.env import set_gdal_config

            set_gdal_config("GDAL_CACHEMAX", GDAL_CACHE_MB << 20)  # bytes: rasterio passes an int to GDALSetCacheMax64
        self.path = os.fspath(path)
        if not os.path.exists(self.path) and "://" not in self.path and not self.path.startswith("/vsi"):
            raise RasterError(f"Raster {self.path} does not exist.")
        try:
            self._ds = rasterio.open(self.path)
        except RasterioIOError as exc:
            raise RasterError(f"{self.path} is not a raster GDAL can read ({_first_line(exc)}).") from exc
        ds = self._ds
        if ds.crs is None:
            self.close()
            raise CrsError(f"{self.path} has no CRS; assign one first (QGIS: Layer Properties > Source, or gdal_edit.py -a_srs EPSG:XXXX).")
        t = ds.transform
        if t.b != 0 or t.d != 0:
            self.close()
            raise RasterError(f"{self.path} has a rotated geotransform; warp it to a north-up grid first (gdalwarp).")
        if t.is_identity:
            self.close()
            raise RasterError(f"{self.path} has no geotransform, so its pixels have no map position.")
        self.transform = t
        self.crs = ds.crs
        self.width, self.height, self.count = ds.width, ds.height, ds.count
        self._fingerprint: Optional[str] = None

    def __enter__(self) -> "RasterSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._ds.close()

    @property
    def dataset(self):
        """The underlying rasterio dataset (read-only use)."""
        return self._ds

    def info(self) -> RasterInfo:
        ds = self._ds
        names = tuple(ds.descriptions[i] or ds.colorinterp[i].name for i in range(ds.count))
        return RasterInfo(
            path=self.path, width=ds.width, height=ds.height, count=ds.count, dtype=ds.dtypes[0],
            crs_wkt=ds.crs.to_wkt(), crs_name=crs_label(ds.crs), transform=tuple(self.transform)[:6],
            nodata=ds.nodata, band_names=names, overviews=tuple(ds.overviews(1)) if ds.count else (),
        )

    def read(self, bands: Sequence[int], window: Tuple[int, int, int, int], out_shape: Optional[Tuple[int, int]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Read `bands` (1-based) of the full-resolution pixel window (col, row, width, height).

        Returns data float32 (len(bands), h, w) and valid bool (h, w) (False where nodata, alpha
        or the mask band says so). `out_shape` = (h, w) decimates with averaging.
        """
        from rasterio.enums import Resampling
        from rasterio.windows import Window

        col, row, width, height = window
        if col < 0 or row < 0 or col + width > self.width or row + height > self.height or width <= 0 or height <= 0:
            raise RasterError(f"Window {window} is outside {self.path} ({self.width} x {self.height} pixels).")
        w = Window(col, row, width, height)
        shape = out_shape or (height, width)
        try:
            data = self._ds.read(list(bands), window=w, out_shape=(len(bands),) + tuple(shape), resampling=Resampling.average, out_dtype="float32")
            valid = self._ds.dataset_mask(window=w, out_shape=tuple(shape)) > 0
        except Exception as exc:  # GDAL raises on truncated or corrupt blocks
            raise RasterError(f"Cannot read {self.path} at window {window}: {_first_line(exc)}.") from exc
        return data, valid

    def fingerprint(self) -> str:
        """A content fingerprint that survives copying the file to another machine: size, grid,
        CRS, dtype, and pixels sampled at nine fixed places. Not a full hash (that would read the
        whole raster), but a moved, re-encoded or edited raster gets a new one."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            ds = self._ds
            h.update(repr((ds.width, ds.height, ds.count, ds.dtypes, tuple(self.transform), ds.crs.to_wkt(), ds.nodata)).encode())
            size = 64
            for fy in (0.0, 0.5, 1.0):
                for fx in (0.0, 0.5, 1.0):
                    c = int(fx * max(ds.width - size, 0))
                    r = int(fy * max(ds.height - size, 0))
                    data, _ = self.read(range(1, ds.count + 1), (c, r, min(size, ds.width), min(size, ds.height)))
                    h.update(np.ascontiguousarray(data).tobytes())
            self._fingerprint = h.hexdigest()[:32]
        return self._fingerprint


def crs_label(crs) -> str:
    """'EPSG:32633' where the CRS has an EPSG code, else its name."""
    epsg = crs.to_epsg()
    if epsg:
        return f"EPSG:{epsg}"
    try:
        from pyproj import CRS

        return CRS.from_wkt(crs.to_wkt()).name
    except Exception:
        return crs.to_wkt()[:60]


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
