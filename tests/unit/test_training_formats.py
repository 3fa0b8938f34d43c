"""COCO, Pascal VOC and YOLO exports read back with independent readers (json, ElementTree + PIL, plain
text), compared with the labels to the pixel; augmented chips and their annotations."""
import json
import os
import warnings
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from rasterio.features import rasterize
from shapely.geometry import Polygon

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.engine.ontology import Ontology, OntologyClass, save_ontology
from seg_qgis_plugin.core.errors import SegWarning
from seg_qgis_plugin.core.outputs.training_data import SplitOptions, TrainingOptions, export_training_data
from seg_qgis_plugin.core.outputs.vectors import write_labels

X0, Y0, RES = 500000.0, 4650000.0, 0.5
CRS = "EPSG:32633"
ONTOLOGY = Ontology([OntologyClass("water", 1), OntologyClass("roof", 2), OntologyClass("tree", 5)])
CODES = {"roof": 2, "tree": 5}


def to_map(points):
    return Polygon([(X0 + c * RES, Y0 - r * RES) for c, r in points])


@pytest.fixture
def scene(raster_factory):
    """200 x 300 raster; a tree box in chip (0,0), a roof box across 4 chips, a roof triangle in chip (0,1)."""
    data = np.random.default_rng(0).integers(0, 255, (3, 200, 300)).astype(np.uint8)
    path = raster_factory(data)
    shapes = [(to_map([(10, 10), (30, 10), (30, 40), (10, 40)]), "tree"), (to_map([(90, 90), (130, 90), (130, 110), (90, 110)]), "roof"),
              (to_map([(150, 20), (190, 20), (150, 80)]), "roof")]
    labels = [Label(g, CRS, attributes(name)) for g, name in shapes]
    with rasterio.open(path) as src:
        truth = rasterize([(g, CODES[n]) for g, n in shapes], out_shape=(200, 300), transform=src.transform, dtype="uint8")
    return path, data, labels, truth


def window_of(stem, tile=100):
    i, j = (int(v) for v in stem.split("_")[1:3])
    return j * tile, i * tile


def burn(polygons, width, height):
    """Pixel-centre rasterization of polygons given in chip pixel coordinates."""
    if not polygons:
        return np.zeros((height, width), bool)
    return rasterize([(p, 1) for p in polygons], out_shape=(height, width), transform=Affine.identity(), dtype="uint8") > 0


def test_voc_reads_back_with_elementtree_and_pil(scene, tmp_path):
    path, _, labels, truth = scene
    out = tmp_path / "voc"
    options = TrainingOptions(tile=100, min_labeled_fraction=0.01, ontology=ONTOLOGY, dataset_format="voc")
    summary = export_training_data(path, labels, str(out), options)
    stems = open(out / "ImageSets" / "Segmentation" / "trainval.txt").read().split()
    assert sorted(stems) == ["tile_0000_0000", "tile_0000_0001", "tile_0001_0000", "tile_0001_0001"] and summary.chips == 4
    boxes = {}
    for stem in stems:
        root = ET.parse(out / "Annotations" / f"{stem}.xml").getroot()
        assert root.findtext("filename") == f"{stem}.jpg" and root.findtext("segmented") == "1"
        jpeg = Image.open(out / "JPEGImages" / f"{stem}.jpg")
        assert jpeg.format == "JPEG" and jpeg.size == (100, 100) and jpeg.mode == "RGB"
        classes, objects = Image.open(out / "SegmentationClass" / f"{stem}.png"), Image.open(out / "SegmentationObject" / f"{stem}.png")
        assert classes.mode == objects.mode == "P"
        assert classes.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]  # VOC palette
        c, r = window_of(stem)
        class_values, object_values = np.array(classes), np.array(objects)
        np.testing.assert_array_equal(class_values, truth[r:r + 100, c:c + 100])
        xml_objects = root.findall("object")
        assert object_values.max() == len(xml_objects)
        for k, node in enumerate(xml_objects, start=1):
            rows, cols = np.nonzero(object_values == k)
            bb = {t: int(node.find("bndbox").findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")}
            assert bb == {"xmin": cols.min() + 1, "ymin": rows.min() + 1, "xmax": cols.max() + 1, "ymax": rows.max() + 1}
            assert set(class_values[object_values == k]) == {CODES[node.findtext("name")]}
            boxes.setdefault(stem, []).append((node.findtext("name"), bb, node.findtext("truncated")))
    assert ("tree", {"xmin": 11, "ymin": 11, "xmax": 30, "ymax": 40}, "0") in boxes["tile_0000_0000"]
    assert ("roof", {"xmin": 1, "ymin": 1, "xmax": 30, "ymax": 10}, "1") in boxes["tile_0001_0001"]


def test_yolo_polygons_match_the_masks_and_ids_follow_the_ontology(scene, tmp_path):
    path, _, labels, truth = scene
    out = tmp_path / "yolo"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SegWarning)
        export_training_data(path, labels, str(out),
                             TrainingOptions(tile=100, min_labeled_fraction=0, ontology=ONTOLOGY, dataset_format="yolo"),
                             SplitOptions(split="0.5,0.5,0", block_size=1, seed=2))
    lines = open(out / "data.yaml").read().splitlines()
    assert "train: images/train" in lines and "val: images/val" in lines and "nc: 5" in lines
    names = [line.split(": ", 1)[1].strip("'") for line in lines[lines.index("names:") + 1:]]
    assert names == ["water", "roof", "unused_3", "unused_4", "tree"]  # id = code - 1
    seen = 0
    for split in ("train", "val"):
        for name in os.listdir(out / "labels" / split):
            stem = name[:-4]
            assert os.path.exists(out / "images" / split / f"{stem}.png")
            c, r = window_of(stem)
            chip = truth[r:r + 100, c:c + 100]
            polygons = {}
            for line in open(out / "labels" / split / name).read().splitlines():
                values = line.split()
                xy = np.array(values[1:], float).reshape(-1, 2) * 100
                assert 0 <= xy.min() and xy.max() <= 100
                polygons.setdefault(int(values[0]) + 1, []).append(Polygon(xy))
                seen += 1
            for code in (2, 5):
                np.testing.assert_array_equal(burn(polygons.get(code, []), 100, 100), chip == code)
    assert seen == 1 + 4 + 1  # tree, roof in 4 chips, triangle


def test_coco_with_classes_and_the_old_format_flag(capsys, scene, tmp_path):
    path, _, labels, truth = scene
    write_labels(labels, str(tmp_path / "l.gpkg"))
    save_ontology(ONTOLOGY, str(tmp_path / "classes.json"))
    code = main(["export-training", path, "--labels", str(tmp_path / "l.gpkg"), "--out", str(tmp_path / "c"), "--tile", "100",
                 "--min-labeled", "0.01", "--classes", str(tmp_path / "classes.json"), "--format", "png"])
    err = capsys.readouterr().err
    assert code == 0 and "--format png is now --image-format png" in err
    coco = json.load(open(tmp_path / "c" / "annotations.json"))
    assert [(c["id"], c["name"]) for c in coco["categories"]] == [(2, "roof"), (5, "tree")]
    for img in coco["images"]:
        assert img["file_name"].endswith(".png") and img["split"] == "all"
        c, r = (int(v) for v in img["window"].split(",")[:2])
        mask = np.array(Image.open(tmp_path / "c" / img["mask_file"]))
        np.testing.assert_array_equal(mask, truth[r:r + 100, c:c + 100])
        for cat in (2, 5):
            polygons = [Polygon(np.array(s).reshape(-1, 2)) for a in coco["annotations"]
                        if a["image_id"] == img["id"] and a["category_id"] == cat for s in a["segmentation"]]
            np.testing.assert_array_equal(burn(polygons, 100, 100), mask == cat)


def test_augmented_training_chips_match_their_annotations_and_the_map(scene, tmp_path):
    path, data, labels, _ = scene
    out = tmp_path / "aug"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SegWarning)
        summary = export_training_data(path, labels, str(out), TrainingOptions(tile=100, ontology=ONTOLOGY, augment="flips,rot90"),
                                       SplitOptions(split="1,1,0", block_size=1, seed=0))
    coco = json.load(open(out / "train.json"))
    originals = [i for i in coco["images"] if "augmentation" not in i]
    copies = [i for i in coco["images"] if "augmentation" in i]
    assert summary.augmented == len(copies) == 5 * len(originals) == 5 * summary.splits["train"]
    assert not any("augmentation" in i for i in json.load(open(out / "val.json"))["images"])
    assert {i["augmentation"] for i in copies} == {"flipx", "flipy", "rot90", "rot180", "rot270"}
    with rasterio.open(path) as src:
        inverse = ~src.transform
    for img in copies:
        with rasterio.open(out / img["file_name"]) as im, rasterio.open(out / img["mask_file"]) as m:
            image, mask, transform = im.read(), m.read(1), im.transform
        for cat in (2, 5):
            polygons = [Polygon(np.array(s).reshape(-1, 2)) for a in coco["annotations"]
                        if a["image_id"] == img["id"] and a["category_id"] == cat for s in a["segmentation"]]
            np.testing.assert_array_equal(burn(polygons, 100, 100), mask == cat)
        # every augmented pixel still sits on its own place on the map: its centre maps back to the same raster pixel
        rows, cols = np.mgrid[0:100, 0:100]
        x, y = transform * (cols + 0.5, rows + 0.5)
        c, r = inverse * (x, y)
        np.testing.assert_array_equal(image, data[:, np.floor(r).astype(int), np.floor(c).astype(int)])


def test_real_tree_boxes_as_yolo_polygons(shared, tmp_path):
    import csv

    image = shared("neon_tree_crowns", "OSBS_029.tif")
    boxes = shared("neon_tree_crowns", "OSBS_029_boxes_derived.geojson")
    truth = list(csv.DictReader(open(shared("neon_tree_crowns", "OSBS_029.csv"))))
    from seg_qgis_plugin.core.outputs.vectors import read_labels

    options = TrainingOptions(tile=400, class_field="label", skip_nodata=False, dataset_format="yolo",
                              ontology=Ontology([OntologyClass("Tree", 1)]))
    export_training_data(image, read_labels(boxes), str(tmp_path / "neon"), options)
    got = []
    for line in open(tmp_path / "neon" / "labels" / "all" / "tile_0000_0000.txt"):
        values = line.split()
        assert values[0] == "0"
        xy = np.array(values[1:], float).reshape(-1, 2) * 400
        got.append(tuple(round(v, 1) for v in (*xy.min(axis=0), *xy.max(axis=0))))
    expected = [(float(r["xmin"]), float(r["ymin"]), float(r["xmax"]), float(r["ymax"])) for r in truth]
    assert sorted(got) == sorted(expected)
    report = json.load(open(tmp_path / "neon" / "report.json"))
    assert report["splits"]["all"]["classes"]["Tree"]["objects"] == len(truth)
