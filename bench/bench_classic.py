"""Compare the classic backend's methods (GrabCut, random walker) on labelled real data.

For every labelled object, two prompts are made from the labels, deterministically: one positive
point at the object's most interior pixel (maximum of the distance transform) and, separately, the
object's bounding box. Each method segments each prompt; the table gives the mean IoU with the
object's label and the mean decode time per prompt. Datasets that are absent are skipped.

Run: .venv/bin/python bench/bench_classic.py [--data ../shared/data] [--methods grabcut randomwalker]
Takes about 2 minutes on 2 cores. The `box=mask` rows are a baseline: the box itself as the mask.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from seg_qgis_plugin.core.models.classic import ClassicBackend
from seg_qgis_plugin.core.models.backend import TilePrompt

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def stretch(bands: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(3, H, W) numbers -> uint8 (H, W, 3), each band stretched from its 2nd to 98th percentile
    over the valid pixels."""
    out = np.zeros(bands.shape[1:] + (3,), np.uint8)
    for i, band in enumerate(bands.astype(np.float64)):
        lo, hi = np.percentile(band[valid], (2, 98))
        out[..., i] = np.clip((band - lo) / max(hi - lo, 1e-9) * 255.0, 0, 255).round()
    return out


def components(mask: np.ndarray, min_area: int, limit: int):
    """The 8-connected components of a bool mask with at least min_area pixels, largest first."""
    import cv2

    count, comp, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    order = sorted(range(1, count), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return [comp == i for i in order if stats[i, cv2.CC_STAT_AREA] >= min_area][:limit]


def load_sen1floods(root: Path):
    import rasterio

    folder = root / "sen1floods11_spain_7370579"
    with rasterio.open(folder / "Spain_7370579_S2Hand.tif") as src:
        bands = src.read((4, 3, 2))
    with rasterio.open(folder / "Spain_7370579_LabelHand.tif") as src:
        label = src.read(1)
    image = stretch(bands, (bands > 0).all(axis=0))
    objects = components(label == 1, min_area=100, limit=12)
    return [(image, objects, label >= 0)]


def load_swiss(root: Path):
    import rasterio
    import rasterio.errors

    folder = root / "swissimage_tree_masks"
    cases = []
    for path in sorted((folder / "img").glob("*.tif")):
        with rasterio.open(path) as src:
            bands = src.read((1, 2, 3))
        with warnings.catch_warnings():  # the masks have no georeferencing, by design
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(folder / "response_img" / path.name) as src:
                label = src.read(1)
        image = stretch(bands, np.ones(bands.shape[1:], bool))
        cases.append((image, components(label == 1, min_area=30, limit=8), np.ones(label.shape, bool)))
    return cases


def load_atlanta(root: Path):
    import rasterio
    from rasterio.features import rasterize
    from shapely.geometry import shape

    folder = root / "spacenet_atlanta_buildings"
    with rasterio.open(folder / "sample_geotiff.tif") as src:
        band = src.read(1)
        transform, out_shape = src.transform, (src.height, src.width)
    image = stretch(np.stack([band] * 3), band > 0)
    features = json.loads((folder / "geotiff_labels.geojson").read_text())["features"]
    objects = []
    for feature in features:
        mask = rasterize([shape(feature["geometry"])], out_shape=out_shape, transform=transform) > 0
        if mask.sum() >= 30:
            objects.append(mask)
    return [(image, objects, band > 0)]


DATASETS = {
    "sen1floods11 water": load_sen1floods,
    "swissimage trees": load_swiss,
    "spacenet atlanta bldg": load_atlanta,
}


def prompts_for(obj: np.ndarray):
    """(point prompt, box prompt) for one object mask, deterministic."""
    import cv2

    dist = cv2.distanceTransform(np.pad(obj, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    row, col = np.unravel_index(np.argmax(dist), dist.shape)
    point = TilePrompt(points=np.array([[col, row]], np.float32), labels=np.array([1], np.int32))
    rows, cols = np.nonzero(obj)
    box = TilePrompt(box=(float(cols.min()), float(rows.min()), float(cols.max()), float(rows.max())))
    return point, box


def _box_mask(obj: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(obj)
    mask = np.zeros_like(obj)
    mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
    return mask


def iou(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    pred, truth = pred & valid, truth & valid
    union = np.count_nonzero(pred | truth)
    return np.count_nonzero(pred & truth) / union if union else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--methods", nargs="+", default=["grabcut", "randomwalker"])
    args = parser.parse_args()

    print(f"{'dataset':<22} {'method':<13} {'prompt':<8} {'n':>3} {'mean IoU':>9} {'ms/prompt':>10}")
    totals = {}
    for name, loader in DATASETS.items():
        try:
            cases = loader(args.data.resolve())
        except (OSError, FileNotFoundError) as exc:  # rasterio raises RasterioIOError (an OSError)
            print(f"{name:<22} skipped: {exc}")
            continue
        for method in args.methods:
            backend = ClassicBackend(method=method)
            results = {"point": ([], []), "box": ([], [])}
            for image, objects, valid in cases:
                embedding = backend.encode(image)
                for obj in objects:
                    for kind, prompt in zip(("point", "box"), prompts_for(obj)):
                        start = time.perf_counter()
                        pred = backend.decode(embedding, prompt)
                        results[kind][1].append(time.perf_counter() - start)
                        results[kind][0].append(iou(pred.mask, obj, valid))
            for kind, (ious, times) in results.items():
                totals.setdefault((method, kind), []).extend(ious)
                print(f"{name:<22} {method:<13} {kind:<8} {len(ious):>3} {np.mean(ious):>9.3f} "
                      f"{1000 * np.mean(times):>10.0f}")
        boxes = [iou(_box_mask(obj), obj, valid) for _, objects, valid in cases for obj in objects]
        totals.setdefault(("baseline", "box=mask"), []).extend(boxes)
        print(f"{name:<22} {'baseline':<13} {'box=mask':<8} {len(boxes):>3} {np.mean(boxes):>9.3f}")
    for (method, kind), ious in sorted(totals.items()):
        print(f"{'all (per prompt)':<22} {method:<13} {kind:<8} {len(ious):>3} {np.mean(ious):>9.3f}")


if __name__ == "__main__":
    main()
