"""`seg assist` and `seg rank-tiles`: the assistant that learns from accepted labels, and the tiles
to label next."""
from __future__ import annotations

import argparse

from ..core.errors import SegError
from .classes import class_options
from .options import BarProgress, make_request, parse_bands, scale_options
from .run_outputs import declare


def add_parsers(sub) -> None:
    p = sub.add_parser("assist", help="learn from labels (or a saved model) and pre-label the whole raster")
    p.add_argument("raster")
    p.add_argument("--labels", help="labels to learn from, any CRS: small squares or scribbles of every class, not whole objects")
    p.add_argument("--labels-layer", help="layer of --labels in a multi-layer file")
    p.add_argument("--out", required=True, help="pre-label polygons: .gpkg, .geojson, .fgb or .shp")
    p.add_argument("--probability", metavar="PROB.tif", help="probability GeoTIFF, one band per written class")
    p.add_argument("--uncertainty", metavar="UNC.tif", help="uncertainty GeoTIFF (0 sure .. 1 unsure)")
    p.add_argument("--uncertainty-measure", choices=["entropy", "margin"], default="entropy",
                   help="normalized entropy of the class probabilities (default) or 1 - (best - second best)")
    p.add_argument("--class-field", default="class", help="field of --labels holding the class (default class)")
    p.add_argument("--background", default="background", help="class learned but not written out (default background)")
    p.add_argument("--status", action="append", help="learn only from labels with this status (repeat; default: all but rejected)")
    p.add_argument("--save-model", metavar="FILE", help="save the learned model (JSON: no pickle) to apply it to other rasters")
    p.add_argument("--model", metavar="FILE", help="apply a saved model instead of learning")
    p.add_argument("--cache", metavar="EMB", help="embedding cache of this raster (seg encode): adds SAM features")
    p.add_argument("--checkpoint", help="SAM checkpoint or model name, for --refine sam (and to pick the cache's model)")
    p.add_argument("--bands", type=parse_bands, help="bands to learn from, e.g. 1,2,3,4 (default: all)")
    p.add_argument("--refine", choices=["sam"], help="sam: each blob's box becomes a SAM prompt for crisp outlines")
    p.add_argument("--smooth", type=float, default=0.0, help="Gaussian smoothing of the probabilities, in pixels (default 0: none; 1-2 gives smoother outlines but loses thin parts)")
    p.add_argument("--min-area", type=float, default=0.0, help="drop polygons smaller than this (map units^2)")
    p.add_argument("--simplify", type=float, default=0.0, help="simplification tolerance in map units")
    p.add_argument("--threads", type=int, default=0, help="threads for prediction (default: all cores)")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE", help="tag on every result; repeat")
    class_options(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--append", action="store_true")
    mode.add_argument("--overwrite", action="store_true", help="replace existing outputs (layer, rasters, model)")
    scale_options(p, unit="windows (up to 1024 x 1024 pixels)")
    declare(p, outputs=("--out", "--probability", "--uncertainty", "--save-model"),
            inputs=("raster", "--labels", "--model", "--cache", "--checkpoint", "--classes"))
    p.set_defaults(run=cmd_assist)

    p = sub.add_parser("rank-tiles", help="tiles ranked by how much labeling them would help, the next N as a layer")
    p.add_argument("raster")
    p.add_argument("--out", required=True, help="layer of the chosen tiles (rank 1 first)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--uncertainty", metavar="UNC.tif", help="uncertainty GeoTIFF from seg assist --uncertainty")
    what.add_argument("--model", metavar="FILE", help="a saved assistant model, run on every tile")
    p.add_argument("--labels", metavar="L", help="labels already made (their tiles count as labelled)")
    p.add_argument("--top", type=int, default=20, help="how many tiles to write (default 20)")
    p.add_argument("--tile", type=int, default=256, help="tile size in pixels (default 256)")
    p.add_argument("--overwrite", action="store_true")
    declare(p, outputs=("--out",), inputs=("raster", "--uncertainty", "--model", "--labels"))
    p.set_defaults(run=cmd_rank_tiles)


def cmd_assist(args: argparse.Namespace) -> int:
    from ..core.geo.prompts import parse_tags
    from ..core.jobs import assist

    if not args.labels and not args.model:
        raise SegError("Give --labels to learn from or --model to apply a saved model.")
    if args.labels and args.model:
        raise SegError("Give --labels or --model, not both: a saved model is applied as it is.")
    if args.refine and not args.checkpoint:
        raise SegError("--refine sam needs a SAM checkpoint; give --checkpoint.")
    mode = "append" if args.append else "overwrite" if args.overwrite else "create"
    request = make_request(
        assist.Request, args.raster, labels=args.labels, labels_layer=args.labels_layer, model=args.model, out=args.out, mode=mode,
        probability=args.probability, uncertainty=args.uncertainty, uncertainty_measure=args.uncertainty_measure,
        class_field=args.class_field, background=args.background, status=tuple(args.status) if args.status else None,
        save_model=args.save_model, cache=args.cache, checkpoint=args.checkpoint, bands=args.bands, refine=args.refine,
        smooth=args.smooth, min_area=args.min_area, simplify=args.simplify, tags=parse_tags(args.tag or []),
        threads=args.threads or 0, cluster=args.cluster, block_tiles=args.block_tiles, resume=args.resume,
        classes=args.classes, add_missing=args.add_missing)
    bar = BarProgress(("learning and pre-labeling" if args.labels else "pre-labeling")
                      + (f" on {args.cluster}" if args.cluster else ""))
    try:
        result = assist.run(request, bar)
    finally:
        bar.close()
    for line in assist.describe(request, result):
        print(line)
    for key, path in result.outputs.items():
        print(f"{key:>12}: {path}")
    return 0


def cmd_rank_tiles(args: argparse.Namespace) -> int:
    from ..core.jobs import rank_tiles

    request = make_request(rank_tiles.Request, args.raster, uncertainty=args.uncertainty, model=args.model, labels=args.labels,
                           top=args.top, tile=args.tile, out=args.out, mode="overwrite" if args.overwrite else "create")
    bar = BarProgress("ranking tiles")
    try:
        result = rank_tiles.run(request, bar)
    finally:
        bar.close()
    print(result.details["table"])
    print(f"{result.count} tiles -> {args.out}")
    return 0
