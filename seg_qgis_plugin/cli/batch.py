"""`seg prelabel`: the Processing provider's batch pre-labeling from a terminal,
so a GPU server without QGIS can do them too."""
from __future__ import annotations

import argparse

from .classes import border_options, class_options
from .options import BarProgress, make_request, model_fields, model_options, non_negative, raster_fields, scale_options
from .run_outputs import declare


def add_parsers(sub) -> None:
    p = sub.add_parser("prelabel", help="pre-label a raster from a prompt layer, or automatically")
    p.add_argument("raster")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--prompts", help="points (one object each) or polygons (box prompts) in any CRS")
    what.add_argument("--auto", action="store_true", help="SAM's point grid over every tile")
    p.add_argument("--text", action="append", metavar="PHRASE[=CLASS]",
                   help="every instance of a phrase (SAM 3), e.g. pond or pond=water; repeat")
    p.add_argument("--exemplars", metavar="LAYER", help="example objects (boxes or polygons): every instance like them "
                   "(SAM 3, or by likeness with any other model)")
    p.add_argument("--exemplars-layer", help="layer of --exemplars in a multi-layer file")
    p.add_argument("--exemplar-field", help="field of --exemplars whose 0/false/no/negative marks a negative example")
    p.add_argument("--prompts-layer", help="layer of --prompts in a multi-layer file")
    p.add_argument("--class-field", help="field of the prompts holding the class; other fields become tags")
    p.add_argument("--class", dest="class_name", default="object", help="class when the prompt has none (default object)")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE", help="tag on every result; repeat")
    p.add_argument("--points-per-side", type=int, default=16, help="--auto: grid points per tile side")
    p.add_argument("--min-score", type=float, help="--auto: minimum predicted IoU (default 0.7); --text/--exemplars: "
                   "minimum score (default 0.5)")
    p.add_argument("--min-stability", type=float, default=0.85, help="--auto: minimum stability")
    p.add_argument("--min-area", type=non_negative, default=0.0, help="drop parts smaller than this (map units^2)")
    p.add_argument("--simplify", type=non_negative, default=0.0, help="simplification tolerance in map units")
    model_options(p)
    scale_options(p, unit="tiles (with --prompts: the prompts starting in that many tiles)")
    p.add_argument("--out", required=True, help="output layer: .gpkg, .geojson, .fgb, .shp, "
                   "or a PostGIS table: postgresql://USER@HOST:PORT/DB?table=labels or PG:\"dbname=DB table=labels\"")
    p.add_argument("--class-raster", metavar="OUT.tif", help="also write a class GeoTIFF on the raster's grid")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--append", action="store_true")
    mode.add_argument("--overwrite", action="store_true")
    class_options(p)
    border_options(p)
    declare(p, outputs=("--out", "--class-raster"), inputs=("raster", "--prompts", "--checkpoint", "--cache", "--classes", "--exemplars"))
    p.set_defaults(run=cmd_prelabel)


def cmd_prelabel(args: argparse.Namespace) -> int:
    from ..core.errors import SettingError
    from ..core.geo.prompts import parse_tags
    from ..core.jobs import prelabel

    mode = "append" if args.append else "overwrite" if args.overwrite else "create"
    concepts = bool(args.text or args.exemplars)
    if not (args.prompts or args.auto or concepts):
        raise SettingError("Say what to find: --prompts LAYER, --auto, --text PHRASE or --exemplars LAYER.")
    if args.auto and concepts:
        raise SettingError("--auto finds everything; --text and --exemplars find one kind of thing. Choose one.")
    min_score = args.min_score if args.min_score is not None else 0.5 if concepts else 0.7
    request = make_request(
        prelabel.Request, args.raster, prompts=args.prompts, prompts_layer=args.prompts_layer, class_field=args.class_field,
        class_name=args.class_name, tags=parse_tags(args.tag or []), points_per_side=args.points_per_side,
        texts=tuple(args.text or ()), exemplars=args.exemplars, exemplars_layer=args.exemplars_layer,
        exemplar_field=args.exemplar_field, min_score=min_score, min_stability=args.min_stability, simplify=args.simplify, min_area=args.min_area,
        out=args.out, class_raster=args.class_raster, mode=mode, no_overlap=args.no_overlap, snap=args.snap, classes=args.classes,
        add_missing=args.add_missing, cluster=args.cluster, block_tiles=args.block_tiles, resume=args.resume,
        **model_fields(args), **raster_fields(args))
    bar = BarProgress("pre-labeling" + (f" on {args.cluster}" if args.cluster else ""))
    try:
        result = prelabel.run(request, bar)
    finally:
        bar.close()
    for note in result.notes:
        print(note)
    print(f"{result.count} objects ({result.details['model']}) -> {args.out}")
    return 0
