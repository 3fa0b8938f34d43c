"""`seg qa` and `seg agreement`: label QA with repairs, and agreement between two label layers.

`seg qa` exits 0 when the labels are clean, 1 when there are findings, 2 on an error (nothing is
written then). Every output is checked before any work and written atomically.
"""
from __future__ import annotations

import argparse

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
    from ..core.jobs import qa

    request = qa.Request(args.labels, layer=args.layer, out=args.out, report=args.report, fix=args.fix,
                         fix_overlaps=args.fix_overlaps, html=args.html, raster=args.raster, class_field=args.class_field,
                         score_field=args.score_field, overlap_area=args.overlap_area, overlap_scope=args.overlap_scope,
                         gap_width=args.gap_width, sliver_compactness=args.sliver_compactness, sliver_width=args.sliver_width,
                         hole_area=args.hole_area, outlier_z=args.outlier_z, overwrite=args.overwrite)
    bar = BarProgress("checking labels")
    try:
        result = qa.run(request, bar)
    finally:
        bar.close()
    print(qa.summary_line(result, args.out))
    if args.fix:
        print(qa.repair_line(result, args.fix))
    return 1 if result.count else 0


def cmd_agreement(args: argparse.Namespace) -> int:
    from ..core.jobs import agreement

    request = agreement.Request(args.a, args.b, out=args.out, by_class=args.by_class, like=args.like, resolution=args.resolution,
                                iou=args.iou, boundary_distance=args.boundary_distance, unmatched=args.unmatched,
                                html=args.html, raster=args.raster, class_field=args.class_field,
                                score_field=args.score_field, layer_a=args.layer_a, layer_b=args.layer_b,
                                overwrite=args.overwrite)
    bar = BarProgress("comparing labels")
    try:
        result = agreement.run(request, bar)
    finally:
        bar.close()
    print(agreement.summary_line(result, args.iou, args.out))
    return 0
