"""Labels plus a raster to training data: image chips, mask chips and a COCO instances file.

Layout of the output folder (made whole in a temporary folder beside it and moved into place at
the end, so a cancelled or failed run leaves nothing):

    images/tile_RRRR_CCCC.tif|png   the raster tile (GeoTIFF: all bands, original dtype, georeferenced;
                                    PNG: the 8-bit RGB that SAM sees, via the raster's band mapping and stretch)
    masks/tile_RRRR_CCCC.tif|png    uint8 class code per pixel (0 = background; the codes of ontology.class_codes)
    annotations.json                COCO instances: images, annotations (polygons in chip pixel
                                    coordinates, x right, y down, origin at the chip's top-left corner;
                                    COCO polygons have no holes, so holes are dropped from the polygon
                                    but counted in `area`), categories: id = class code, supercategory = parent class

Chips follow a TileGrid (tile, overlap, scale; see tiling.py). A chip is kept when it holds data and
at least `min_labeled_fraction` of its pixels are labelled (0 keeps background-only chips as
negatives). Memory: the labels' geometries plus one chip.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from .atomic import atomic_folder
from .chips import FORMATS, write_geotiff, write_image_chip, write_png
from ..errors import SegError
from ..progress import Progress, check_canceled
from ..geo.raster import RasterSource
from ..engine.labels import Label
from ..engine.ontology import Ontology, check_code_fits, class_codes
from ..batch.tile_index import tile_footprint, valid_fraction
from ..geo.tiling import Tile, TileGrid
from ..geo.vectorize import reproject_geometry


@dataclass(frozen=True)
class TrainingDataSummary:
    folder: str
    coco_path: str
    chips: int
    annotations: int
    categories: Dict[str, int]


def categories_of(labels: Sequence[Label], class_field: str, ontology: Optional[Ontology] = None,
                  add_missing: bool = False) -> Dict[str, int]:
    """Class names -> category ids, which are the class codes (`ontology.class_codes`: the
    ontology's, else integer names keep their integer and other names are numbered in sorted order).
    Labels without a class are left out; every code must fit the uint8 masks."""
    categories = class_codes((lab.attributes.get(class_field) for lab in labels), ontology, add_missing,
                             where="this training set")
    if labels and not categories:
        raise SegError(f"No label has a value in the field {class_field!r}; choose the field that holds the class.")
    check_code_fits(max(categories.values(), default=1), "uint8")
    return categories


def export_training_data(raster: str, labels: Sequence[Label], out_dir: str, tile: int = 512, overlap: int = 0,
                         scale: int = 1, class_field: str = "class", min_labeled_fraction: float = 0.0,
                         image_format: str = "tif", skip_nodata: bool = True, overwrite: bool = False,
                         progress: Optional[Progress] = None, ontology: Optional[Ontology] = None,
                         add_missing: bool = False) -> TrainingDataSummary:
    """Write chips and COCO for `labels` (any CRS; reprojected to the raster's) over `raster`.
    COCO category ids and mask values are the class codes (the `ontology`'s when given)."""
    from shapely import STRtree

    if image_format not in FORMATS:
        raise SegError(f"Chip format must be one of {', '.join(FORMATS)}, not {image_format!r}.")
    if not 0 <= min_labeled_fraction <= 1:
        raise SegError(f"The minimum labelled fraction must lie between 0 and 1, not {min_labeled_fraction}.")
    out_dir = os.path.abspath(out_dir)
    atomic_folder(out_dir, overwrite)  # checks the target before any work
    categories = categories_of(labels, class_field, ontology, add_missing)
    parents = {c.name: c.parent or "" for c in ontology} if ontology is not None else {}
    with RasterSource(raster) as source:
        crs = source.crs.to_wkt()
        shapes = []
        for lab in labels:
            name = lab.attributes.get(class_field)
            geometry = reproject_geometry(lab.geometry, lab.crs, crs)
            if name not in (None, "") and geometry is not None and not geometry.is_empty:
                shapes.append((geometry.buffer(0) if not geometry.is_valid else geometry, categories[str(name)]))
        tree = STRtree([g for g, _ in shapes])
        radiometry = None
        if image_format == "png":
            from ..geo.radiometry import compute_radiometry

            radiometry = compute_radiometry(source)
        grid = TileGrid(source.width, source.height, tile, overlap, scale)
        with atomic_folder(out_dir, overwrite) as tmp:
            os.makedirs(os.path.join(tmp, "images"))
            os.makedirs(os.path.join(tmp, "masks"))
            coco = {"info": {"description": f"Seg training chips of {os.path.basename(raster)}", "version": "1.0"},
                    "images": [], "annotations": [], "categories": [
                        {"id": cid, "name": name, "supercategory": parents.get(name, "")}
                        for name, cid in sorted(categories.items(), key=lambda kv: kv[1])]}
            rows, cols = grid.shape
            for number, t in enumerate(grid):
                check_canceled(progress)
                footprint = tile_footprint(t, source.transform)
                hits = [shapes[int(k)] for k in sorted(tree.query(footprint, predicate="intersects"))]
                transform = t.transform(source.transform)
                mask = _burn(hits, t, transform)
                labeled = float(np.count_nonzero(mask)) / mask.size
                keep = labeled >= min_labeled_fraction
                if keep and skip_nodata and valid_fraction(source, t) == 0:
                    keep = False
                if keep:
                    i, j = divmod(number, cols)
                    stem = f"tile_{i:04d}_{j:04d}"
                    image_name = f"images/{stem}.{image_format}"
                    write_image_chip(source, t, os.path.join(tmp, image_name), radiometry)
                    mask_path = os.path.join(tmp, "masks", f"{stem}.{image_format}")
                    if image_format == "png":
                        write_png(mask_path, mask)
                    else:
                        write_geotiff(mask_path, mask, source.crs, transform, tags={"categories": json.dumps(categories)})
                    image_id = len(coco["images"]) + 1
                    coco["images"].append({"id": image_id, "file_name": image_name, "mask_file": f"masks/{stem}.{image_format}",
                                           "width": t.width, "height": t.height, "window": t.label(),
                                           "labeled_fraction": round(labeled, 6)})
                    for geometry, cid in hits:
                        annotation = _annotation(geometry, footprint, transform, cid, image_id, len(coco["annotations"]) + 1)
                        if annotation:
                            coco["annotations"].append(annotation)
                if progress is not None:
                    progress.set_progress(100.0 * (number + 1) / len(grid))
            with open(os.path.join(tmp, "annotations.json"), "w") as f:
                json.dump(coco, f)
    return TrainingDataSummary(out_dir, os.path.join(out_dir, "annotations.json"), len(coco["images"]),
                               len(coco["annotations"]), categories)


def _burn(hits, tile: Tile, transform) -> np.ndarray:
    """uint8 (h, w) category ids of the labels in `hits` on the tile (pixel centres inside; later wins)."""
    from rasterio.features import rasterize

    if not hits:
        return np.zeros((tile.height, tile.width), np.uint8)
    return rasterize(hits, out_shape=(tile.height, tile.width), transform=transform, fill=0, dtype="uint8")


def _annotation(geometry, footprint, transform, category_id: int, image_id: int, annotation_id: int) -> Optional[dict]:
    """A COCO annotation for the part of `geometry` inside the chip, in chip pixel coordinates."""
    import shapely

    clipped = geometry.intersection(footprint)
    if clipped.is_empty or clipped.area == 0:
        return None
    inverse = ~transform
    pixels = shapely.transform(clipped, lambda xy: np.column_stack(inverse * (xy[:, 0], xy[:, 1])))
    polygons = [g for g in getattr(pixels, "geoms", [pixels]) if g.geom_type == "Polygon" and g.area > 0]
    if not polygons:
        return None
    segmentation = [[round(float(v), 3) for xy in list(p.exterior.coords)[:-1] for v in xy] for p in polygons]
    x0, y0, x1, y1 = pixels.bounds
    return {"id": annotation_id, "image_id": image_id, "category_id": category_id, "iscrowd": 0,
            "segmentation": segmentation, "area": round(float(sum(p.area for p in polygons)), 3),
            "bbox": [round(x0, 3), round(y0, 3), round(x1 - x0, 3), round(y1 - y0, 3)]}
