"""COCO instances for training chips: images/, masks/, annotations.json and one file per split.

    images/tile_RRRR_CCCC[_aug].tif|png   the chip (GeoTIFF: all bands, original dtype, georeferenced;
                                          PNG: the 8-bit RGB that SAM sees)
    masks/tile_RRRR_CCCC[_aug].tif|png    uint8 class code per pixel (0 = background)
    annotations.json                      every chip; each image records its split
    train.json, val.json, test.json       the chips of one split (with --split), same image ids

Annotations: polygons in chip pixel coordinates (x right, y down, origin at the chip's top-left
corner); COCO polygons have no holes, so holes are dropped from the polygon but counted in `area`;
category id = class code, supercategory = parent class.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

from .training_samples import ChipSample, polygon_rings, visible_objects, write_chip_image


class CocoWriter:
    """Writes chips into `folder` as they come and the COCO files at `finish`."""

    def __init__(self, folder: str, categories: Dict[str, int], parents: Dict[str, str], image_format: str,
                 description: str, crs, nodata=None):
        self.folder, self.image_format, self.crs, self.nodata = folder, image_format, crs, nodata
        self.categories = categories
        os.makedirs(os.path.join(folder, "images"))
        os.makedirs(os.path.join(folder, "masks"))
        self.coco = {"info": {"description": description, "version": "1.0"}, "images": [], "annotations": [],
                     "categories": [{"id": cid, "name": name, "supercategory": parents.get(name, "")}
                                    for name, cid in sorted(categories.items(), key=lambda kv: kv[1])]}

    def add(self, sample: ChipSample) -> int:
        """Write the chip and its mask; returns the number of annotations it got."""
        fmt = self.image_format
        image_name, mask_name = f"images/{sample.stem}.{fmt}", f"masks/{sample.stem}.{fmt}"
        write_chip_image(os.path.join(self.folder, image_name), sample, self.crs, self.nodata)
        write_chip_image(os.path.join(self.folder, mask_name), sample.with_(image=sample.mask), self.crs,
                         tags={"categories": json.dumps(self.categories)})
        image_id = len(self.coco["images"]) + 1
        entry = {"id": image_id, "file_name": image_name, "mask_file": mask_name, "width": sample.width,
                 "height": sample.height, "window": sample.window, "labeled_fraction": round(sample.labeled_fraction, 6),
                 "split": sample.split}
        if sample.augmentation:
            entry["augmentation"] = sample.augmentation
        self.coco["images"].append(entry)
        added = 0
        for _, obj in visible_objects(sample):
            annotation = coco_annotation(obj.shape, obj.code, image_id, len(self.coco["annotations"]) + 1)
            self.coco["annotations"].append(annotation)
            added += 1
        return added

    def finish(self, splits: List[str]) -> str:
        """Write annotations.json and, when the chips are split, one file per split; returns annotations.json."""
        for name in splits:
            if name == "all":
                continue
            ids = {img["id"] for img in self.coco["images"] if img["split"] == name}
            part = dict(self.coco, images=[img for img in self.coco["images"] if img["id"] in ids],
                        annotations=[a for a in self.coco["annotations"] if a["image_id"] in ids])
            with open(os.path.join(self.folder, f"{name}.json"), "w") as f:
                json.dump(part, f)
        path = os.path.join(self.folder, "annotations.json")
        with open(path, "w") as f:
            json.dump(self.coco, f)
        return path


def coco_annotation(shape, category_id: int, image_id: int, annotation_id: int) -> Optional[dict]:
    """A COCO annotation for `shape` (shapely, chip pixels): polygons without holes, area with them."""
    segmentation = [[round(float(v), 3) for xy in ring for v in xy] for ring in polygon_rings(shape)]
    x0, y0, x1, y1 = shape.bounds
    return {"id": annotation_id, "image_id": image_id, "category_id": category_id, "iscrowd": 0,
            "segmentation": segmentation, "area": round(float(shape.area), 3),
            "bbox": [round(x0, 3), round(y0, 3), round(x1 - x0, 3), round(y1 - y0, 3)]}
