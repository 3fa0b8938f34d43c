"""`seg`: the engine from a terminal. User mistakes print one sentence and exit 2."""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import List, Optional

from . import assist, batch, models, quality, timeseries
from .classes import border_options, check_classes, check_snap, class_options, load_classes
from .number_options import apply_ranges
from .options import BarProgress, model_options, non_negative, open_segmenter_from_args, prune_cache, scale_options
from .redaction import passwords_hidden
from .run_outputs import declare, guarded
from ..core.errors import SegError, SegWarning

_python_show_warning = warnings.showwarning


def cmd_info(args) -> int:
    from ..core.geo.radiometry import compute_radiometry
    from ..core.geo.raster import RasterSource

    with RasterSource(args.raster) as src:
        info = src.info()
        radiometry = compute_radiometry(src)
    res = info.resolution
    facts = {
        "path": info.path, "size": f"{info.width} x {info.height}", "bands": f"{info.count} ({', '.join(info.band_names)})",
        "dtype": info.dtype, "crs": info.crs_name, "resolution": f"{res[0]:g} x {res[1]:g}", "nodata": info.nodata,
        "overviews": list(info.overviews), "suggested bands": ",".join(map(str, radiometry.bands)),
        "suggested stretch": [f"{lo:g}..{hi:g}" for lo, hi in zip(radiometry.low, radiometry.high)],
    }
    if args.json:
        print(json.dumps(facts, indent=2))
    else:
        for key, value in facts.items():
            print(f"{key:>18}: {value}")
    return 0


def cmd_encode(args) -> int:
    if not args.checkpoint:
        raise SegError("Encoding needs a SAM checkpoint; give --checkpoint (the classic backend has nothing to cache).")
    args.backend = "sam"
    if args.cluster:
        return _encode_on_cluster(args)
    segmenter, settings = open_segmenter_from_args(args)
    bar = BarProgress(f"encoding {len(segmenter.grid)} tiles")
    try:
        counts = segmenter.encode(progress=bar)
    finally:
        bar.close()
    prune_cache(segmenter, settings)
    print(f"{counts['encoded']} tiles encoded, {counts['cached']} already cached, {counts['nodata']} skipped (all nodata) in {segmenter.cache.folder}")
    return 0


def _encode_on_cluster(args) -> int:
    from ..core.batch.raster_job import RasterJob
    from ..core.scale.runs import encode_blocks
    from .options import model_spec_from_args, resolve_model

    model, settings = resolve_model(args)
    cache = args.cache or settings.cache_folder
    job = RasterJob(args.raster, args.bands, args.stretch, args.tile, args.overlap, args.gsd, scale=args.scale)
    bar = BarProgress(f"encoding on {args.cluster}")
    try:
        counts = encode_blocks(job, model, model_spec_from_args(args), cache, args.cluster, args.float16,
                               block_tiles=args.block_tiles, progress=bar)
    finally:
        bar.close()
    print(f"{counts.get('encoded', 0)} tiles encoded, {counts.get('cached', 0)} already cached, "
          f"{counts.get('nodata', 0)} skipped (all nodata) in {cache}")
    return 0


def cmd_segment(args) -> int:
    from ..core.engine.labeling import segment_prompts
    from ..core.outputs.label_rasters import check_output as check_raster_output, rasterize_labels, write_probability
    from ..core.geo.prompts import Prompt, parse_box, parse_point, parse_tags
    from ..core.outputs.vectors import check_output, write_labels

    if not args.point and not args.box:
        raise SegError("Give at least one --point or a --box.")
    tags = parse_tags(args.tag or [])
    points = [parse_point(p) for p in args.point or []]
    box = parse_box(args.box) if args.box else None
    mode = "append" if args.append else "overwrite" if args.overwrite else "create"
    check_output(args.out, mode=mode)
    ontology, snap = load_classes(args), check_snap(args)
    check_classes([args.class_name], ontology, args.add_missing)
    for extra in (args.probability, args.class_raster):
        if extra:
            check_raster_output(extra, args.overwrite)
    segmenter, settings = open_segmenter_from_args(args)
    crs = args.prompt_crs or segmenter.source.crs.to_wkt()
    prompt = Prompt(crs=crs, points=tuple(p for p, _ in points), labels=tuple(label for _, label in points), box=box)
    clean = (args.simplify, args.min_area, args.fill_holes)
    labels, segmentations = segment_prompts(segmenter, [prompt], args.class_name, tags, *((0.0, 0.0, 0.0) if args.no_overlap else clean))
    prune_cache(segmenter, settings)
    found = bool(labels)
    if args.no_overlap and labels:
        from ..core.geo.shared_borders import share_borders_with_layer

        labels = share_borders_with_layer(labels, segmentations[0].transform, args.out if mode == "append" else None,
                                          snap=snap, simplify=args.simplify, min_area=args.min_area, fill_holes=args.fill_holes)
    if not labels:
        raise SegError("The object found lies entirely under existing labels; nothing was added." if found
                       else "The model found no object at this prompt; try another point or a box.")
    write_labels(labels, args.out, crs=args.out_crs, mode=mode)
    if args.probability:
        write_probability(segmentations[0], args.probability, overwrite=args.overwrite)
    if args.class_raster:
        rasterize_labels(labels, args.raster, args.class_raster, overwrite=args.overwrite, ontology=ontology,
                         add_missing=args.add_missing)
    s = segmentations[0]
    print(f"{args.class_name}: {labels[0].geometry.area:.6g} map units^2, score {s.score:.3f}, "
          f"{len(s.tiles)} tile(s){'' if s.complete else ' (object goes on beyond the tile limit)'}, "
          f"model {segmenter.backend.model_id} -> {args.out}")
    return 0


def cmd_polygonize(args) -> int:
    from ..core.outputs.label_rasters import polygonize_raster
    from ..core.outputs.vectors import check_output, write_labels

    mode = "overwrite" if args.overwrite else "create"
    check_output(args.out, mode=mode)
    ontology = load_classes(args)
    bar = BarProgress("polygonizing")
    try:
        labels = polygonize_raster(args.mask, args.class_field, args.kind, progress=bar, ontology=ontology,
                                   add_missing=args.add_missing)
    finally:
        bar.close()
    if not labels:
        raise SegError(f"{args.mask} holds no labelled pixels (all 0 or nodata).")
    write_labels(labels, args.out, mode=mode)
    print(f"{len(labels)} features -> {args.out}")
    return 0


def cmd_rasterize(args) -> int:
    from ..core.outputs.label_rasters import rasterize_labels
    from ..core.outputs.vectors import read_labels

    ontology = load_classes(args)
    labels = read_labels(args.labels, args.layer)
    bar = BarProgress("rasterizing")
    try:
        classes = rasterize_labels(labels, args.like, args.out, args.field, args.kind, args.overwrite, bar,
                                   ontology=ontology, add_missing=args.add_missing)
    finally:
        bar.close()
    legend = ", ".join(f"{v}={k}" for k, v in sorted(classes.items(), key=lambda kv: kv[1]))
    print(f"{len(labels)} features -> {args.out}" + (f" ({legend})" if legend else ""))
    return 0


def cmd_demo(args) -> int:
    from ..demo.run import run_demo

    run_demo(args.out, checkpoint=args.checkpoint, report=print)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seg", description="Segment Anything for maps.",
                                     epilog="exit codes: 0 done, 2 a mistake (one sentence, nothing written), 130 interrupted; "
                                            "seg qa also exits 1 when it finds problems (see seg qa --help)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="describe a raster and suggest bands and stretch")
    p.add_argument("raster")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("encode", help="pre-compute SAM embeddings into a cache folder (resumable)")
    p.add_argument("raster")
    model_options(p)
    scale_options(p)  # --resume is accepted: encoding always skips what the cache holds
    p.set_defaults(run=cmd_encode)

    p = sub.add_parser("segment", help="segment one object from points and/or a box")
    p.add_argument("raster")
    p.add_argument("--point", action="append", metavar="X,Y[,+|-]", help="a point; + (default) on the object, - off it; repeat")
    p.add_argument("--box", metavar="XMIN,YMIN,XMAX,YMAX")
    p.add_argument("--prompt-crs", help="CRS of the prompt coordinates (default: the raster's), e.g. EPSG:4326")
    model_options(p)
    p.add_argument("--class", dest="class_name", required=True, help="class of the object, e.g. pond")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE", help="context tag, e.g. date=2024-06-01; repeat")
    p.add_argument("--out", required=True, help="output layer: .gpkg (default), .geojson, .fgb or .shp")
    p.add_argument("--out-crs", help="CRS of a new output layer (default: the raster's)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--append", action="store_true", help="add to an existing layer, keeping its features")
    mode.add_argument("--overwrite", action="store_true")
    p.add_argument("--simplify", type=non_negative, default=0.0, help="simplification tolerance in map units")
    p.add_argument("--min-area", type=non_negative, default=0.0, help="drop parts smaller than this (map units^2)")
    p.add_argument("--fill-holes", type=non_negative, default=0.0, help="fill holes smaller than this (map units^2)")
    p.add_argument("--probability", metavar="OUT.tif", help="also write the mask probability GeoTIFF")
    p.add_argument("--class-raster", metavar="OUT.tif", help="also write a class GeoTIFF on the raster's grid")
    class_options(p)
    border_options(p)
    declare(p, outputs=("--out", "--probability", "--class-raster"), inputs=("raster", "--checkpoint", "--cache", "--classes"))
    p.set_defaults(run=cmd_segment)

    p = sub.add_parser("polygonize", help="a class or instance raster to polygons")
    p.add_argument("mask")
    p.add_argument("--out", required=True)
    p.add_argument("--class-field", default="class")
    p.add_argument("--kind", choices=["class", "instance"], default="class")
    p.add_argument("--overwrite", action="store_true")
    class_options(p)
    declare(p, outputs=("--out",), inputs=("mask", "--classes"))
    p.set_defaults(run=cmd_polygonize)

    p = sub.add_parser("rasterize", help="labels to a class raster on exactly a given raster's grid")
    p.add_argument("labels")
    p.add_argument("--like", required=True, help="raster whose grid (size, transform, CRS) the output takes")
    p.add_argument("--out", required=True)
    p.add_argument("--field", default="class")
    p.add_argument("--layer")
    p.add_argument("--kind", choices=["class", "instance"], default="class")
    p.add_argument("--overwrite", action="store_true")
    class_options(p)
    declare(p, outputs=("--out",), inputs=("labels", "--like", "--classes"))
    p.set_defaults(run=cmd_rasterize)

    p = sub.add_parser("demo", help="segment a synthetic orthomosaic end to end, offline")
    p.add_argument("--out", default="demo-output")
    p.add_argument("--checkpoint", help="use SAM with this checkpoint instead of the classic backend")
    declare(p, outputs=("--out",), inputs=("--checkpoint",), folders=("--out",))
    p.set_defaults(run=cmd_demo)
    for commands in (batch, models, quality, timeseries, assist):
        commands.add_parsers(sub)
    apply_ranges(parser)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """SegWarnings as one line, like errors; other warnings as Python shows them."""
    if issubclass(category, SegWarning):
        print(f"seg: warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning
    with passwords_hidden(args):
        try:
            with guarded(args):
                return args.run(args)
        except SegError as exc:
            print(f"seg: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("seg: interrupted; nothing half-written was left behind.", file=sys.stderr)
            return 130

