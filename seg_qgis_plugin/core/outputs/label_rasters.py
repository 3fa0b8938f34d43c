"""Labels to rasters on a given raster's grid, rasters to labels, and probability rasters.

Both directions work block by block (BLOCK rows at a time), so memory follows the block, not the
raster. Rasterizing burns pixels whose centre lies inside a polygon, the exact inverse of
`vectorize.mask_to_geometry`: polygonize then rasterize returns the same pixels.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import OutputError, SegError
from ..progress import Progress, track
from ..engine.labels import Label, attributes
from ..geo.vectorize import reproject_geometry

BLOCK = 1024


def rasterize_labels(labels: Sequence[Label], like: str, out: str, field: str = "class", kind: str = "class",
                     overwrite: bool = False, progress: Optional[Progress] = None) -> Dict[str, int]:
    """Burn `labels` on exactly the grid of the raster `like` (size, transform, CRS).

    kind "class": uint8/uint16 class index, 0 = background, classes numbered 1.. in sorted order of
    `field`; the mapping is returned and stored in the file's `classes` metadata. kind "instance":
    uint32 feature number 1..N. Later features win where labels overlap.
    """
    import rasterio
    from rasterio.features import rasterize
    from rasterio.windows import Window, transform as window_transform

    from ..geo.raster import RasterSource

    check_output(out, overwrite)
    with RasterSource(like) as grid:
        crs, transform, width, height = grid.crs, grid.transform, grid.width, grid.height
    if kind == "class":
        names = sorted({str(lab.attributes.get(field)) for lab in labels if lab.attributes.get(field) is not None})
        if labels and not names:
            raise SegError(f"No label has a value in the field {field!r}.")
        classes = {name: i + 1 for i, name in enumerate(names)}
        values = [classes.get(str(lab.attributes.get(field))) for lab in labels]
        dtype = "uint8" if len(classes) < 255 else "uint16"
    elif kind == "instance":
        classes, values, dtype = {}, list(range(1, len(labels) + 1)), "uint32"
    else:
        raise SegError(f"Raster kind must be 'class' or 'instance', not {kind!r}.")
    geoms = [reproject_geometry(lab.geometry, lab.crs, crs.to_wkt()) for lab in labels]
    shapes = [(g, v) for g, v in zip(geoms, values) if g is not None and v is not None and not g.is_empty]
    bounds = [g.bounds for g, _ in shapes]
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype=dtype, crs=crs, transform=transform,
                   nodata=None, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    rows = list(range(0, height, BLOCK))
    with _atomic(out) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            for row in track(rows, len(rows), progress):
                window = Window(0, row, width, min(BLOCK, height - row))
                wt = window_transform(window, transform)
                x0, y1 = wt * (0, 0)
                x1, y0 = wt * (window.width, window.height)
                block_shapes = [s for s, b in zip(shapes, bounds) if b[0] < max(x0, x1) and b[2] > min(x0, x1) and b[1] < max(y0, y1) and b[3] > min(y0, y1)]
                burned = rasterize(block_shapes, out_shape=(window.height, window.width), transform=wt, fill=0, dtype=dtype) \
                    if block_shapes else np.zeros((window.height, window.width), dtype)
                dst.write(burned, 1, window=window)
            dst.update_tags(kind=kind, field=field, classes=json.dumps(classes))
    return classes


def polygonize_raster(path: str, class_field: str = "class", kind: str = "class", source: str = "",
                      progress: Optional[Progress] = None) -> List[Label]:
    """A class or instance raster to Labels with the full attribute schema.

    kind "class": one feature per connected region of a value (0 and nodata are background); the
    class name comes from the raster's `classes` metadata when present, else the value.
    kind "instance": one feature per value. Regions crossing block edges are merged.
    """
    import rasterio
    from rasterio.features import shapes
    from rasterio.windows import Window, transform as window_transform
    from shapely import union_all
    from shapely.geometry import MultiPolygon, shape

    from ..geo.raster import RasterSource

    with RasterSource(path) as src:
        ds = src.dataset
        if not np.issubdtype(np.dtype(ds.dtypes[0]), np.integer):
            raise SegError(f"{path} holds {ds.dtypes[0]} values; polygonize needs a class or instance raster of integers.")
        names = {v: k for k, v in json.loads(ds.tags().get("classes", "{}")).items()}
        pieces = defaultdict(list)
        rows = list(range(0, src.height, BLOCK))
        for row in track(rows, len(rows), progress):
            window = Window(0, row, src.width, min(BLOCK, src.height - row))
            data = ds.read(1, window=window)
            if data.dtype == np.uint32:  # rasterio's shapes() takes int32 but not uint32 (instance rasters)
                if data.size and int(data.max()) > np.iinfo(np.int32).max:
                    raise SegError(f"{path} holds instance ids above 2147483647, which cannot be polygonized.")
                data = data.astype(np.int32)
            valid = (data != 0) & (ds.read_masks(1, window=window) > 0)
            for geom, value in shapes(data, mask=valid, connectivity=4, transform=window_transform(window, src.transform)):
                pieces[int(value)].append(shape(geom))
        crs = src.crs.to_wkt()
    labels = []
    for value, parts in sorted(pieces.items()):
        merged = union_all(parts)
        polygons = list(merged.geoms) if merged.geom_type == "MultiPolygon" else [merged]
        groups = [[p] for p in polygons] if kind == "class" else [polygons]
        for group in groups:
            attrs = attributes(names.get(value, str(value)), prompt_type="polygonize", source=source or path, status="prelabel")
            labels.append(Label(MultiPolygon(group), crs, attrs))
    if class_field != "class":
        for lab in labels:
            lab.attributes[class_field] = lab.attributes["class"]
    return labels


def write_probability(segmentation, out: str, overwrite: bool = False) -> str:
    """The object's probability (sigmoid of the model's logits) as a float32 GeoTIFF on the
    raster's grid (same CRS, pixel size and alignment; at a working resolution, on that level),
    covering the windows the object was segmented in."""
    import rasterio

    check_output(out, overwrite)
    h, w = segmentation.probability.shape
    profile = dict(driver="GTiff", width=w, height=h, count=1, dtype="float32", crs=segmentation.crs,
                   transform=segmentation.transform, tiled=True, compress="deflate", predictor=3)
    with _atomic(out) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(segmentation.probability, 1)
    return out


def check_output(path: str, overwrite: bool) -> None:
    """One sentence, before any work, when `path` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"The folder {folder} does not exist.")
    if os.path.exists(path) and not overwrite:
        raise OutputError(f"{path} already exists; choose another name or overwrite it.")


class _atomic:
    """Write to a temporary file beside `path`; move it into place only on success."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)

    def __enter__(self) -> str:
        folder = os.path.dirname(self.path)
        try:
            self.tmpdir = tempfile.mkdtemp(dir=folder, prefix=".seg-write-")
        except OSError as exc:
            raise OutputError(f"Cannot write in {folder}: {exc.strerror}.") from exc
        return os.path.join(self.tmpdir, os.path.basename(self.path))

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                os.replace(os.path.join(self.tmpdir, os.path.basename(self.path)), self.path)
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"Cannot write {self.path}: {exc.strerror or exc}; nothing was changed.") from exc
