"""The assistant on real labelled data, and its cost on a big raster.

1. Sen1Floods11 (Spain_7370579, 13-band Sentinel-2, hand-labelled water): 6 squares of 12 x 12
   pixels per class, drawn at random from the hand label (squares that lie wholly in one class),
   mean IoU of water over several draws; with the baselines NDWI > 0 (B3 vs B8) and the same forest
   on the 13 bands alone (no multi-scale features, no indices).
2. The flywheel: the same IoU against the number of squares per class (3, 6, 12, 24).
3. Swiss tree masks: learn on one tile (its whole tree/non-tree mask as labels), apply the saved
   model to the other three; IoU of trees per tile, for every choice of training tile.
4. Time and peak memory (VmHWM, in a child process of its own) to pre-label a SIZE x SIZE 4-band
   uint16 raster (generated block by block into a temporary folder) with a model learned from a
   few squares: probability + uncertainty GeoTIFFs and polygons.

Every run goes through `core.assist.pipeline.assist` with `seg assist`'s defaults (no smoothing).

    .venv/bin/python bench/bench_assist.py                  # everything; big raster 5,000 x 5,000
    .venv/bin/python bench/bench_assist.py --big 10000      # the 10,000 x 10,000 raster (minutes on 2 cores)
    .venv/bin/python bench/bench_assist.py --only-big --big 10000 --trees 100 --old-features   # the old settings
    .venv/bin/python bench/bench_assist.py --skip-big --draws 3 --json

--trees, --select (classifier.TREES, classifier.SELECT: features a model keeps, 0 all) and
--old-features (the recipe before the leaner default: LoG, sigmas 0.7 1.6 3.5 5) apply to every run,
big raster included, so settings compare side by side.

Prints numbers; asserts nothing.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Dataset has no geotransform")  # the Swiss masks carry no georeferencing
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
from common import peak_rss_mb, scene_classes  # noqa: E402
DATA = os.path.join(ROOT, "..", "shared", "data")
SEN = os.path.join(DATA, "sen1floods11_spain_7370579")
SWISS = os.path.join(DATA, "swissimage_tree_masks")


def squares(label: np.ndarray, value: int, n: int, rng, size: int = 12) -> list:
    """n random (col, row) corners of size x size squares lying wholly in `label == value`."""
    from scipy.ndimage import minimum_filter

    inside = minimum_filter((label == value).astype(np.uint8), size=size, mode="constant", origin=-(size // 2))
    rows, cols = np.nonzero(inside[:label.shape[0] - size + 1, :label.shape[1] - size + 1])
    pick = rng.choice(len(rows), n, replace=False)
    return [(int(cols[i]), int(rows[i])) for i in pick]


def square_labels(transform, crs: str, corners_by_class: dict, size: int = 12) -> list:
    from shapely.geometry import box

    from seg_qgis_plugin.core.engine.labels import Label, attributes

    labels = []
    for name, corners in corners_by_class.items():
        for c, r in corners:
            x0, y0 = transform * (c, r + size)
            x1, y1 = transform * (c + size, r)
            labels.append(Label(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), crs, attributes(name, status="accepted")))
    return labels


def iou(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    return float((pred & truth & valid).sum() / max(((pred | truth) & valid).sum(), 1))


def run_assist(raster: str, labels, folder: str, smooth: float = 0.0, model_path=None) -> np.ndarray:
    """Learn and pre-label; returns the probability bands (written classes, float32)."""
    import rasterio

    from seg_qgis_plugin.core.assist.options import AssistOptions, PredictOptions
    from seg_qgis_plugin.core.assist.pipeline import assist

    out = tempfile.mkdtemp(dir=folder)
    assist(raster, labels, AssistOptions(os.path.join(out, "pre.gpkg"), model_path=model_path,
                                         predict=PredictOptions(os.path.join(out, "prob.tif"), smooth=smooth)))
    with rasterio.open(os.path.join(out, "prob.tif")) as ds:
        return ds.read()


def sen1floods(draws: int, counts, folder: str, smooth: float = 0.0) -> dict:
    import rasterio

    from seg_qgis_plugin.core.assist import pipeline

    raster = os.path.join(SEN, "Spain_7370579_S2Hand.tif")
    with rasterio.open(os.path.join(SEN, "Spain_7370579_LabelHand.tif")) as ds:
        label = ds.read(1)
    with rasterio.open(raster) as ds:
        transform, crs, bands = ds.transform, ds.crs.to_wkt(), ds.read().astype(np.float32)
    valid, water = label >= 0, label == 1
    ndwi = (bands[2] - bands[7]) / (bands[2] + bands[7] + 1e-6)
    result = {"ndwi_iou": iou(ndwi > 0, water, valid), "flywheel": {}, "bands_only": {}}
    for n in counts:
        scores, plain_scores, seconds = [], [], []
        for d in range(draws):
            rng = np.random.default_rng(d)
            labels = square_labels(transform, crs, {"water": squares(label, 1, n, rng), "background": squares(label, 0, n, rng)})
            t = time.perf_counter()
            proba = run_assist(raster, labels, folder, smooth=smooth)
            seconds.append(time.perf_counter() - t)
            scores.append(iou(proba[0] > 0.5, water, valid))
            if n == 6:
                plain_scores.append(_bands_only(pipeline, raster, labels, folder, water, valid))
        result["flywheel"][n] = {"mean_iou": float(np.mean(scores)), "ious": [round(s, 3) for s in scores],
                                 "seconds_per_run": float(np.mean(seconds))}
        if plain_scores:
            result["bands_only"][n] = float(np.mean(plain_scores))
    return result


def _bands_only(pipeline, raster, labels, folder, water, valid) -> float:
    """The same forest on the raw bands: no multi-scale features, no normalized differences."""
    from seg_qgis_plugin.core.assist import features

    original, current = features.make_recipe, pipeline.make_recipe

    def bands_only(source, bands=None, sigmas=(), indices=True, percentiles=(1.0, 99.0)):
        return original(source, bands, (), False, percentiles)

    pipeline.make_recipe = bands_only
    try:
        proba = run_assist(raster, labels, folder, smooth=0.0)
    finally:
        pipeline.make_recipe = current
    return iou(proba[0] > 0.5, water, valid)


def swiss(folder: str) -> dict:
    import rasterio

    from seg_qgis_plugin.core.assist.options import AssistOptions
    from seg_qgis_plugin.core.assist.pipeline import assist

    names = ["1091-322_00", "1091-322_05", "1091-322_11", "1091-322_19"]
    images = {n: os.path.join(SWISS, "img", n + ".tif") for n in names}
    masks = {}
    for n in names:
        with rasterio.open(os.path.join(SWISS, "response_img", n + ".tif")) as ds:
            masks[n] = ds.read(1) > 0
    table = {}
    for train in names:
        with rasterio.open(images[train]) as ds:
            transform, crs = ds.transform, ds.crs.to_wkt()
        labels = _mask_labels(masks[train], transform, crs)
        out = tempfile.mkdtemp(dir=folder)
        model = os.path.join(out, "model.json")
        assist(images[train], labels, AssistOptions(os.path.join(out, "pre.gpkg"), save_model=model))
        row = {}
        for other in names:
            if other == train:
                continue
            proba = run_assist(images[other], None, folder, model_path=model)
            row[other] = iou(proba[0] > 0.5, masks[other], np.ones_like(masks[other]))
        table[train] = row
    return table


def _mask_labels(mask: np.ndarray, transform, crs: str) -> list:
    from rasterio.features import shapes
    from shapely.geometry import shape

    from seg_qgis_plugin.core.engine.labels import Label, attributes

    labels = []
    for geom, value in shapes(mask.astype(np.uint8), connectivity=4, transform=transform):
        labels.append(Label(shape(geom), crs, attributes("tree" if value else "background", status="accepted")))
    return labels


def write_big(path: str, size: int, block: int = 1024) -> None:
    """A size x size 4-band uint16 scene (fields, ponds), written block by block."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(0)
    colours = np.array([[600, 900, 500, 3500], [1400, 1200, 900, 2200], [800, 1100, 600, 3000], [300, 450, 600, 150]], np.float32)
    profile = dict(driver="GTiff", width=size, height=size, count=4, dtype="uint16", crs="EPSG:32633",
                   transform=from_origin(500000, 4650000, 0.5, 0.5), tiled=True, blockxsize=512, blockysize=512,
                   compress="deflate", BIGTIFF="IF_SAFER")
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, block):
            for col in range(0, size, block):
                h, w = min(block, size - row), min(block, size - col)
                tile = colours[scene_classes(col, row, w, h)].transpose(2, 0, 1) + rng.normal(0, 60, (4, h, w))
                dst.write(np.clip(tile, 0, 10000).astype(np.uint16), window=Window(col, row, w, h))


def use_settings(trees=None, select=None, old_features=False) -> None:
    """Set the forest's size, feature selection and recipe for the runs of this process (None,
    False: the defaults)."""
    from dataclasses import replace

    from seg_qgis_plugin.core.assist import classifier, features, pipeline

    if trees is not None:
        classifier.TREES = trees
    if select is not None:
        classifier.SELECT = select
    if old_features:
        def old_recipe(source, bands=None, sigmas=None, indices=True, percentiles=(1.0, 99.0)):
            recipe = features.make_recipe(source, bands, features.SAVED_DEFAULTS["sigmas"], indices, percentiles)
            return replace(recipe, kinds=features.SAVED_DEFAULTS["kinds"])

        pipeline.make_recipe = old_recipe


def big_child(size: int, folder: str, trees=None, select=None, old_features=False) -> dict:
    """Runs in its own process: learn from 6 squares per class on the big raster, pre-label it all."""
    from seg_qgis_plugin.core.assist import classifier
    from seg_qgis_plugin.core.assist.options import AssistOptions, PredictOptions
    from seg_qgis_plugin.core.assist.pipeline import assist

    use_settings(trees, select, old_features)

    path = os.path.join(folder, f"big{size}.tif")
    t = time.perf_counter()
    write_big(path, size)
    generate = time.perf_counter() - t
    from rasterio.transform import from_origin

    transform = from_origin(500000, 4650000, 0.5, 0.5)
    ponds = [(1200 - 6 + k * 2500, 1000 - 6 + j * 2000) for k in range(2) for j in range(3)]
    fields = [(100 + 150 * k, 100) for k in range(6)]
    labels = square_labels(transform, "EPSG:32633", {"water": [p for p in ponds if p[0] < size and p[1] < size][:6], "background": fields})
    t = time.perf_counter()
    predict = PredictOptions(os.path.join(folder, "prob.tif"), os.path.join(folder, "unc.tif"), min_area=50.0)
    summary = assist(path, labels, AssistOptions(os.path.join(folder, "pre.gpkg"), predict=predict))
    seconds = time.perf_counter() - t
    return {"size": size, "seconds": seconds, "generate_seconds": generate, "peak_mb": peak_rss_mb(),
            "polygons": summary.result.count, "features": len(summary.model.recipe.names()), "trees": classifier.TREES}


def big(size: int, trees=None, select=None, old_features=False) -> dict:
    settings = (["--trees", str(trees)] if trees is not None else []) + (["--select", str(select)] if select is not None else [])
    settings += ["--old-features"] if old_features else []
    with tempfile.TemporaryDirectory(dir=os.environ.get("SEG_BENCH_TMP")) as folder:
        out = subprocess.run([sys.executable, __file__, "--child", str(size), folder, *settings], capture_output=True, text=True,
                             check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--counts", default="3,6,12,24", help="squares per class for the flywheel")
    parser.add_argument("--big", type=int, default=5000, help="side of the big raster (default 5000)")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--only-big", action="store_true")
    parser.add_argument("--smooth", type=float, default=0.0, help="smoothing of the probabilities in pixels (seg assist's default 0)")
    parser.add_argument("--skip-swiss", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--trees", type=int, help="trees in the forest (default: classifier.TREES)")
    parser.add_argument("--select", type=int, help="features the model keeps (default: classifier.SELECT; 0: all)")
    parser.add_argument("--old-features", action="store_true", help="the recipe before the leaner default (LoG, 4 sigmas)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(big_child(int(args.child[0]), args.child[1], args.trees, args.select, args.old_features)))
        return
    use_settings(args.trees, args.select, args.old_features)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        if not args.only_big:
            if os.path.isdir(SEN):
                results["sen1floods11"] = sen1floods(args.draws, [int(c) for c in args.counts.split(",")], folder, args.smooth)
            if os.path.isdir(SWISS) and not args.skip_swiss:
                results["swiss_trees"] = swiss(folder)
    if not args.skip_big:
        results["big"] = big(args.big, args.trees, args.select, args.old_features)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    sen = results.get("sen1floods11")
    if sen:
        print("Sen1Floods11 Spain_7370579, water IoU (squares of 12 x 12 px per class, mean over draws)")
        print(f"  NDWI > 0 (no labels): {sen['ndwi_iou']:.3f}")
        for n, bands_only in sen["bands_only"].items():
            print(f"  same forest on the 13 bands only, {n} squares: {bands_only:.3f}")
        for n, row in sen["flywheel"].items():
            print(f"  assistant, {n:>2} squares per class: {row['mean_iou']:.3f}  (draws {row['ious']}, {row['seconds_per_run']:.1f} s per run)")
    if results.get("swiss_trees"):
        print("Swiss tree masks, tree IoU on the other tiles (rows: tile learned from)")
        for train, row in results["swiss_trees"].items():
            print(f"  {train}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()) + f"  (mean {np.mean(list(row.values())):.3f})")
    if results.get("big"):
        b = results["big"]
        mpx = b["size"] ** 2 / 1e6
        print(f"Big raster {b['size']} x {b['size']} x 4 bands ({b['features']} features per pixel, {b['trees']} trees): {b['seconds']:.0f} s "
              f"({b['seconds'] / mpx:.2f} s per Mpx), peak {b['peak_mb']:.0f} MB, {b['polygons']} polygons")


if __name__ == "__main__":
    main()
