""""Like this" without SAM 3: from 3 example objects, how many of the others are found?

For SpaceNet Atlanta (43 building footprints) and the two NEON crown images (boxes), three truths
are the examples (those at the 25th, 50th and 75th percentile of area) and the rest are what should
be found. A truth is found when a result matches it at IoU >= 0.5 (buildings: polygon IoU; crowns,
whose truth is a box: the result's bounding box against it). Precision is the share of results
that match some truth (the examples included).

Routes:
- classic: `find_concepts` with the weights-free classic backend (Lab colour cells, point prompts);
- assistant: the assistant learns from the examples (and a ring of background around each) and
  pre-labels the raster; its blobs (lightly smoothed, at least a third of the smallest example) are
  the results;
- sam (random weights): the same `find_concepts` on SAM vit_b's features, for the code path and its
  time only (random features find nothing meaningful).

    .venv/bin/python bench/bench_like_this.py [--data ../shared/data] [--routes classic,assistant,sam] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from common import machine, peak_rss_mb, random_checkpoint

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
NEON_IMAGES = ("OSBS_029", "2018_SJER_3_252000_4107000_image_477")


def cases(root: Path):
    """(name, raster, truths as shapely polygons in the raster CRS, compare boxes?)."""
    from shapely.geometry import shape

    folder = root / "spacenet_atlanta_buildings"
    if folder.exists():
        features = json.loads((folder / "geotiff_labels.geojson").read_text())["features"]
        yield "spacenet_atlanta", folder / "sample_geotiff.tif", [shape(f["geometry"]) for f in features], False
    folder = root / "neon_tree_crowns"
    for image in NEON_IMAGES if folder.exists() else ():
        features = json.loads((folder / f"{image}_boxes_derived.geojson").read_text())["features"]
        yield f"neon_{image.split('_')[0].lower() if image[0] == 'O' else 'sjer'}", folder / f"{image}.tif", \
            [shape(f["geometry"]) for f in features], True


def pick_examples(truths):
    order = np.argsort([t.area for t in truths])
    chosen = [int(order[int(q * (len(order) - 1))]) for q in (0.25, 0.5, 0.75)]
    return chosen


def match(results, truths, boxes: bool):
    """(matched truth indices, results that match some truth)."""
    from shapely.geometry import box

    def iou(a, b):
        if boxes:
            a = box(*a.bounds)
        inter = a.intersection(b).area
        return inter / (a.area + b.area - inter) if inter else 0.0

    matched, good = set(), 0
    for r in results:
        hits = [i for i, t in enumerate(truths) if r.intersects(t) and iou(r, t) >= 0.5]
        matched.update(hits)
        good += bool(hits)
    return matched, good


def run_find(raster, examples, crs, backend):
    from seg_qgis_plugin.core.batch.concepts import Example, find_concepts
    from seg_qgis_plugin.core.batch.raster_job import RasterJob

    with RasterJob(str(raster)).open(backend) as segmenter:
        result = find_concepts(segmenter, [], [Example(g, crs) for g in examples])
    return [lab.geometry for lab in result.labels]


def run_assistant(raster, examples, crs):
    from seg_qgis_plugin.core.assist.options import AssistOptions, PredictOptions
    from seg_qgis_plugin.core.assist.pipeline import assist
    from seg_qgis_plugin.core.engine.labels import Label, attributes

    labels = [Label(g, crs, attributes("object")) for g in examples]
    for g in examples:
        ring = g.buffer(max(g.area ** 0.5, 1.0)).difference(g.buffer(0.1 * g.area ** 0.5))
        labels.append(Label(ring, crs, attributes("background")))
    found = []
    smallest = min(g.area for g in examples)
    options = AssistOptions(predict=PredictOptions(smooth=1.0, min_area=smallest / 3))  # specks are no objects
    assist(str(raster), labels, options, on_label=lambda lab: found.append(lab) if lab.attributes["class"] != "background" else None)
    return [lab.geometry for lab in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--routes", default="classic,assistant,sam")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    warnings.simplefilter("ignore")
    from seg_qgis_plugin.core.geo.raster import RasterSource

    facts = machine()
    print(f"# {facts['cpu']} | {facts['flags']} | threads {facts['threads']} | load before {os.getloadavg()[0]:.2f}")
    rows = []
    for name, raster, truths, boxes in cases(Path(args.data)):
        with RasterSource(str(raster)) as source:
            crs = source.crs.to_wkt()
        chosen = pick_examples(truths)
        examples = [truths[i] for i in chosen]
        others = [t for i, t in enumerate(truths) if i not in chosen]
        for route in args.routes.split(","):
            start = time.perf_counter()
            if route == "classic":
                from seg_qgis_plugin.core.models.classic import ClassicBackend

                results = run_find(raster, examples, crs, ClassicBackend())
            elif route == "assistant":
                results = run_assistant(raster, examples, crs)
            elif route == "sam":
                from seg_qgis_plugin.core.models.sam import SamBackend

                results = run_find(raster, examples, crs, SamBackend(random_checkpoint("vit_b"), "vit_b", "cpu", 2))
            else:
                raise SystemExit(f"unknown route {route}")
            seconds = time.perf_counter() - start
            matched, good = match(results, others, boxes)
            _, good_all = match(results, truths, boxes)
            row = dict(data=name, route=route, truths=len(others), found=len(matched),
                       recall=round(len(matched) / max(len(others), 1), 3), results=len(results),
                       precision=round(good_all / max(len(results), 1), 3), seconds=round(seconds, 1),
                       peak_mb=round(peak_rss_mb()), random_weights=route == "sam")
            rows.append(row)
            print(json.dumps(row) if args.json else
                  f"{name:18s} {route:9s} found {len(matched):3d}/{len(others):3d} (recall {row['recall']:.2f}) "
                  f"results {len(results):4d} precision {row['precision']:.2f}  {seconds:6.1f} s")
    print(f"# load after {os.getloadavg()[0]:.2f}")
    if args.json:
        print(json.dumps(dict(machine=facts, rows=rows)))


if __name__ == "__main__":
    main()
