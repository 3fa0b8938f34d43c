"""Time series: IoU of propagated objects against truth on the generated series (classic backend),
how lost objects are caught, change areas against truth, the drift ranking (generated and real
NAIP), and time per object per date. Prints numbers; asserts nothing.

    .venv/bin/python bench/bench_timeseries.py [--json]
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


def measure() -> dict:
    from rasterio.features import rasterize

    folder = tempfile.mkdtemp(prefix="seg-bench-ts-")
    series = write_series(folder)
    truth = truth_by_name(series)
    result = propagate(read_labels(series.labels), dated_series(series.rasters), open_backend(backend="classic"))
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
        "propagation": {"objects_dates": len(ious) + true_lost + false_lost + missed, "iou_mean": float(np.mean(ious)),
                        "iou_min": float(np.min(ious)), "iou_all_ge_0_9": bool(min(ious) >= 0.9),
                        "lost_true": true_lost, "lost_false": false_lost, "lost_missed": missed,
                        "seconds_per_object_per_date": result.seconds / max(result.steps, 1)},
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
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = measure()
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
    for mode, v in out.get("drift_naip", {}).items():
        print(f"drift (NAIP, {mode} stretch): " + "; ".join(f"{p['date_from']}..{p['date_to']} mean {p['mean']:.3f} median {p['median']:.3f} "
                                                          f"max {p['max']:.3f}, {p['flagged']}/{p['tiles']} flagged" for p in v["pairs"]))


if __name__ == "__main__":
    main()
