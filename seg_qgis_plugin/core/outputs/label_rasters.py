"""Labels to rasters on a given raster's grid, rasters to labels, and probability rasters.

Both directions work block by block (BLOCK rows at a time), so memory follows the block, not the
raster. Rasterizing burns pixels whose centre lies inside a polygon, the exact inverse of
`vectorize.mask_to_geometry`: polygonize then rasterize returns the same pixels.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import OutputError, SegError
from ..progress import Progress, track
from ..engine.labels import Label, attributes
from ..engine.ontology import Ontology, class_codes, code_dtype, ontology_or_codes
from .atomic import atomic_path
from .class_legend import read_class_names, write_categories, write_colour_table
from .raster_styles import class_raster_qml, ontology_palette, probability_qml, write_raster_style
from ..geo.vectorize import reproject_geometry

BLOCK = 1024


@dataclass(frozen=True)
class RasterizeOptions:
    """What a label raster holds: `kind` "class" (the class code of `field`, codes from the
    ontology when given; add_missing: classes it lacks get new codes instead of an error) or
    "instance" (feature numbers)."""

    field: str = "class"
    kind: str = "class"
    ontology: Optional[Ontology] = None
    add_missing: bool = False


def rasterize_labels(labels: Sequence[Label], like: str, out: str, options: Optional[RasterizeOptions] = None,
                     overwrite: bool = False, progress: Optional[Progress] = None) -> Dict[str, int]:
    """Burn `labels` on exactly the grid of the raster `like` (size, transform, CRS), as `options`
    say (RasterizeOptions; default: class codes of the field "class").

    kind "class": the class code of `field` per pixel, 0 = background, codes from `class_codes`
    (the ontology's when given; see ontology.py), in the smallest of uint8/uint16/uint32 that holds
    them. The name -> code mapping is returned and stored in the file's `classes` metadata; names
    and colours also go to a colour table and GDAL category names (a `.aux.xml` beside the file), so
    GDAL and QGIS show names. kind "instance": uint32 feature number 1..N. Later features win where
    labels overlap.
    """
    import rasterio
    from rasterio.features import rasterize
    from rasterio.windows import Window, transform as window_transform

    from ..geo.raster import RasterSource

    options = options or RasterizeOptions()
    field, kind, ontology = options.field, options.kind, options.ontology
    check_output(out, overwrite)
    with RasterSource(like) as grid:
        crs, transform, width, height = grid.crs, grid.transform, grid.width, grid.height
    if kind == "class":
        classes = class_codes((lab.attributes.get(field) for lab in labels), ontology, options.add_missing, where=out)
        if labels and not classes:
            raise SegError(f"No label has a value in the field {field!r}.")
        values = [classes.get(str(lab.attributes.get(field))) for lab in labels]
        dtype = code_dtype(classes.values())
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
            if kind == "class":
                write_colour_table(dst, ontology_or_codes(classes, ontology))
        if kind == "class":
            write_categories(tmp, ontology_or_codes(classes, ontology))
    if kind == "class":
        write_raster_style(out, class_raster_qml(ontology_palette(ontology_or_codes(classes, ontology))))
    return classes


def polygonize_raster(path: str, class_field: str = "class", kind: str = "class", source: str = "",
                      progress: Optional[Progress] = None, ontology: Optional[Ontology] = None,
                      add_missing: bool = False) -> List[Label]:
    """A class or instance raster to Labels with the full attribute schema.

    kind "class": one feature per connected region of a value (0 and nodata are background); the
    class name of a code comes from `ontology` when given (a code not in it is an error unless
    `add_missing`, which keeps the number), else the raster's `classes` metadata or GDAL category
    names when present, else the value itself (so rasterizing back gives the same codes).
    kind "instance": one feature per value. Regions crossing block edges are merged.
    """
    from rasterio.features import shapes
    from rasterio.windows import Window, transform as window_transform
    from shapely import union_all
    from shapely.geometry import MultiPolygon, shape

    from ..geo.raster import RasterSource

    with RasterSource(path) as src:
        ds = src.dataset
        if not np.issubdtype(np.dtype(ds.dtypes[0]), np.integer):
            raise SegError(f"{path} holds {ds.dtypes[0]} values; polygonize needs a class or instance raster of integers.")
        names = {} if ontology is not None else read_class_names(ds, path)
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
    if ontology is not None and kind == "class":
        names = {v: ontology.name_of(v) if (ontology.has_code(v) or not add_missing) else str(v) for v in pieces}
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
    write_raster_style(out, probability_qml())
    return out


def check_output(path: str, overwrite: bool) -> None:
    """One sentence, before any work, when `path` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"The folder {folder} does not exist.")
    if os.path.exists(path) and not overwrite:
        raise OutputError(f"{path} already exists; choose another name or overwrite it.")


def _atomic(path: str):
    """atomic_path, with GDAL's PAM file (class names, attribute table: `.aux.xml`) moved along."""
    return atomic_path(path, companions=(".aux.xml",))
