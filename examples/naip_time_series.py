"""A NAIP time series with the Seg Python API: water bodies of 2009 carried through 2015 and 2020,
what changed between the dates, and where the images drift.

The data (NAIP R, G, B, NIR at 5 m over North Dakota prairie potholes, 2009, 2015 and 2020) is
described in ../shared/data/naip_prairie_timeseries/README.md. It has no labels: the largest
water bodies of the first date (NDWI (G - NIR) / (G + NIR) above 0.1, the README's rough
reference) stand in for a person's labels. The weights-free classic backend is used unless a SAM
checkpoint (a file or a name from `seg models list`) is given.

Run:
    .venv/bin/python examples/naip_time_series.py --out naip_out
    .venv/bin/python examples/naip_time_series.py --out naip_out --checkpoint vit_b --water-bodies 5
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import seg_qgis_plugin.api as seg

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "naip_prairie_timeseries"
NDWI_WATER = 0.1


def water_bodies(raster: Path, count: int):
    """The `count` largest water bodies of `raster` (NDWI above NDWI_WATER) as a GeoDataFrame."""
    import geopandas as gpd
    import numpy as np
    import rasterio
    from rasterio.features import shapes
    from shapely.geometry import shape

    with rasterio.open(raster) as src:
        green, nir = src.read(2).astype(float), src.read(4).astype(float)
        water = (green - nir) / np.maximum(green + nir, 1) > NDWI_WATER
        polygons = [shape(g) for g, _ in shapes(water.astype("uint8"), mask=water, transform=src.transform)]
        crs = src.crs
    biggest = sorted(polygons, key=lambda p: -p.area)[:count]
    return gpd.GeoDataFrame({"class": ["water"] * len(biggest)}, geometry=biggest, crs=crs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the naip_prairie_timeseries folder")
    parser.add_argument("--out", type=Path, help="folder for the outputs (default: a new temporary folder)")
    parser.add_argument("--checkpoint", help="SAM checkpoint file or model name (default: the classic backend)")
    parser.add_argument("--water-bodies", type=int, default=3, help="how many water bodies to follow (default 3)")
    parser.add_argument("--bands", default="4", help="bands the model sees, e.g. 4,2,1 (default 4: near infrared, where water is "
                        "dark whatever its colour)")
    args = parser.parse_args(argv)
    rasters = sorted(args.data.glob("*.tif"))
    if len(rasters) < 2:
        print(f"The NAIP time series is not in {args.data}; give --data.", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="seg-naip-"))
    out.mkdir(parents=True, exist_ok=True)
    first_date = rasters[0].stem.rsplit("_", 1)[-1]  # m_..._20090818 -> 20090818
    start = water_bodies(rasters[0], args.water_bodies)
    print(f"{len(start)} water bodies on {first_date} ({start.area.sum() / 1e4:,.1f} ha), followed through {len(rasters)} dates")

    with warnings.catch_warnings(record=True):  # a lost object is a note in tracks.attrs["notes"], printed below
        tracks = seg.propagate(start, [str(r) for r in rasters], start_date=first_date, checkpoint=args.checkpoint,
                               bands=tuple(int(b) for b in args.bands.split(",")), out=str(out / "water_through_time.gpkg"))
    status = tracks.pivot_table(index="track_id", columns="date", values="status", aggfunc="first")
    print(status.to_string())
    for note in tracks.attrs["notes"]:
        print("  " + note)

    rows = seg.change(tracks, out=str(out / "change.json"), csv=str(out / "change.csv"), changes=str(out / "changes.gpkg"))
    for row in rows.itertuples():
        print(f"{row.date_from} -> {row.date_to}: water {row.area_from / 1e4:,.2f} -> {row.area_to / 1e4:,.2f} ha, "
              f"+{row.gained / 1e4:,.2f} / -{row.lost / 1e4:,.2f} ha, IoU {row.iou:.2f}")

    tiles = seg.drift([str(r) for r in rasters], tile=128, out=str(out / "drift.gpkg"), png=str(out / "drift.png"))
    for (date_from, date_to), pair in tiles.groupby(["date_from", "date_to"]):
        print(f"drift {date_from} -> {date_to}: mean {pair['drift'].astype(float).mean():.3f} over {len(pair)} tiles, "
              f"{int(pair['flagged'].astype(int).sum())} flagged")
    print(f"outputs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
