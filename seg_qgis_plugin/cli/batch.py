"""`seg prelabel` and `seg export-training`: the Processing provider's batch jobs from a terminal,
so a GPU server without QGIS can do them too."""
from __future__ import annotations

import argparse

from ..core.errors import SegError
from .classes import border_options, check_classes, check_snap, class_options, load_classes
from .options import BarProgress, model_options, non_negative, resolve_model, scale_options
from .run_outputs import declare


def add_parsers(sub) -> None:
    p = sub.add_parser("prelabel", help="pre-label a raster from a prompt layer, or automatically")
    p.add_argument("raster")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--prompts", help="points (one object each) or polygons (box prompts) in any CRS")
    what.add_argument("--auto", action="store_true", help="SAM's point grid over every tile")
    p.add_argument("--prompts-layer", help="layer of --prompts in a multi-layer file")
    p.add_argument("--class-field", help="field of the prompts holding the class; other fields become tags")
    p.add_argument("--class", dest="class_name", default="object", help="class when the prompt has none (default object)")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE", help="tag on every result; repeat")
    p.add_argument("--points-per-side", type=int, default=16, help="--auto: grid points per tile side")
    p.add_argument("--min-score", type=float, default=0.7, help="--auto: minimum predicted IoU")
    p.add_argument("--min-stability", type=float, default=0.85, help="--auto: minimum stability")
    p.add_argument("--min-area", type=non_negative, default=0.0, help="drop parts smaller than this (map units^2)")
    p.add_argument("--simplify", type=non_negative, default=0.0, help="simplification tolerance in map units")
    model_options(p)
    scale_options(p, unit="tiles (with --prompts: the prompts starting in that many tiles)")
    p.add_argument("--out", required=True, help="output layer: .gpkg, .geojson, .fgb, .shp, "
                   "or a PostGIS table: postgresql://USER@HOST:PORT/DB?table=labels or PG:\"dbname=DB table=labels\"")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--append", action="store_true")
    mode.add_argument("--overwrite", action="store_true")
    class_options(p)
    border_options(p)
    declare(p, outputs=("--out",), inputs=("raster", "--prompts", "--checkpoint", "--cache", "--classes"))
    p.set_defaults(run=cmd_prelabel)

    p = sub.add_parser("export-training", help="labels + raster -> image and mask chips and a COCO JSON")
    p.add_argument("raster")
    p.add_argument("--labels", required=True, help="polygon layer of labels (any CRS)")
    p.add_argument("--out", required=True, help="output folder (made whole or not at all)")
    p.add_argument("--class-field", default="class")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--overlap", type=int, default=0)
    p.add_argument("--min-labeled", type=float, default=0.0, help="skip chips with a smaller labelled fraction (0-1)")
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


def cmd_prelabel(args: argparse.Namespace) -> int:
    from ..core.batch.raster_job import RasterJob, prelabel_raster
    from ..core.batch.prelabel import PromptFeature
    from ..core.geo.prompts import parse_tags
    from ..core.outputs.vectors import LabelWriter, check_output, read_labels

    mode = "append" if args.append else "overwrite" if args.overwrite else "create"
    check_output(args.out, mode=mode)
    tags = parse_tags(args.tag or [])
    features = None
    if args.prompts:
        features = [PromptFeature(lab.geometry, lab.crs, str(lab.attributes.get(args.class_field) or "") if args.class_field else "",
                                  {**tags, **{k: str(v) for k, v in lab.attributes.items() if k != args.class_field and v not in (None, "")}})
                    for lab in read_labels(args.prompts, args.prompts_layer)]
    ontology, snap = load_classes(args), check_snap(args)
    check_classes([f.class_name or args.class_name for f in features or []] or [args.class_name], ontology, args.add_missing)
    model, settings = resolve_model(args)
    job = RasterJob(args.raster, args.bands, args.stretch, args.tile, args.overlap, args.gsd, scale=args.scale)
    cache = args.cache or (settings.cache_folder if model.cacheable else None)
    bar = BarProgress("pre-labeling" + (f" on {args.cluster}" if args.cluster else ""))
    run = prelabel_raster
    if args.cluster or args.resume or mode != "append":  # a manifest beside --out: a killed run can be resumed
        run = _scaled_prelabel(args, features, mode)
    try:
        with LabelWriter(args.out, mode=mode) as writer:  # objects go to disk as found; the file appears when whole
            if not args.no_overlap:
                result = run(job, model, features, cache, args.class_name, tags, args.points_per_side, args.min_score,
                             args.min_stability, args.simplify, args.min_area, progress=bar, on_label=writer.add)
            else:  # shared borders need every object first (the higher score wins), then the layer's labels
                from ..core.geo.shared_borders import share_borders_with_layer

                result = run(job, model, features, cache, args.class_name, tags, args.points_per_side, args.min_score,
                             args.min_stability, progress=bar)
                result.labels = share_borders_with_layer(result.labels, result.grid,
                                                         args.out if mode == "append" else None, snap=snap,
                                                         simplify=args.simplify, min_area=args.min_area)
                result.count = len(result.labels)
                for label in result.labels:
                    writer.add(label)
            if not result.count:
                if getattr(run, "manifest", None) is not None:
                    run.manifest.finish()  # the run is over: nothing to resume
                raise SegError("Pre-labeling found no object; nothing was written.")
    except BaseException as exc:  # writing --out failed: keep finished blocks only where --resume helps
        if getattr(run, "manifest", None) is not None:
            run.manifest.abandon(exc)
        raise
    finally:
        bar.close()
    if getattr(run, "manifest", None) is not None:
        run.manifest.finish()  # the output is whole: the resume manifest goes
    for number, reason in result.skipped:
        print(f"prompt {number} skipped: {reason}")
    print(f"{result.count} objects ({model.model_id}) -> {args.out}")
    return 0


def _scaled_prelabel(args: argparse.Namespace, features, mode: str):
    """prelabel_raster's signature over core.scale (blocks on a cluster, a resume manifest beside
    --out); the returned callable keeps the manifest in `.manifest` for removal once --out is whole."""
    from ..core.errors import SettingError
    from ..core.scale.runs import prelabel_scaled
    from .options import model_spec_from_args

    if args.resume and mode == "append":
        raise SettingError("--resume cannot be combined with --append (a killed append added nothing; just run it again).")
    spec = model_spec_from_args(args) if args.cluster else None

    def run(job, model, _features, cache, class_name, tags, points_per_side, min_score, min_stability,
            simplify=0.0, min_area=0.0, progress=None, on_label=None):
        result, run.manifest = prelabel_scaled(job, model, features, spec, cache, class_name, tags, points_per_side,
                                               min_score, min_stability, simplify, min_area, cluster=args.cluster,
                                               output=args.out, resume=args.resume, block_tiles=args.block_tiles,
                                               progress=progress, on_label=on_label)
        return result

    run.manifest = None
    return run


def cmd_export_training(args: argparse.Namespace) -> int:
    from ..core.outputs.training_data import export_training_data
    from ..core.outputs.vectors import read_labels

    import warnings

    from ..core.errors import SegWarning

    dataset_format, image_format = args.format or "coco", args.image_format
    if args.format in ("tif", "png"):
        warnings.warn(f"--format {args.format} is now --image-format {args.format}; --format names the dataset format "
                      f"(coco, voc, yolo) and the old spelling goes in the next release.", SegWarning, stacklevel=1)
        dataset_format, image_format = "coco", image_format or args.format
    if args.aoi and args.split_by in ("block", "random"):
        raise SegError("--aoi needs --split-by FIELD, the field of the AOI layer that says train, val or test.")
    ontology = load_classes(args)
    labels = read_labels(args.labels)
    aoi = read_labels(args.aoi) if args.aoi else None
    bar = BarProgress("exporting chips")
    try:
        summary = export_training_data(args.raster, labels, args.out, args.tile, args.overlap, class_field=args.class_field,
                                       min_labeled_fraction=args.min_labeled, image_format=image_format,
                                       overwrite=args.overwrite, progress=bar, ontology=ontology,
                                       add_missing=args.add_missing, dataset_format=dataset_format, split=args.split,
                                       split_by=args.split_by, aoi=aoi, seed=args.seed, augment=args.augment,
                                       block_size=args.block_size)
    finally:
        bar.close()
    splits = ", ".join(f"{name} {n}" for name, n in summary.splits.items())
    print(f"{summary.chips} chips ({splits}), {summary.augmented} augmented, {summary.annotations} annotations, "
          f"classes {summary.categories} -> {summary.coco_path}")
    for reason, n in summary.skipped.items():
        print(f"{n} chips skipped: {reason}")
    print(f"report: {summary.report_path}")
    return 0
