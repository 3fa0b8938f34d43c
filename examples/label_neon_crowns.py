"""Label the NEON tree crowns from their bounding boxes with the Seg Python API, and print the table.

The data (NEON airborne RGB at 0.1 m and the DeepForest crown boxes, already in map coordinates) is
described in ../shared/data/neon_tree_crowns/README.md. Each box is a box prompt: one crown each.
The weights-free classic backend is used unless a SAM checkpoint (a file or a name from
`seg models list`) is given.

Run:
    .venv/bin/python examples/label_neon_crowns.py                      # both images, classic backend
    .venv/bin/python examples/label_neon_crowns.py --checkpoint vit_b --out crowns.gpkg
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import seg_qgis_plugin.api as seg

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "neon_tree_crowns"
IMAGES = ("2018_SJER_3_252000_4107000_image_477", "OSBS_029")


def label_crowns(data: Path, image: str, checkpoint: str | None):
    """One GeoDataFrame row per crown (the raster's CRS), with how well each crown fills its box."""
    boxes = seg.read_labels(data / f"{image}_boxes_derived.geojson")
    with seg.open(data / f"{image}.tif", checkpoint=checkpoint, classes=["tree"]) as session:
        crowns = session.prelabel(boxes.assign(label="tree"), class_field="label")
    crowns["box_iou"] = [_box_iou(crown, boxes.geometry) for crown in crowns.geometry]
    return crowns, len(boxes)


def _box_iou(crown, boxes) -> float:
    """IoU of the crown's bounding box with the best-matching ground-truth box."""
    from shapely.geometry import box

    envelope = box(*crown.bounds)
    return max(envelope.intersection(b).area / envelope.union(b).area for b in boxes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the neon_tree_crowns folder")
    parser.add_argument("--image", action="append", choices=IMAGES, help="which image (default: both); repeat")
    parser.add_argument("--checkpoint", help="SAM checkpoint file or model name (default: the classic backend)")
    parser.add_argument("--out", help="also write the crowns to this layer (.gpkg, .geojson, ...), appending")
    args = parser.parse_args(argv)
    if not (args.data / "README.md").exists():
        print(f"The NEON crown data is not in {args.data}; give --data.", file=sys.stderr)
        return 2
    total = boxes = 0
    for image in args.image or IMAGES:
        start = time.perf_counter()
        crowns, n_boxes = label_crowns(args.data, image, args.checkpoint)
        seconds = time.perf_counter() - start
        print(f"\n{image}: {len(crowns)} crowns from {n_boxes} boxes in {seconds:.1f} s")
        print(crowns[["class", "score", "prompt_type", "model", "box_iou", "geometry"]].to_string(max_colwidth=48))
        if args.out:
            seg.write_labels(crowns, args.out, append=True, layer=image if args.out.endswith(".gpkg") else None)
        total, boxes = total + len(crowns), boxes + n_boxes
    print(f"{total} crowns from {boxes} boxes" + (f" -> {os.path.abspath(args.out)}" if args.out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
