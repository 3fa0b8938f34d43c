"""Spatial splits of training chips: disjoint with the buffer, seeded, AOI fields, the split layer and the report."""
import json
import os
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.features import rasterize
from shapely.geometry import box

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.errors import SegError, SegWarning
from seg_qgis_plugin.core.geo.vectorize import reproject_geometry
from seg_qgis_plugin.core.outputs.splits import parse_fractions
from seg_qgis_plugin.core.outputs.training_data import SplitOptions, TrainingOptions, export_training_data
from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels

X0, Y0, RES = 500000.0, 4650000.0, 0.5
CRS = "EPSG:32633"


def px_box(c0, r0, c1, r1):
    return box(X0 + c0 * RES, Y0 - r1 * RES, X0 + c1 * RES, Y0 - r0 * RES)


@pytest.fixture
def grid_scene(raster_factory):
    """A 400 x 400 raster with a 4 x 4 lattice of labelled squares (two classes)."""
    data = np.random.default_rng(1).integers(0, 255, (3, 400, 400)).astype(np.uint8)
    labels = [Label(px_box(c + 10, r + 10, c + 40, r + 40), CRS, attributes("a" if (r + c) % 200 else "b"))
              for r in range(0, 400, 100) for c in range(0, 400, 100)]
    return raster_factory(data), labels


def windows(coco):
    """image file -> (col, row, width, height) of its chip."""
    return {img["file_name"]: tuple(int(v) for v in img["window"].split("@")[0].split(",")) for img in coco["images"]}


def pixels(window):
    c, r, w, h = window
    return {(y, x) for y in range(r, r + h) for x in range(c, c + w)}


def test_block_split_with_overlap_never_puts_a_pixel_in_two_splits(grid_scene, tmp_path):
    path, labels = grid_scene
    out = tmp_path / "split"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SegWarning)
        summary = export_training_data(path, labels, str(out), TrainingOptions(tile=64, overlap=16),
                                       SplitOptions(split="0.6,0.2,0.2", seed=3, block_size=2))
    parts = {name: json.load(open(out / f"{name}.json")) for name in ("train", "val", "test")}
    everything = json.load(open(out / "annotations.json"))
    covered = {name: set().union(*(pixels(w) for w in windows(coco).values())) for name, coco in parts.items()}
    assert all(covered.values())
    assert not covered["train"] & covered["val"] and not covered["train"] & covered["test"] and not covered["val"] & covered["test"]
    assert sorted(i["file_name"] for p in parts.values() for i in p["images"]) == sorted(i["file_name"] for i in everything["images"])
    assert {name: len(p["images"]) for name, p in parts.items()} == summary.splits
    report = json.load(open(out / "report.json"))
    assert report["skipped"].get("in the buffer between splits", 0) > 0  # overlap 16: neighbouring blocks share pixels
    assert summary.chips + sum(report["skipped"].values()) == 8 * 8
    assert {s: p["chips"] for s, p in report["splits"].items()} == summary.splits
    # the split layer: blocks on the map, disjoint across splits, each exactly the union of its chips
    import pyogrio.raw
    from shapely import from_wkb, unary_union

    meta, _, geometries, fields = pyogrio.raw.read(out / "splits.gpkg", layer="splits")
    names = list(fields[list(meta["fields"]).index("split")])
    by_split = {s: unary_union([from_wkb(g) for g, n in zip(geometries, names) if n == s]) for s in ("train", "val", "test")}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert by_split[a].intersection(by_split[b]).area == 0
    for name in parts:
        assert by_split[name].area == pytest.approx(len(covered[name]) * RES * RES)
    assert set(names) == {"train", "val", "test", "buffer"}


def test_same_seed_same_split_other_seed_other_split(grid_scene, tmp_path):
    path, labels = grid_scene

    def split_of(seed, name):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SegWarning)
            export_training_data(path, labels, str(tmp_path / name), TrainingOptions(tile=50),
                                 SplitOptions(split=[0.5, 0.25, 0.25], seed=seed, block_size=2))
        coco = json.load(open(tmp_path / name / "annotations.json"))
        return {i["file_name"]: i["split"] for i in coco["images"]}

    first, again, other = split_of(7, "a"), split_of(7, "b"), split_of(8, "c")
    assert first == again and first != other
    counts = {s: list(first.values()).count(s) for s in ("train", "val", "test")}
    assert counts == {"train": 32, "val": 16, "test": 16}  # overlap 0: 64 chips, 16 blocks of 4, nothing dropped


def test_random_split_says_it_leaks(grid_scene, tmp_path):
    path, labels = grid_scene
    with pytest.warns(SegWarning, match="random split leaks"):
        summary = export_training_data(path, labels, str(tmp_path / "r"), TrainingOptions(tile=100),
                                       SplitOptions(split="0.5,0.5", split_by="random"))
    assert summary.splits == {"train": 8, "val": 8}
    assert "random split leaks" in " ".join(json.load(open(tmp_path / "r" / "report.json"))["warnings"])


def test_aoi_field_split_keeps_chips_inside_one_area(grid_scene, tmp_path):
    path, labels = grid_scene
    aoi = [Label(px_box(0, 0, 200, 400), CRS, {"use": "Train"}), Label(px_box(250, 0, 400, 400), CRS, {"use": "test"})]
    lonlat = [Label(reproject_geometry(a.geometry, CRS, "EPSG:4326"), "EPSG:4326", a.attributes) for a in aoi]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SegWarning)
        summary = export_training_data(path, labels, str(tmp_path / "aoi"), TrainingOptions(tile=100),
                                       SplitOptions(split_by="use", aoi=aoi))
    coco = json.load(open(tmp_path / "aoi" / "annotations.json"))
    for img in coco["images"]:
        c, r, w, h = windows({"images": [img]})[img["file_name"]]
        assert img["split"] == ("train" if c + w <= 200 else "test") and (c + w <= 200 or c >= 250)
    assert summary.splits == {"train": 8, "test": 4}  # columns 0-1 train, column 3 test, column 2 straddles
    assert summary.skipped == {"not inside one split's area": 4}
    assert os.path.exists(tmp_path / "aoi" / "test.json") and not os.path.exists(tmp_path / "aoi" / "val.json")
    with warnings.catch_warnings():  # areas in another CRS give the same split (reprojected; edges move by float noise only)
        warnings.simplefilter("ignore", SegWarning)
        again = export_training_data(path, labels, str(tmp_path / "ll"), TrainingOptions(tile=100),
                                     SplitOptions(split_by="use", aoi=[Label(g.geometry.buffer(1e-7), g.crs, g.attributes) for g in lonlat]))
    assert again.splits == summary.splits
    with pytest.raises(SegError, match="holds 'holdout'"):
        export_training_data(path, labels, str(tmp_path / "bad"), TrainingOptions(tile=100),
                             SplitOptions(split_by="use", aoi=[Label(px_box(0, 0, 10, 10), CRS, {"use": "holdout"})]))
    with pytest.raises(SegError, match="no field 'kind'"):
        export_training_data(path, labels, str(tmp_path / "bad"), TrainingOptions(tile=100), SplitOptions(split_by="kind", aoi=aoi))
    assert not os.path.exists(tmp_path / "bad")


def test_bad_split_values_are_one_sentence():
    assert parse_fractions("70,15,15") == pytest.approx((0.7, 0.15, 0.15))
    for bad in ("0.7", "a,b,c", "-1,1,1", "0,0,0"):
        with pytest.raises(SegError, match="split"):
            parse_fractions(bad)


def test_cli_split_on_real_buildings_masks_agree_with_labels(capsys, shared, tmp_path):
    image = shared("spacenet_atlanta_buildings", "sample_geotiff.tif")
    labels = shared("spacenet_atlanta_buildings", "geotiff_labels.geojson")
    out = tmp_path / "atl"
    code = main(["export-training", image, "--labels", labels, "--class-field", "building", "--out", str(out), "--tile", "150",
                 "--overlap", "30", "--split", "0.7,0.15,0.15", "--seed", "1", "--block-size", "2"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "chips (train" in stdout and "report:" in stdout
    buildings = read_labels(labels)
    with rasterio.open(image) as src:
        truth = rasterize([(lab.geometry, 1) for lab in buildings], out_shape=(src.height, src.width), transform=src.transform,
                          dtype="uint8")
    coco = json.load(open(out / "annotations.json"))
    report = json.load(open(out / "report.json"))
    splits = {}
    for img in coco["images"]:
        c, r, w, h = windows({"images": [img]})[img["file_name"]]
        with rasterio.open(out / img["mask_file"]) as m:
            np.testing.assert_array_equal(m.read(1), truth[r:r + h, c:c + w])
        splits.setdefault(img["split"], set()).update(pixels((c, r, w, h)))
    assert len(splits) == 3 and not (splits["train"] & splits["val"]) and not (splits["train"] & splits["test"]) \
        and not (splits["val"] & splits["test"])
    mask_pixels = {s: 0 for s in splits}
    for img in coco["images"]:
        with rasterio.open(out / img["mask_file"]) as m:
            mask_pixels[img["split"]] += int(np.count_nonzero(m.read(1)))
    assert {s: report["splits"][s]["classes"]["yes"]["pixels"] for s in splits} == mask_pixels
    html = open(out / "report.html").read()
    assert "data:image/png;base64," in html and "Training data report" in html


def test_cli_aoi_needs_a_field(capsys, grid_scene, tmp_path):
    path, labels = grid_scene
    write_labels(labels, str(tmp_path / "l.gpkg"))
    write_labels([Label(px_box(0, 0, 200, 400), CRS, attributes("x"))], str(tmp_path / "aoi.gpkg"))
    code = main(["export-training", path, "--labels", str(tmp_path / "l.gpkg"), "--out", str(tmp_path / "o"), "--aoi",
                 str(tmp_path / "aoi.gpkg")])
    assert code == 2 and "--split-by FIELD" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o")
