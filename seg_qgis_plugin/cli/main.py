"""`seg`: the engine from a terminal. User mistakes print one sentence and exit 2."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import warnings
from typing import List, Optional

from . import assist, batch, models, quality, timeseries, training
from .classes import border_options, class_options
from .number_options import apply_ranges
from .options import BarProgress, make_request, model_fields, model_options, non_negative, raster_fields, scale_options
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
    from ..core.jobs import encode

    request = make_request(encode.Request, args.raster, float16=args.float16, cluster=args.cluster,
                           block_tiles=args.block_tiles, resume=args.resume, **model_fields(args), **raster_fields(args))
    bar = BarProgress("encoding" + (f" on {args.cluster}" if args.cluster else ""))
    try:
        result = encode.run(request, bar)
    finally:
        bar.close()
    for line in encode.describe(request, result):
        print(line)
    return 0


def cmd_segment(args) -> int:
    from ..core.geo.prompts import parse_box, parse_point, parse_tags
    from ..core.jobs import segment

    if not args.point and not args.box:
        raise SegError("Give at least one --point or a --box.")
    points = tuple((*p, label) for p, label in (parse_point(text) for text in args.point or []))
    request = make_request(
        segment.Request, args.raster, points=points, box=parse_box(args.box) if args.box else None,
        prompt_crs=args.prompt_crs, class_name=args.class_name, tags=parse_tags(args.tag or []), out=args.out,
        out_crs=args.out_crs, mode="append" if args.append else "overwrite" if args.overwrite else "create",
        simplify=args.simplify, min_area=args.min_area, fill_holes=args.fill_holes, probability=args.probability,
        class_raster=args.class_raster, no_overlap=args.no_overlap, snap=args.snap, classes=args.classes,
        add_missing=args.add_missing, **model_fields(args), **raster_fields(args))
    result = segment.run(request)
    d = result.details
    print(f"{args.class_name}: {d['area']:.6g} map units^2, score {d['score']:.3f}, "
          f"{d['tiles']} tile(s){'' if d['complete'] else ' (object goes on beyond the tile limit)'}, "
          f"model {d['model']} -> {args.out}")
    return 0


def cmd_polygonize(args) -> int:
    from ..core.jobs import polygonize

    request = make_request(polygonize.Request, args.mask, out=args.out, mode="overwrite" if args.overwrite else "create",
                           class_field=args.class_field, kind=args.kind, classes=args.classes, add_missing=args.add_missing)
    bar = BarProgress("polygonizing")
    try:
        result = polygonize.run(request, bar)
    finally:
        bar.close()
    print(f"{result.count} features -> {args.out}")
    return 0


def cmd_rasterize(args) -> int:
    from ..core.jobs import rasterize

    request = make_request(rasterize.Request, args.labels, args.like, args.out, field=args.field, layer=args.layer,
                           kind=args.kind, overwrite=args.overwrite, classes=args.classes, add_missing=args.add_missing)
    bar = BarProgress("rasterizing")
    try:
        result = rasterize.run(request, bar)
    finally:
        bar.close()
    for line in rasterize.describe(request, result):
        print(line)
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
    for commands in (batch, training, models, quality, timeseries, assist):
        commands.add_parsers(sub)
    apply_ranges(parser)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """SegWarnings as one line, like errors; other warnings as Python shows them."""
    if issubclass(category, SegWarning):
        print(f"seg: warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


def _interrupted(signum, frame):
    """Ctrl+C: from here on, objects torn down half-built (a progress bar stopped inside its
    constructor) stay quiet, so the user reads the one sentence below and nothing else."""
    sys.unraisablehook = lambda unraisable: None
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted)
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

