"""Map a flood's extent with the Seg assistant through the Python API, and score it against the hand label.

The data is the Sen1Floods11 chip Spain_7370579 (Sentinel-2, 13 bands, 10 m; a hand-labelled water
mask on the same grid), described in ../shared/data/sen1floods11_spain_7370579/README.md. A few
small squares of water and of dry land are taken from the hand label, as a person would accept
them after a few clicks; the assistant learns from their pixels and pre-labels the whole chip.
The score is the intersection over union of the water it finds with the hand label's water.

Run:
    .venv/bin/python examples/flood_extent_assist.py                       # 6 squares per class
    .venv/bin/python examples/flood_extent_assist.py --squares 10 --out flood
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

import seg_qgis_plugin.api as seg

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sen1floods11_spain_7370579"
IMAGE, HAND_LABEL = "Spain_7370579_S2Hand.tif", "Spain_7370579_LabelHand.tif"
SIDE = 12  # pixels per square side


def accepted_squares(hand_label: Path, per_class: int, seed: int):
    """`per_class` squares of water and of background lying wholly in that class of the hand
    label, as a GeoDataFrame of accepted labels (the label's CRS)."""
    import geopandas as gpd
    import rasterio
    from shapely.geometry import box

    with rasterio.open(hand_label) as ds:
        label, transform, crs = ds.read(1), ds.transform, ds.crs
    rng = np.random.default_rng(seed)
    rows = []
    for value, name in ((1, "water"), (0, "background")):
        for col, row in _corners(label == value, per_class, rng):
            (x0, y0), (x1, y1) = transform * (col, row + SIDE), transform * (col + SIDE, row)
            rows.append({"class": name, "status": "accepted", "geometry": box(x0, y0, x1, y1)})
    return gpd.GeoDataFrame(rows, crs=crs)


def _corners(inside: np.ndarray, n: int, rng):
    """n random (col, row) corners of SIDE x SIDE squares where `inside` holds everywhere."""
    sums = np.pad(inside.astype(np.int32), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    whole = sums[SIDE:, SIDE:] - sums[:-SIDE, SIDE:] - sums[SIDE:, :-SIDE] + sums[:-SIDE, :-SIDE] == SIDE * SIDE
    rows, cols = np.nonzero(whole)
    pick = rng.choice(len(rows), n, replace=False)
    return [(int(cols[i]), int(rows[i])) for i in pick]


def flood_iou(probability: Path, hand_label: Path) -> float:
    """IoU of the assistant's water (probability above 0.5) with the hand label's, where the label has data."""
    import rasterio

    with rasterio.open(probability) as p, rasterio.open(hand_label) as h:
        water, truth = p.read(1) > 0.5, h.read(1)
    valid = truth >= 0
    found, real = water & valid, (truth == 1) & valid
    return float((found & real).sum() / max((found | real).sum(), 1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the sen1floods11_spain_7370579 folder")
    parser.add_argument("--squares", type=int, default=6, help="accepted squares per class (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="which squares (default 0)")
    parser.add_argument("--out", type=Path, help="folder for flood.gpkg, probability.tif and model.json (default: a temporary one)")
    args = parser.parse_args(argv)
    if not (args.data / IMAGE).exists() or not (args.data / HAND_LABEL).exists():
        print(f"The Sen1Floods11 chip is not in {args.data}; give --data.", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="seg-flood-"))
    out.mkdir(parents=True, exist_ok=True)
    squares = accepted_squares(args.data / HAND_LABEL, args.squares, args.seed)
    flood = seg.assist(str(args.data / IMAGE), labels=squares, out=str(out / "flood.gpkg"),
                       probability=str(out / "probability.tif"), save_model=str(out / "model.json"),
                       mode="overwrite")
    iou = flood_iou(out / "probability.tif", args.data / HAND_LABEL)
    print(f"learned from {len(squares)} squares ({args.squares} water, {args.squares} background)")
    print(f"{len(flood)} water polygons, mean score {flood['score'].mean():.2f}")
    for key, path in flood.attrs["outputs"].items():
        print(f"{key:>12}: {os.path.abspath(path)}")
    print(f"IoU with the hand label: {iou:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
