"""`seg export-training`: labels plus a raster to training chips and annotations (COCO, Pascal VOC,
YOLO) with spatial splits, from a terminal (core.jobs.export_training)."""
from __future__ import annotations

import argparse

from .classes import class_options
from .options import BarProgress, make_request
from .run_outputs import declare


def add_parsers(sub) -> None:
    p = sub.add_parser("export-training", help="labels + raster -> image and mask chips and a COCO JSON")
    p.add_argument("raster")
    p.add_argument("--labels", required=True, help="polygon layer of labels (any CRS)")
    p.add_argument("--out", required=True, help="output folder (made whole or not at all)")
    p.add_argument("--class-field", default="class")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--overlap", type=int, default=0)
    p.add_argument("--gsd", type=float, help="work at this ground sampling distance (map units per pixel)")
    p.add_argument("--min-labeled", type=float, default=0.0, help="skip chips with a smaller labelled fraction (0-1)")
    p.add_argument("--keep-nodata", action="store_true", help="also write chips that are all nodata")
    p.add_argument("--format", choices=["coco", "voc", "yolo", "tif", "png"], default=None,
                   help="dataset format: coco (default), voc (Pascal VOC) or yolo (YOLO segmentation); "
                   "tif and png still mean --image-format for one release")
    p.add_argument("--image-format", choices=["tif", "png"], default=None,
                   help="chip images: tif (all bands, georeferenced; COCO default) or png (8-bit RGB; YOLO default); VOC is JPEG")
    p.add_argument("--split", metavar="TRAIN,VAL,TEST", help="shares of the chips per split, e.g. 0.7,0.15,0.15")
    p.add_argument("--split-by", default="block", metavar="block|random|FIELD",
                   help="block (default: contiguous blocks with a buffer, no pixel in two splits), random (leaks), "
                   "or the field of --aoi that says train, val or test")
    p.add_argument("--aoi", help="polygon layer of split areas (any CRS), with --split-by FIELD")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same split (default 0)")
    p.add_argument("--block-size", type=int, default=None, metavar="CHIPS", help="chips per block side (default: auto)")
    p.add_argument("--augment", default="", metavar="flips,rot90", help="augmented copies of training chips only")
    p.add_argument("--overwrite", action="store_true")
    class_options(p)
    declare(p, outputs=("--out",), inputs=("raster", "--labels", "--aoi", "--classes"), folders=("--out",))
    p.set_defaults(run=cmd_export_training)


def cmd_export_training(args: argparse.Namespace) -> int:
    import warnings

    from ..core.errors import SegError, SegWarning
    from ..core.jobs import export_training

    dataset_format, image_format = args.format or "coco", args.image_format
    if args.format in ("tif", "png"):
        warnings.warn(f"--format {args.format} is now --image-format {args.format}; --format names the dataset format "
                      f"(coco, voc, yolo) and the old spelling goes in the next release.", SegWarning, stacklevel=1)
        dataset_format, image_format = "coco", image_format or args.format
    if args.aoi and args.split_by in ("block", "random"):
        raise SegError("--aoi needs --split-by FIELD, the field of the AOI layer that says train, val or test.")
    request = make_request(
        export_training.Request, args.raster, args.labels, args.out, class_field=args.class_field, tile=args.tile,
        overlap=args.overlap, gsd=args.gsd, min_labeled=args.min_labeled, skip_nodata=not args.keep_nodata,
        format=dataset_format, image_format=image_format, split=args.split, split_by=args.split_by, aoi=args.aoi,
        seed=args.seed, block_size=args.block_size, augment=args.augment, overwrite=args.overwrite, classes=args.classes,
        add_missing=args.add_missing)
    bar = BarProgress("exporting chips")
    try:
        result = export_training.run(request, bar)
    finally:
        bar.close()
    for line in export_training.describe(request, result):
        print(line)
    return 0
