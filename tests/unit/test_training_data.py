import json
import os

import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from seg_qgis_plugin.core.errors import Canceled, OutputError, SegError
from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.outputs.training_data import TrainingOptions, export_training_data

X0, Y0, RES = 500000.0, 4650000.0, 0.5
CRS = "EPSG:32633"


def px_box(c0, r0, c1, r1):
    """A box on raster pixel edges (columns c0..c1, rows r0..r1) in map coordinates."""
    return box(X0 + c0 * RES, Y0 - r1 * RES, X0 + c1 * RES, Y0 - r0 * RES)


def label(geometry, name):
    return Label(geometry, CRS, attributes(name))


@pytest.fixture
def scene(raster_factory):
    data = np.random.default_rng(0).integers(0, 255, (3, 200, 300)).astype(np.uint8)
    path = raster_factory(data)
    labels = [label(px_box(10, 10, 30, 40), "tree"), label(px_box(90, 90, 130, 110), "roof")]  # roof crosses 4 chips
    return path, data, labels


def test_chips_masks_and_coco_polygons_in_chip_pixels(scene, tmp_path):
    path, data, labels = scene
    out = tmp_path / "train"
    summary = export_training_data(path, labels, str(out), TrainingOptions(tile=100, overlap=0, min_labeled_fraction=0.01))
    coco = json.load(open(out / "annotations.json"))
    assert summary.categories == {"roof": 1, "tree": 2}
    assert [c["name"] for c in coco["categories"]] == ["roof", "tree"]
    # the tree lies in chip (0, 0); the roof's 40x20 box covers chips (0,0),(0,1),(1,0),(1,1) with 10x10 each
    names = sorted(img["file_name"] for img in coco["images"])
    assert names == ["images/tile_0000_0000.tif", "images/tile_0000_0001.tif", "images/tile_0001_0000.tif", "images/tile_0001_0001.tif"]
    first = next(img for img in coco["images"] if img["file_name"].endswith("0000_0000.tif"))
    anns = {a["category_id"]: a for a in coco["annotations"] if a["image_id"] == first["id"]}
    assert anns[2]["bbox"] == [10, 10, 20, 30] and anns[2]["area"] == 600
    assert sorted(zip(anns[2]["segmentation"][0][::2], anns[2]["segmentation"][0][1::2])) == [(10, 10), (10, 40), (30, 10), (30, 40)]
    assert anns[1]["bbox"] == [90, 90, 10, 10]
    second = next(img for img in coco["images"] if img["file_name"].endswith("0001_0001.tif"))
    roof = next(a for a in coco["annotations"] if a["image_id"] == second["id"])
    assert roof["bbox"] == [0, 0, 30, 10]  # roof pixels 100..130 x 100..110 in chip (1,1) starting at (100, 100)
    with rasterio.open(out / "masks" / "tile_0000_0000.tif") as m, rasterio.open(out / "images" / "tile_0000_0000.tif") as im:
        mask = m.read(1)
        assert mask[10:40, 10:30].min() == 2 and np.count_nonzero(mask == 2) == 600
        assert np.count_nonzero(mask == 1) == 100
        np.testing.assert_array_equal(im.read(), data[:, :100, :100])
        assert m.transform == im.transform == rasterio.open(path).transform


def test_zero_fraction_keeps_background_chips_and_overlap_adds_chips(scene, tmp_path):
    path, _, labels = scene
    summary = export_training_data(path, labels, str(tmp_path / "all"), TrainingOptions(tile=100, overlap=0, min_labeled_fraction=0))
    assert summary.chips == 6
    summary = export_training_data(path, labels, str(tmp_path / "ov"), TrainingOptions(tile=100, overlap=50, min_labeled_fraction=0))
    assert summary.chips == 3 * 5


def test_png_chips(scene, tmp_path):
    import cv2

    path, _, labels = scene
    export_training_data(path, labels, str(tmp_path / "png"), TrainingOptions(tile=100, min_labeled_fraction=0.01, image_format="png"))
    mask = cv2.imread(str(tmp_path / "png" / "masks" / "tile_0000_0000.png"), cv2.IMREAD_UNCHANGED)
    image = cv2.imread(str(tmp_path / "png" / "images" / "tile_0000_0000.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (100, 100) and np.count_nonzero(mask == 2) == 600 and image.shape == (100, 100, 3)


def test_labels_in_another_crs_are_reprojected(scene, tmp_path):
    from seg_qgis_plugin.core.geo.vectorize import reproject_geometry

    path, _, labels = scene
    lonlat = [Label(reproject_geometry(lab.geometry, CRS, "EPSG:4326"), "EPSG:4326", lab.attributes) for lab in labels]
    export_training_data(path, lonlat, str(tmp_path / "ll"), TrainingOptions(tile=100, min_labeled_fraction=0.01))
    with rasterio.open(tmp_path / "ll" / "masks" / "tile_0000_0000.tif") as m:
        assert abs(np.count_nonzero(m.read(1) == 2) - 600) <= 4


def test_cancel_and_bad_targets_leave_nothing(scene, tmp_path):
    path, _, labels = scene

    class Cancel:
        def set_progress(self, p):
            pass

        def is_canceled(self):
            return True

    with pytest.raises(Canceled):
        export_training_data(path, labels, str(tmp_path / "c"), TrainingOptions(tile=100), progress=Cancel())
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(path)]
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not empty"):
        export_training_data(path, labels, str(busy), TrainingOptions(tile=100))
    assert os.listdir(busy) == ["x.txt"]
    with pytest.raises(SegError, match="field"):
        export_training_data(path, labels, str(tmp_path / "f"), TrainingOptions(tile=100, class_field="missing"))
