"""QA and agreement of two annotators with the Seg Python API: check each annotator's building
footprints, then measure how well the second agrees with the first.

The data (SpaceNet Atlanta, a 0.5 m panchromatic tile and its 43 building footprints) is
described in ../shared/data/spacenet_atlanta_buildings/README.md. Annotator A is the SpaceNet
footprints as they are. Annotator B is made from them the way a second, hastier person labels:
outlines traced 0.8 m off and simplified to 1 m, small buildings called sheds, the buildings cut
by the tile's edge skipped, and two outlines drawn twice.

Run:
    .venv/bin/python examples/qa_two_annotators.py --out annotators_out
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import seg_qgis_plugin.api as seg

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "spacenet_atlanta_buildings"
SHED_AREA = 60.0  # m2: annotator B calls smaller buildings sheds


def annotator_a(data: Path):
    """The SpaceNet footprints, class "building"."""
    footprints = seg.read_labels(data / "geotiff_labels.geojson")
    return footprints[["osm_id", "truncated", "geometry"]].assign(**{"class": "building", "annotator": "A"})


def annotator_b(a):
    """A's footprints as a second person would label them (see the module docstring)."""
    import geopandas as gpd
    import pandas as pd

    b = a[a["truncated"] == 0].copy()
    b["geometry"] = b.geometry.translate(0.8, -0.4).simplify(1.0)
    b["class"] = ["shed" if g.area < SHED_AREA else "building" for g in b.geometry]
    twice = b.iloc[[3, 7]].assign(geometry=lambda d: d.geometry.translate(0.3, 0.3))
    return gpd.GeoDataFrame(pd.concat([b, twice], ignore_index=True), geometry="geometry", crs=a.crs).assign(annotator="B")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the spacenet_atlanta_buildings folder")
    parser.add_argument("--out", type=Path, help="folder for the outputs (default: a new temporary folder)")
    args = parser.parse_args(argv)
    if not (args.data / "geotiff_labels.geojson").exists():
        print(f"The SpaceNet Atlanta data is not in {args.data}; give --data.", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="seg-annotators-"))
    out.mkdir(parents=True, exist_ok=True)
    a = annotator_a(args.data)
    b = annotator_b(a)
    layers = {"A": seg.write_labels(a, str(out / "annotator_a.gpkg")), "B": seg.write_labels(b, str(out / "annotator_b.gpkg"))}
    raster = str(args.data / "sample_geotiff.tif")

    for who, layer in layers.items():
        findings = seg.qa(layer, out=str(out / f"qa_{who.lower()}.gpkg"), report=str(out / f"qa_{who.lower()}.json"))
        kinds = findings["kind"].value_counts().to_dict()
        print(f"annotator {who}: {len(seg.read_labels(layer))} labels, " +
              (", ".join(f"{n} {kind}" for kind, n in kinds.items()) if kinds else "no findings"))

    figures = seg.agreement(layers["A"], layers["B"], by_class=True, like=raster, out=str(out / "agreement.json"),
                            unmatched=str(out / "unmatched.gpkg"), html=str(out / "agreement.html"))
    print(figures[["scope", "class", "objects_a", "objects_b", "matched", "f1", "mean_iou", "boundary_iou", "kappa"]]
          .to_string(index=False, float_format="{:.3f}".format))
    print(f"outputs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
