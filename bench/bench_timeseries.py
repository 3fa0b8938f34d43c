"""Time series: IoU of propagated objects against truth on the generated series (classic backend),
how lost objects are caught, change areas against truth, the drift ranking (generated and real
NAIP), and time per object per date. Prints numbers; asserts nothing.

The textured series (demo/textured_series.py: crop fields, forest and urban backgrounds, haze, a
global brightness change; ponds that stay, shrink, move, dry out or appear): precision and recall
of `lost` against the truth (a pond absent on that date), objects lost on the hazy date, and the
water area per date (kept and starting outlines) against the truth; classic backend, and with
--sam2 SAM 2.1 Hiera-Tiny with random weights on the fields (the code path only).

--sam2 also runs SAM 2.1 Hiera-Tiny with random weights (`seg models random`), re-prompted on each
date and with SAM 2's memory (`--backend sam2`), on the same series: the code path and its time
per object per date; with random weights the IoU means nothing.

    .venv/bin/python bench/bench_timeseries.py [--json] [--sam2]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from seg_qgis_plugin.core.engine.labeling import open_backend  # noqa: E402
from seg_qgis_plugin.core.timeseries.change import change_report  # noqa: E402
from seg_qgis_plugin.core.timeseries.dates import dated_series  # noqa: E402
from seg_qgis_plugin.core.timeseries.drift import drift_map  # noqa: E402
from seg_qgis_plugin.core.timeseries.propagate import propagate  # noqa: E402
from seg_qgis_plugin.core.outputs.vectors import read_labels  # noqa: E402
from seg_qgis_plugin.demo.series import HARVESTED, RESOLUTION, SIZE, truth_by_name, write_series  # noqa: E402

NAIP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "naip_prairie_timeseries")


def propagation_scores(result, series, truth) -> dict:
    """IoU of each found object with its truth, and how the losses compare with the truth."""
    from rasterio.features import rasterize

    ious, true_lost, false_lost, missed = [], 0, 0, 0
    for lab in result.labels:
        if lab.attributes["status"] in ("accepted",):
            continue
        name = json.loads(lab.attributes["tags"])["name"]
        mask = truth[name].masks[series.dates.index(lab.attributes["date"])]
        if lab.attributes["status"] == "lost":
            true_lost += mask is None
            false_lost += mask is not None
        elif mask is None:
            missed += 1
        else:
            got = rasterize([lab.geometry], out_shape=(SIZE, SIZE), transform=series.transform).astype(bool)
            ious.append(float((got & mask).sum() / (got | mask).sum()))
    return {"objects_dates": len(ious) + true_lost + false_lost + missed, "iou_mean": float(np.mean(ious)) if ious else 0.0,
            "iou_min": float(np.min(ious)) if ious else 0.0, "iou_all_ge_0_9": bool(ious and min(ious) >= 0.9),
            "lost_true": true_lost, "lost_false": false_lost, "lost_missed": missed,
            "seconds_per_object_per_date": result.seconds / max(result.steps, 1)}


def lost_scores(result, series) -> dict:
    """Precision and recall of `lost` against the truth, losses on the hazy date, and the water
    area per date (present outlines) against the truth."""
    from seg_qgis_plugin.demo.textured_series import HAZE_DATE

    truth = truth_by_name(series)
    said_lost = truly_gone = right = hazy = 0
    area = {d: 0.0 for d in series.dates}
    statuses = {}
    for lab in result.labels:
        name, when, status = json.loads(lab.attributes["tags"])["name"], lab.attributes["date"], lab.attributes["status"]
        gone = truth[name].masks[series.dates.index(when)] is None
        statuses[status] = statuses.get(status, 0) + 1
        said_lost += status == "lost"
        truly_gone += gone
        right += status == "lost" and gone
        hazy += status == "lost" and when == series.dates[HAZE_DATE]
        if status in ("accepted", "kept"):
            area[when] += lab.geometry.area
    errors = {d: 100.0 * (area[d] - series.union("water", k).sum() * 0.25) / (series.union("water", k).sum() * 0.25)
              for k, d in enumerate(series.dates)}
    return {"lost_precision": right / said_lost if said_lost else 1.0, "lost_recall": right / truly_gone if truly_gone else 1.0,
            "lost_on_hazy_date": hazy, "statuses": statuses, "water_area_error_pct": {d: round(e, 2) for d, e in errors.items()},
            "worst_area_error_pct": round(max(abs(e) for e in errors.values()), 2)}


def textured(sam2: bool, folder: str) -> dict:
    """lost_scores on each background, classic backend (and SAM 2.1 tiny, random weights)."""
    import warnings

    from seg_qgis_plugin.demo.textured_series import BACKGROUNDS, write_textured_series

    out = {}
    for kind in BACKGROUNDS:
        where = os.path.join(folder, kind)
        os.makedirs(where, exist_ok=True)
        series = write_textured_series(where, kind)
        labels, rasters = read_labels(series.labels), dated_series(series.rasters)
        out[kind] = {"classic": lost_scores(propagate(labels, rasters, open_backend(backend="classic")), series)}
        if sam2 and kind == BACKGROUNDS[0]:  # the code path: one background is enough
            from seg_qgis_plugin.core.models.random_weights import write_random_checkpoint

            checkpoint = os.path.join(folder, "sam2_tiny_random.pt")
            if not os.path.exists(checkpoint):
                write_random_checkpoint("sam2.1_hiera_tiny", checkpoint)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                backend = open_backend(checkpoint, backend="sam", device="cpu", threads=2)
                out[kind]["sam2_random"] = lost_scores(propagate(labels, rasters, backend), series)
    return out


def sam2_propagation(series, truth, folder) -> dict:
    """SAM 2.1 Hiera-Tiny (random weights) re-prompted per date, and with its memory."""
    import warnings

    from seg_qgis_plugin.core.models.random_weights import write_random_checkpoint
    from seg_qgis_plugin.core.timeseries.memory import VideoTracker, propagate_with_memory

    checkpoint = os.path.join(folder, "sam2_tiny_random.pt")
    if not os.path.exists(checkpoint):
        write_random_checkpoint("sam2.1_hiera_tiny", checkpoint)
    labels, rasters = read_labels(series.labels), dated_series(series.rasters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_date = propagate(labels, rasters, open_backend(checkpoint, backend="sam", device="cpu", threads=2))
        memory = propagate_with_memory(labels, rasters, VideoTracker(checkpoint))
    return {"per_date": propagation_scores(per_date, series, truth), "memory": propagation_scores(memory, series, truth)}


def measure(sam2: bool = False) -> dict:
    folder = tempfile.mkdtemp(prefix="seg-bench-ts-")
    series = write_series(folder)
    truth = truth_by_name(series)
    result = propagate(read_labels(series.labels), dated_series(series.rasters), open_backend(backend="classic"))
    report = change_report(result.labels)
    area_errors = []
    for row in report.rows:
        k = series.dates.index(row["date_to"])
        want = series.union(row["class"], k).sum() * RESOLUTION ** 2
        area_errors.append({"class": row["class"], "date": row["date_to"], "truth_m2": float(want), "propagated_m2": row["area_to"],
                            "error_pct": 100.0 * (row["area_to"] - want) / want})
    drift = drift_map(dated_series(series.rasters), tile=100)
    hazy_top = {}
    for pair in drift.summary["pairs"]:
        tiles = sorted((t for t in drift.tiles if t.attributes["date_from"] == pair["date_from"]), key=lambda t: -t.attributes["drift"])
        cols = [int(t.attributes["tile"].split(",")[0]) for t in tiles[:6]]
        hazy_top[f"{pair['date_from']}..{pair['date_to']}"] = {
            "top6_in_hazy_half": sum(c < 200 for c in cols), "top_tile": tiles[0].attributes["tile"], "mean": pair["mean"]}
    out = {
        "propagation": propagation_scores(result, series, truth),
        "change_area_vs_truth": area_errors,
        "drift_generated": {"ranking": drift.summary["ranking"], "pairs": hazy_top, "harvested_tile": f"{HARVESTED[0]},{HARVESTED[1]}"},
    }
    if os.path.isdir(NAIP):
        real = dated_series([os.path.join(NAIP, n) for n in sorted(os.listdir(NAIP)) if n.endswith(".tif")])
        out["drift_naip"] = {}
        for per_raster in (False, True):
            d = drift_map(real, tile=128, per_raster=per_raster)
            out["drift_naip"]["per_raster" if per_raster else "shared"] = {
                "ranking": d.summary["ranking"], "pairs": [{k: p[k] for k in ("date_from", "date_to", "mean", "median", "max", "flagged", "tiles")}
                                                           for p in d.summary["pairs"]]}
    out["textured"] = textured(sam2, folder)
    if sam2:
        out["propagation_sam2_random"] = sam2_propagation(series, truth, folder)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sam2", action="store_true", help="also SAM 2.1 tiny (random weights), per date and with memory")
    args = parser.parse_args()
    out = measure(args.sam2)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    p = out["propagation"]
    print(f"propagation (classic, generated series, {p['objects_dates']} object-dates): IoU mean {p['iou_mean']:.3f}, min {p['iou_min']:.3f}; "
          f"lost caught {p['lost_true']}, false losses {p['lost_false']}, missed {p['lost_missed']}; "
          f"{p['seconds_per_object_per_date']:.2f} s per object per date")
    for e in out["change_area_vs_truth"]:
        print(f"  area {e['class']:>8} {e['date']}: propagated {e['propagated_m2']:8.1f} m2, truth {e['truth_m2']:8.1f} m2 ({e['error_pct']:+.1f} %)")
    print("drift (generated): most drift first " + ", ".join(out["drift_generated"]["ranking"]))
    for pair, v in out["drift_generated"]["pairs"].items():
        print(f"  {pair}: mean {v['mean']:.3f}, top tile {v['top_tile']}, {v['top6_in_hazy_half']}/6 top tiles in the hazy half")
    for kind, runs in out["textured"].items():
        for backend, v in runs.items():
            print(f"lost/kept ({kind}, {backend}): lost precision {v['lost_precision']:.2f}, recall {v['lost_recall']:.2f}, "
                  f"{v['lost_on_hazy_date']} lost on the hazy date, water area within {v['worst_area_error_pct']:.1f} % of the truth "
                  f"on every date; statuses {v['statuses']}")
    for mode, p in out.get("propagation_sam2_random", {}).items():
        print(f"propagation (SAM 2.1 tiny, random weights, {mode.replace('_', ' ')}): {p['objects_dates']} object-dates, "
              f"{p['seconds_per_object_per_date']:.2f} s per object per date; lost {p['lost_true'] + p['lost_false']}")
    for mode, v in out.get("drift_naip", {}).items():
        print(f"drift (NAIP, {mode} stretch): " + "; ".join(f"{p['date_from']}..{p['date_to']} mean {p['mean']:.3f} median {p['median']:.3f} "
                                                          f"max {p['max']:.3f}, {p['flagged']}/{p['tiles']} flagged" for p in v["pairs"]))


if __name__ == "__main__":
    main()
