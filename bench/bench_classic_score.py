"""Does the classic backend's score rank its masks by quality? Spearman of score vs IoU on real data.

Every labelled object is prompted three times through the real engine
(`seg_qgis_plugin.api.open(raster, backend="classic").segment(...)`): by its bounding box, by a
loose box as a person draws one (each side 5-25 % of the box's size further out, seeded), and by
one click inside it (the truth box's centre, or a point inside the truth polygon). The returned
polygon is compared with the truth and the returned `score` is ranked against that IoU:

- SpaceNet Atlanta: 43 building footprints (polygons); IoU of the segmented polygon with the footprint.
- NEON crowns (OSBS and SJER): 68 crowns whose truth is a box only. "iou" is the IoU of the segmented
  polygon with the ellipse inscribed in the truth box (a crown is round; a mask that is the whole box
  scores 0.79, a sliver low); "box_iou" (the crown's bounding box against the truth box, as in
  examples/label_neon_crowns.py) is reported beside it. A box-only truth cannot tell a mask that
  is the whole box (the classic backend's usual failure on crowns) from a good crown: the whole box
  scores 0.79 there, above most cut crowns. A box prompt there is the truth itself, so the loose
  box and the click are the fair tests on crowns; the next dataset judges tree shapes.
- Swiss tree masks: each connected tree patch (>= 50 pixels) of the hand-made tree/non-tree masks
  of four 0.5 m SWISSIMAGE tiles; pixel truth, so IoU judges the mask's shape.

"old score" is the score the classic backend gave before issue 23 (mean probability inside the mask),
recomputed on the same decode; "score" is what the engine returns now. Per-cue columns give each
cue's own rank correlation with IoU (see seg_qgis_plugin/core/models/classic_score.py).

    .venv/bin/python bench/bench_classic_score.py [--data ../shared/data] [--limit 300] [--json]

About three minutes on 2 cores. Prints numbers; asserts nothing.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
NEON_IMAGES = ("OSBS_029", "2018_SJER_3_252000_4107000_image_477")


def spearman(a, b) -> float:
    try:
        from scipy.stats import spearmanr
    except ImportError:
        ra, rb = (np.argsort(np.argsort(v)).astype(float) for v in (a, b))  # no tie correction
        return float(np.corrcoef(ra, rb)[0, 1])
    return float(spearmanr(a, b).correlation)


def spacenet_objects(root: Path, limit: int):
    """(raster, [(truth polygon, truth for box_iou or None)])."""
    from shapely.geometry import shape

    folder = root / "spacenet_atlanta_buildings"
    features = json.loads((folder / "geotiff_labels.geojson").read_text())["features"]
    truths = [shape(f["geometry"]) for f in features][:limit]
    return [(folder / "sample_geotiff.tif", [(t, None) for t in truths if t.area > 0])]


def neon_objects(root: Path, limit: int):
    from shapely import affinity
    from shapely.geometry import Point, shape

    folder = root / "neon_tree_crowns"
    cases = []
    for image in NEON_IMAGES:
        features = json.loads((folder / f"{image}_boxes_derived.geojson").read_text())["features"]
        objects = []
        for feature in features:
            box = shape(feature["geometry"])
            x0, y0, x1, y1 = box.bounds
            ellipse = affinity.scale(Point((x0 + x1) / 2, (y0 + y1) / 2).buffer(1.0, 64), (x1 - x0) / 2, (y1 - y0) / 2)
            objects.append((ellipse, box))
        objects = objects[:max(0, limit)]
        cases.append((folder / f"{image}.tif", objects))
        limit -= len(objects)
    return cases


def swiss_objects(root: Path, limit: int, min_pixels: int = 50):
    """Each connected tree patch of at least `min_pixels` in the hand-made tree masks is one object
    with pixel truth (the masks share the image's grid but carry no georeferencing)."""
    import cv2
    import rasterio
    from rasterio.features import shapes
    from shapely.geometry import shape

    folder = root / "swissimage_tree_masks"
    cases = []
    for image in sorted((folder / "img").glob("*.tif")):
        with rasterio.open(image) as src:
            transform = src.transform
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NotGeoreferencedWarning: the mask has the image's grid
            with rasterio.open(folder / "response_img" / image.name) as src:
                trees = (src.read(1) > 0).astype(np.uint8)
        count, patches = cv2.connectedComponents(trees, connectivity=8)
        objects = []
        for label in range(1, count):
            patch = (patches == label).astype(np.uint8)
            if patch.sum() >= min_pixels:
                polygons = [shape(g) for g, v in shapes(patch, mask=patch > 0, transform=transform)]
                objects.append((polygons[0] if len(polygons) == 1 else shape({"type": "MultiPolygon", "coordinates": [p.__geo_interface__["coordinates"] for p in polygons]}), None))
        objects = objects[:max(0, limit)]
        cases.append((image, objects))
        limit -= len(objects)
    return cases


DATASETS = {"spacenet atlanta buildings": spacenet_objects, "neon tree crowns": neon_objects,
            "swiss tree masks": swiss_objects}


@contextlib.contextmanager
def _recording(records):
    """While inside, every classic score also records the pre-issue-23 score and the cues."""
    from seg_qgis_plugin.core.models import classic
    from seg_qgis_plugin.core.models.classic_score import mask_confidence, mask_cues

    def recorded(lab, mask, box=None, probability=None, agreement=None):
        old = float(probability[mask].mean()) if mask.any() else 0.0
        records.append((old, mask_cues(lab, mask, box, probability, agreement)))
        return mask_confidence(lab, mask, box, probability, agreement)

    classic.mask_confidence = recorded
    try:
        yield
    finally:
        classic.mask_confidence = mask_confidence


def _click(truth, truth_box):
    """A click inside the object: the truth box's centre, or a point inside the truth polygon."""
    point = truth_box.centroid if truth_box is not None else truth.representative_point()
    return [(point.x, point.y)]


def _loose(bounds, rng):
    """The box as a person draws it around the object: each side 5-25 % of its size further out."""
    x0, y0, x1, y1 = bounds
    dx0, dy0, dx1, dy1 = rng.uniform(0.05, 0.25, 4) * (x1 - x0, y1 - y0, x1 - x0, y1 - y0)
    return x0 - dx0, y0 - dy0, x1 + dx1, y1 + dy1


def run_dataset(cases, prompt: str):
    import seg_qgis_plugin.api as seg
    from seg_qgis_plugin.core.errors import PromptError

    rows = []
    rng = np.random.default_rng(0)
    for raster, objects in cases:
        with seg.open(raster, backend="classic") as session:
            for truth, truth_box in objects:
                records = []
                try:
                    with warnings.catch_warnings(), _recording(records):
                        warnings.simplefilter("ignore")
                        if prompt == "box":
                            frame = session.segment(box=(truth_box if truth_box is not None else truth).bounds)
                        elif prompt == "loose box":
                            frame = session.segment(box=_loose((truth_box if truth_box is not None else truth).bounds, rng))
                        else:
                            frame = session.segment(points=_click(truth, truth_box))
                    shape = frame.geometry.union_all() if hasattr(frame.geometry, "union_all") else frame.geometry.unary_union
                    score = float(frame["score"].iloc[0])
                except PromptError:
                    shape, score = None, 0.0
                row = {"score": score, "old_score": float(np.mean([r[0] for r in records])) if records else 0.0,
                       "iou": _iou(shape, truth)}
                if truth_box is not None:
                    row["box_iou"] = _iou(None if shape is None else _envelope(shape), truth_box)
                if records:
                    for name in records[0][1]:
                        row[f"cue_{name}"] = float(np.mean([r[1].get(name, 0.0) for r in records]))
                rows.append(row)
    return rows


def _envelope(shape):
    from shapely.geometry import box

    return box(*shape.bounds)


def _iou(shape, truth) -> float:
    if shape is None or shape.is_empty:
        return 0.0
    union = shape.union(truth).area
    return float(shape.intersection(truth).area / union) if union else 0.0


def summary(rows):
    iou = [r["iou"] for r in rows]
    out = {"n": len(rows), "mean_iou": float(np.mean(iou)),
           "score_mean": float(np.mean([r["score"] for r in rows])), "score_std": float(np.std([r["score"] for r in rows])),
           "old_score_std": float(np.std([r["old_score"] for r in rows])),
           "spearman_old": spearman([r["old_score"] for r in rows], iou),
           "spearman_new": spearman([r["score"] for r in rows], iou)}
    if "box_iou" in rows[0]:
        box_iou = [r["box_iou"] for r in rows]
        out["spearman_old_box_iou"] = spearman([r["old_score"] for r in rows], box_iou)
        out["spearman_new_box_iou"] = spearman([r["score"] for r in rows], box_iou)
    for name in sorted(k for k in rows[0] if k.startswith("cue_")):
        out[f"spearman_{name}"] = spearman([r.get(name, 0.0) for r in rows], iou)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=300, help="at most this many objects per dataset")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--rows", type=Path, help="also write every object's score, old score, cues and IoU here (JSON)")
    args = parser.parse_args()

    results = dict(machine(threads=os.cpu_count()), precision="no model (OpenCV GrabCut)", load_average=os.getloadavg(), datasets={})
    all_rows = {}
    for name, objects_of in DATASETS.items():
        try:
            cases = objects_of(args.data.resolve(), args.limit)
        except OSError as exc:
            results["datasets"][name] = {"skipped": str(exc)}
            continue
        for prompt in ("box", "loose box", "click"):
            start = time.perf_counter()
            rows = all_rows[f"{name}, {prompt}"] = run_dataset(cases, prompt)
            results["datasets"][f"{name}, {prompt}"] = dict(summary(rows), seconds=round(time.perf_counter() - start, 1))
    if args.rows:
        args.rows.write_text(json.dumps(all_rows))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"CPU: {results['cpu']} ({results['cores']} cores, flags {' '.join(results['flags']) or 'none of note'}), "
          f"{results['precision']}, load average {' '.join(f'{v:.2f}' for v in results['load_average'])}")
    print(f"{'dataset, prompt':<38} {'n':>4} {'mean IoU':>9} {'score':>12} {'Spearman old':>13} {'Spearman new':>13}  per cue")
    for name, s in results["datasets"].items():
        if "skipped" in s:
            print(f"{name:<38} skipped: {s['skipped']}")
            continue
        cues = "  ".join(f"{k[len('spearman_cue_'):]} {v:+.2f}" for k, v in s.items() if k.startswith("spearman_cue_"))
        print(f"{name:<38} {s['n']:>4} {s['mean_iou']:>9.3f} {s['score_mean']:>6.2f}±{s['score_std']:.2f} "
              f"{s['spearman_old']:>13.2f} {s['spearman_new']:>13.2f}  {cues}  ({s['seconds']} s)")
        if "spearman_new_box_iou" in s:
            print(f"{'  (vs box_iou)':<38} {'':>4} {'':>9} {'':>12} {s['spearman_old_box_iou']:>13.2f} {s['spearman_new_box_iou']:>13.2f}")


if __name__ == "__main__":
    main()
