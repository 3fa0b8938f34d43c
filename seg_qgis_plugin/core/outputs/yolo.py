"""YOLO segmentation layout (Ultralytics) for training chips.

    images/<split>/<stem>.png|tif    the chip
    labels/<split>/<stem>.txt        one line per polygon: `class x1 y1 x2 y2 ...`, coordinates divided
                                     by the chip width and height (0..1, x right, y down); an empty file
                                     for a chip without objects (a negative)
    data.yaml                        train/val/test image folders (relative to data.yaml) and names

YOLO class ids start at 0 and must be dense: id = class code - 1, so ids agree with the masks and
COCO ids of every export; codes the export does not use get a placeholder name (`unused_<code>`).
A label with several parts gives one line per part; holes are dropped (YOLO polygons have none).
<split> is train, val, test, or `all` without --split.
"""
from __future__ import annotations

import os
from typing import Dict, List

from .training_samples import ChipSample, polygon_rings, visible_objects, write_chip_image


class YoloWriter:
    """Writes chips and label files into `folder` as they come, data.yaml at `finish`."""

    def __init__(self, folder: str, categories: Dict[str, int], image_format: str, crs, nodata=None, ontology=None):
        self.folder, self.image_format, self.crs, self.nodata = folder, image_format, crs, nodata
        names = {code: name for name, code in categories.items()}
        if ontology is not None:
            names.update({c.code: c.name for c in ontology})
        self.names = [names.get(code, f"unused_{code}") for code in range(1, max(names, default=0) + 1)]
        self.splits: set = set()

    def add(self, sample: ChipSample) -> int:
        """Write the chip and its label file; returns the number of polygons written."""
        if sample.split not in self.splits:
            for sub in ("images", "labels"):
                os.makedirs(os.path.join(self.folder, sub, sample.split), exist_ok=True)
            self.splits.add(sample.split)
        write_chip_image(os.path.join(self.folder, "images", sample.split, f"{sample.stem}.{self.image_format}"),
                         sample, self.crs, self.nodata)
        lines = []
        for _, obj in visible_objects(sample):
            for ring in polygon_rings(obj.shape):
                xy = ring / [sample.width, sample.height]
                lines.append(" ".join([str(obj.code - 1)] + [f"{v:.6f}" for v in xy.ravel()]))
        with open(os.path.join(self.folder, "labels", sample.split, f"{sample.stem}.txt"), "w") as f:
            f.write("".join(f"{line}\n" for line in lines))
        return len(lines)

    def finish(self, splits: List[str]) -> str:
        """Write data.yaml (plain YAML, no `path`, so the folder can move); returns its path."""
        for split in splits:
            for sub in ("images", "labels"):
                os.makedirs(os.path.join(self.folder, sub, split), exist_ok=True)
        train = "train" if "train" in splits else splits[0]
        val = "val" if "val" in splits else train
        lines = [f"train: images/{train}", f"val: images/{val}"]
        if "test" in splits:
            lines.append("test: images/test")
        lines.append(f"nc: {len(self.names)}")
        lines.append("names:")
        lines += [f"  {k}: {_quote(name)}" for k, name in enumerate(self.names)]
        path = os.path.join(self.folder, "data.yaml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path


def _quote(name: str) -> str:
    return "'" + str(name).replace("'", "''") + "'"
