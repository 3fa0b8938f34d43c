"""`seg propagate`, `seg change`, `seg drift`: labels carried through dates, what changed, and where
the dates' images differ."""
from __future__ import annotations

import argparse

from .options import BarProgress, model_options
from .run_outputs import declare


def add_parsers(sub) -> None:
    p = sub.add_parser("propagate", help="carry labels of one date through rasters of other dates (one layer, track_id per object)")
    p.add_argument("labels", help="polygon layer of labels; each feature's date from its `date` field or --start-date")
    p.add_argument("rasters", nargs="+", help="rasters of the same area on other dates (include the labels' own raster so "
                   "lost objects can be told by their look from the first step on)")
    p.add_argument("--out", required=True, help="output layer (.gpkg, .geojson, .fgb, .shp): the whole series")
    p.add_argument("--layer", help="layer of LABELS in a multi-layer file")
    p.add_argument("--dates", help="one date per raster, comma separated (YYYY-MM-DD); default: metadata, then file name")
    p.add_argument("--start-date", help="date of labels that have none (YYYY-MM-DD)")
    p.add_argument("--classes", help="only these classes, comma separated")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE", help="tag on every propagated feature; repeat")
    p.add_argument("--min-score", type=float, default=0.5,
                   help="answers the model scores lower are not trusted: `uncertain`, unless the object is seen gone (default 0.5)")
    p.add_argument("--simplify", type=float, default=0.0, help="simplification tolerance in map units")
    p.add_argument("--ontology", help="ontology file; a class's \"index\" (ndwi, ndvi) checks it on each date")
    p.add_argument("--index-bands", metavar="RED,GREEN,NIR", help="band numbers for the index check (default: from the raster)")
    p.add_argument("--overwrite", action="store_true")
    model_options(p)
    declare(p, outputs=("--out",), inputs=("labels", "rasters", "--checkpoint", "--cache", "--ontology"))
    p.set_defaults(run=cmd_propagate)

    p = sub.add_parser("change", help="areas gained and lost, and IoU, between consecutive dates of a labelled series")
    p.add_argument("labels", help="a series layer (e.g. from seg propagate): every feature has a `date`")
    p.add_argument("--out", required=True, help="JSON report: {\"rows\": [...], \"tracks\": [...]}")
    p.add_argument("--layer", help="layer of LABELS in a multi-layer file")
    p.add_argument("--csv", help="also write the rows as CSV")
    p.add_argument("--changes", help="also write the gained and lost geometries as a styled layer (.gpkg)")
    p.add_argument("--png", help="also draw the gained and lost areas as a PNG")
    p.add_argument("--by", choices=["class", "track"], default="class", help="one row per class (default) or per track")
    p.add_argument("--overwrite", action="store_true")
    declare(p, outputs=("--out", "--csv", "--changes", "--png"), inputs=("labels",))
    p.set_defaults(run=cmd_change)

    p = sub.add_parser("drift", help="per tile and pair of dates, how much the image changed (where to trust labels least)")
    p.add_argument("rasters", nargs="+", help="two or more rasters of the same area on different dates")
    p.add_argument("--out", required=True, help="output layer of tiles (.gpkg keeps the summary in its metadata)")
    p.add_argument("--tile", type=int, default=256, help="tile size in pixels of the earliest raster (default 256)")
    p.add_argument("--threshold", type=float,
                   help="flag tiles whose local drift exceeds this (0..1; default: each pair's from the series, a robust z-score)")
    p.add_argument("--dates", help="one date per raster, comma separated (YYYY-MM-DD); default: metadata, then file name")
    p.add_argument("--cache", action="append", metavar="DATE=FOLDER", help="SAM embedding cache of one date; with two or "
                   "more, embedding_drift is added; repeat")
    p.add_argument("--per-raster", action="store_true", help="see each date under its own stretch instead of the earliest one's")
    p.add_argument("--bands", type=lambda t: tuple(int(v) for v in t.split(",")), help="bands for the three channels, e.g. 4,3,2")
    p.add_argument("--stretch", type=lambda t: tuple(float(v) for v in t.split(",")), help="MIN,MAX value range for every date")
    p.add_argument("--png", help="also draw the drift map as a PNG")
    p.add_argument("--overwrite", action="store_true")
    declare(p, outputs=("--out", "--png"), inputs=("rasters",))
    p.set_defaults(run=cmd_drift)


def cmd_propagate(args: argparse.Namespace) -> int:
    from ..core.jobs import propagate

    request = propagate.Request(args.labels, args.rasters, out=args.out, layer=args.layer, dates=args.dates,
                                start_date=args.start_date, classes=args.classes, tags=args.tag or (), min_score=args.min_score,
                                simplify=args.simplify, ontology=args.ontology, index_bands=args.index_bands, overwrite=args.overwrite,
                                **model_fields(args))
    bar = BarProgress("propagating")
    try:
        result = propagate.run(request, bar)
    finally:
        bar.close()
    for note in result.notes:
        print(note)
    print(propagate.summary_line(result, args.out))
    return 0


def cmd_change(args: argparse.Namespace) -> int:
    from ..core.jobs import change

    request = change.Request(args.labels, out=args.out, layer=args.layer, csv=args.csv, changes=args.changes, png=args.png,
                             by=args.by, overwrite=args.overwrite)
    result = change.run(request)
    for row in result.rows:
        print(change.row_line(row, args.by))
    print(f"{len(result.rows)} rows, {len(result.details['tracks'])} tracks -> {args.out}")
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    from ..core.jobs import drift

    request = drift.Request(args.rasters, out=args.out, tile=args.tile, threshold=args.threshold, dates=args.dates,
                            cache=args.cache or (), per_raster=args.per_raster, bands=args.bands, stretch=args.stretch,
                            png=args.png, overwrite=args.overwrite)
    bar = BarProgress("drift")
    try:
        result = drift.run(request, bar)
    finally:
        bar.close()
    print("\n".join(result.details["summary_lines"]))
    print(f"{result.count} tile records -> {args.out}" + (f", picture {args.png}" if args.png else ""))
    return 0


def model_fields(args: argparse.Namespace) -> dict:
    """The model and raster options (options.model_options) as request fields."""
    return dict(checkpoint=args.checkpoint, model_type=args.model_type, backend=args.backend, device=args.device,
                threads=args.threads or 0, precision="bf16" if args.bf16 else "auto", bands=args.bands, stretch=args.stretch,
                tile=args.tile, overlap=args.overlap, scale=args.scale, gsd=args.gsd, cache=args.cache, float16=args.float16)
