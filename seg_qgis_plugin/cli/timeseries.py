"""`seg propagate`, `seg change`, `seg drift`: labels carried through dates, what changed, and where
the dates' images differ."""
from __future__ import annotations

import argparse
import os

from ..core.errors import OutputError, SegError
from .options import BarProgress, model_options, resolve_model
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
    p.add_argument("--min-score", type=float, default=0.5, help="answers the model scores lower are `lost` (default 0.5)")
    p.add_argument("--simplify", type=float, default=0.0, help="simplification tolerance in map units")
    p.add_argument("--overwrite", action="store_true")
    model_options(p)
    declare(p, outputs=("--out",), inputs=("labels", "rasters", "--checkpoint", "--cache"))
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
    p.add_argument("--threshold", type=float, default=0.1, help="tiles above this drift are flagged (0..1, default 0.1)")
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
    from ..core.geo.prompts import parse_tags
    from ..core.outputs.vectors import check_output, read_labels, write_labels
    from ..core.timeseries.dates import dated_series, parse_date
    from ..core.timeseries.propagate import TRACK_FIELDS, propagate

    mode = "overwrite" if args.overwrite else "create"
    check_output(args.out, mode=mode, fields=TRACK_FIELDS)
    start = parse_date(args.start_date) if args.start_date else None
    if args.start_date and start is None:
        raise SegError(f"--start-date {args.start_date!r} is not a date; write YYYY-MM-DD.")
    series = dated_series(args.rasters, _split(args.dates))
    labels = read_labels(args.labels, args.layer)
    tags = parse_tags(args.tag or [])
    model, settings = resolve_model(args)
    cache = None
    if model.cacheable and (args.cache or settings.cache_folder):
        from ..core.engine.embedding_cache import EmbeddingCache

        cache = EmbeddingCache(args.cache or settings.cache_folder, args.float16)
    bar = BarProgress("propagating")
    try:
        result = propagate(labels, series, model, start, _split(args.classes), tags, args.bands, args.stretch, args.tile,
                           args.overlap, cache, args.min_score, args.simplify, progress=bar)
    finally:
        bar.close()
    write_labels(result.labels, args.out, mode=mode, fields=TRACK_FIELDS)
    for note in result.notes:
        print(note)
    per = result.seconds / max(result.steps, 1)
    print(f"{len(result.labels)} features over {len(series)} dates: {result.counts['prelabel']} found, {result.counts['lost']} lost, "
          f"{result.counts['outside']} outside ({model.model_id}, {per:.2f} s per object per date) -> {args.out}")
    return 0


def cmd_change(args: argparse.Namespace) -> int:
    from ..core.outputs.atomic import write_json_atomic, write_text_atomic
    from ..core.outputs.vectors import check_output, read_labels, write_labels
    from ..core.timeseries.change import CHANGE_FIELDS, COLOURS, change_report
    from ..core.timeseries.styles import add_gpkg_style, categorized_qml

    for path in (args.out, args.csv, args.png):
        _check_file(path, args.overwrite)
    if args.changes:
        check_output(args.changes, mode="overwrite" if args.overwrite else "create", fields=CHANGE_FIELDS)
    labels = read_labels(args.labels, args.layer)
    report = change_report(labels, by=args.by)
    if args.changes:
        layer = os.path.splitext(os.path.basename(args.changes))[0]
        finish = (lambda tmp: add_gpkg_style(tmp, layer, categorized_qml("change", COLOURS))) if args.changes.lower().endswith(".gpkg") else None
        write_labels(report.changes, args.changes, crs=labels[0].crs, mode="overwrite" if args.overwrite else "create",
                     fields=CHANGE_FIELDS, finish=finish)
    write_json_atomic(args.out, report.to_json())
    if args.csv:
        write_text_atomic(args.csv, report.to_csv())
    if args.png:
        from ..core.timeseries.pictures import change_png

        change_png(report, args.png)
    for row in report.rows:
        who = f"track {row['track_id']}" if args.by == "track" else row["class"]
        iou = "-" if row["iou"] is None else f"{row['iou']:.3f}"
        print(f"{who}: {row['date_from']} -> {row['date_to']}: {row['area_from']:,.1f} -> {row['area_to']:,.1f} m2, "
              f"+{row['gained']:,.1f} / -{row['lost']:,.1f} m2, IoU {iou}")
    print(f"{len(report.rows)} rows, {len(report.tracks)} tracks -> {args.out}")
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    from ..core.outputs.vectors import check_output, write_labels
    from ..core.timeseries.dates import dated_series, parse_date
    from ..core.timeseries.drift import DRIFT_FIELDS, drift_map, layer_metadata, summary_lines

    _check_file(args.png, args.overwrite)
    check_output(args.out, mode="overwrite" if args.overwrite else "create", fields=DRIFT_FIELDS)
    series = dated_series(args.rasters, _split(args.dates))
    caches = {}
    for item in args.cache or []:
        key, sep, folder = item.partition("=")
        when = parse_date(key)
        if not sep or when is None:
            raise SegError(f"Cannot read --cache {item!r}; write DATE=FOLDER, e.g. 2020-08-31=cache/2020.")
        caches[when.isoformat()] = folder
    bar = BarProgress("drift")
    try:
        result = drift_map(series, args.tile, args.threshold, args.bands, args.stretch, caches, args.per_raster, progress=bar)
    finally:
        bar.close()
    write_labels(result.tiles, args.out, crs=result.crs, mode="overwrite" if args.overwrite else "create", fields=DRIFT_FIELDS,
                 layer_metadata=layer_metadata(result))
    if args.png:
        from ..core.timeseries.pictures import drift_png

        drift_png(result, series[0].path, args.png)
    print("\n".join(summary_lines(result)))
    print(f"{len(result.tiles)} tile records -> {args.out}" + (f", picture {args.png}" if args.png else ""))
    return 0


def _split(text):
    return [v.strip() for v in text.split(",") if v.strip()] if text else None


def _check_file(path, overwrite: bool) -> None:
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"The folder {folder} does not exist.")
    if os.path.exists(path) and not overwrite:
        raise OutputError(f"{path} already exists; choose another name or overwrite it.")
