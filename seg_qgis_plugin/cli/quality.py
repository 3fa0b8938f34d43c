"""`seg qa` and `seg agreement`: label QA with repairs, and agreement between two label layers.

`seg qa` exits 0 when the labels are clean, 1 when there are findings, 2 on an error (nothing is
written then). Every output is checked before any work and written atomically.
"""
from __future__ import annotations

import argparse
import os

from ..core.errors import OutputError
from .options import BarProgress
from .run_outputs import declare


def add_parsers(sub) -> None:
    p = sub.add_parser("qa", help="find invalid, empty, duplicate, overlapping, thin, gappy, holed, odd-sized and unclassed labels",
                       epilog="exit codes: 0 the labels are clean, 1 there are findings (every output is written), "
                              "2 a mistake (one sentence, nothing written), 130 interrupted")
    p.add_argument("labels", help="polygon layer of labels (any CRS; tolerances are metres either way)")
    p.add_argument("--layer", help="layer of LABELS in a multi-layer file")
    p.add_argument("--out", required=True, help="findings layer: each finding's geometry, kind, fids, detail")
    p.add_argument("--report", metavar="QA.json", help="findings and counts as JSON")
    p.add_argument("--fix", metavar="FIXED.gpkg", help="write a repaired copy (the input is never touched)")
    p.add_argument("--fix-overlaps", choices=["score", "earlier", "merge"], default="score",
                   help="how --fix resolves overlaps: higher score wins, earlier wins, or merge same class (default score)")
    p.add_argument("--html", metavar="REPORT.html", help="a report with counts, a per-class table, histograms and thumbnails")
    p.add_argument("--raster", help="raster to cut the report's thumbnails from")
    p.add_argument("--class-field", default="class")
    p.add_argument("--score-field", default="score")
    p.add_argument("--overlap-area", type=float, default=0.01, help="report overlaps larger than this (m2, default 0.01)")
    p.add_argument("--overlap-scope", choices=["any", "class"], default="any", help="overlaps between any labels or within a class")
    p.add_argument("--gap-width", type=float, default=1.0, help="report gaps between labels narrower than this (m, default 1)")
    p.add_argument("--sliver-compactness", type=float, default=0.05, help="slivers: 4*pi*area/perimeter^2 under this (default 0.05)")
    p.add_argument("--sliver-width", type=float, default=0.5, help="slivers: thinner than this (m, default 0.5)")
    p.add_argument("--hole-area", type=float, default=1.0, help="report holes smaller than this (m2, default 1)")
    p.add_argument("--outlier-z", type=float, default=5.0, help="area outliers beyond this robust z within a class (default 5)")
    p.add_argument("--overwrite", action="store_true")
    declare(p, outputs=("--out", "--report", "--fix", "--html"), inputs=("labels", "--raster"))
    p.set_defaults(run=cmd_qa)

    p = sub.add_parser("agreement", help="agreement of label layer B with reference A: matching, F1, IoU, Dice, kappa, boundary IoU")
    p.add_argument("a", help="reference labels")
    p.add_argument("b", help="labels compared with A (reprojected to A's CRS)")
    p.add_argument("--out", required=True, metavar="AGREEMENT.json")
    p.add_argument("--by-class", action="store_true", help="also per class, under `classes`; kappa over the classes")
    grid = p.add_mutually_exclusive_group()
    grid.add_argument("--like", metavar="RASTER", help="burn both layers on this raster's grid for kappa")
    grid.add_argument("--resolution", type=float, metavar="R", help="burn both layers at R metres for kappa (default: 2048 pixels across)")
    p.add_argument("--iou", type=float, default=0.5, help="IoU at which two objects match (default 0.5)")
    p.add_argument("--boundary-distance", type=float, help="band width for boundary IoU in metres (default 2%% of each pair's diagonal)")
    p.add_argument("--unmatched", metavar="U.gpkg", help="layer of the objects of each side left unmatched")
    p.add_argument("--html", metavar="REPORT.html")
    p.add_argument("--raster", help="raster to cut the report's thumbnails from (default: --like)")
    p.add_argument("--class-field", default="class")
    p.add_argument("--score-field", default="score")
    p.add_argument("--layer-a")
    p.add_argument("--layer-b")
    p.add_argument("--overwrite", action="store_true")
    declare(p, outputs=("--out", "--unmatched", "--html"), inputs=("a", "b", "--like", "--raster"))
    p.set_defaults(run=cmd_agreement)


def cmd_qa(args: argparse.Namespace) -> int:
    from ..core.outputs.vectors import check_output
    from ..core.quality.qa import Tolerances, check_labels, report, write_findings
    from ..core.quality.qa_fix import fix_labels
    from ..core.quality.report_html import qa_html
    from ..core.quality.table import read_table, write_layer

    mode = "overwrite" if args.overwrite else "create"
    check_output(args.out, mode=mode)
    if args.fix:
        check_output(args.fix, mode=mode)
    _check_files([args.report, args.html], args.overwrite, [args.labels, args.out, args.fix])
    tolerances = Tolerances(args.overlap_area, args.gap_width, args.sliver_compactness, args.sliver_width, args.hole_area,
                            args.outlier_z, args.overlap_scope)
    table = read_table(args.labels, args.layer)
    bar = BarProgress(f"checking {len(table)} labels")
    try:
        findings = check_labels(table, tolerances, args.class_field, progress=bar)
    finally:
        bar.close()
    doc = report(findings, table, tolerances)
    fixed = fix_labels(table, findings, tolerances, args.fix_overlaps, args.class_field, args.score_field) if args.fix else None
    write_findings(findings, args.out, table.crs, overwrite=args.overwrite)
    if args.report:
        _write_json(doc, args.report)
    if fixed is not None:
        write_layer(args.fix, fixed[0].geometries, fixed[0].columns, fixed[0].crs, overwrite=args.overwrite)
    if args.html:
        qa_html(doc, table, findings, args.html, args.raster, args.class_field, args.score_field, overwrite=args.overwrite)
    counts = ", ".join(f"{n} {k}" for k, n in doc["counts"].items() if n)
    print(f"{len(table)} labels: " + (f"{len(findings)} findings ({counts})" if findings else "clean") + f" -> {args.out}")
    if fixed is not None:
        done = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in fixed[1].items() if n)
        print(f"repaired copy with {len(fixed[0])} labels ({done or 'nothing to repair'}) -> {args.fix}")
    return 1 if findings else 0


def cmd_agreement(args: argparse.Namespace) -> int:
    from ..core.outputs.vectors import check_output
    from ..core.quality.agreement import compare, unmatched
    from ..core.quality.report_html import agreement_html
    from ..core.quality.table import read_table, write_layer

    _check_files([args.out, args.html], args.overwrite, [args.a, args.b, args.unmatched])
    if args.unmatched:
        check_output(args.unmatched, mode="overwrite" if args.overwrite else "create")
    a, b = read_table(args.a, args.layer_a), read_table(args.b, args.layer_b)
    bar = BarProgress(f"comparing {len(a)} and {len(b)} labels")
    try:
        result = compare(a, b, args.iou, args.class_field, args.by_class, args.like, args.resolution, args.boundary_distance, bar)
    finally:
        bar.close()
    if args.unmatched:
        geoms, columns = unmatched(result, args.class_field)
        write_layer(args.unmatched, geoms, columns, result.a.crs, overwrite=args.overwrite)
    _write_json(result.summary, args.out)
    if args.html:
        agreement_html(result, args.html, args.raster or args.like, args.class_field, args.score_field, overwrite=args.overwrite)
    s = result.summary
    print(f"{s['matched']} of {s['objects_a']} (A) and {s['objects_b']} (B) matched at IoU >= {args.iou:g}: "
          f"F1 {_f(s['f1'])}, mean IoU {_f(s['mean_iou'])}, Dice {_f(s['dice'])}, kappa {_f(s['kappa'])} -> {args.out}")
    return 0


def _check_files(paths, overwrite: bool, others) -> None:
    """Refuse, before any work, outputs that exist (without --overwrite), that name an input or
    another output, or whose folder is missing."""
    given = [p for p in paths if p]
    taken = {os.path.abspath(p) for p in others if p}
    for path in given:
        full = os.path.abspath(path)
        if full in taken:
            raise OutputError(f"{path} is named twice; give each input and output its own file.")
        taken.add(full)
        if not os.path.isdir(os.path.dirname(full)):
            raise OutputError(f"The folder {os.path.dirname(full)} does not exist.")
        if os.path.exists(full) and not overwrite:
            raise OutputError(f"{full} already exists; choose another name or overwrite it.")


def _write_json(doc: dict, path: str) -> None:
    from ..core.outputs.atomic import write_json_atomic

    write_json_atomic(path, doc)


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"

