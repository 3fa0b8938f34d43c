"""seg:exporttrainingdata with the dataset formats, splits by block and by a field of split areas, the
ontology and augmentation, run through QGIS Processing."""
import json
import os
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from shapely.geometry import box

from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.engine.ontology import Ontology, OntologyClass, save_ontology
from seg_qgis_plugin.core.outputs.vectors import write_labels

X0, Y0, RES = 500000.0, 4650000.0, 0.5
CRS = "EPSG:32633"


def px_box(c0, r0, c1, r1):
    return box(X0 + c0 * RES, Y0 - r1 * RES, X0 + c1 * RES, Y0 - r0 * RES)


@pytest.fixture
def scene(raster_factory, tmp_path):
    raster = raster_factory(np.random.default_rng(0).integers(0, 255, (3, 200, 400)).astype(np.uint8), name="img.tif")
    labels = [Label(px_box(c + 10, r + 10, c + 40, r + 40), CRS, attributes("tree" if c % 200 else "roof"))
              for r in (0, 100) for c in (0, 100, 200, 300)]
    path = write_labels(labels, str(tmp_path / "labels.gpkg"))
    ontology = str(tmp_path / "classes.json")
    save_ontology(Ontology([OntologyClass("roof", 3), OntologyClass("tree", 7)]), ontology)
    return raster, path, ontology


def test_voc_with_split_areas_ontology_and_augment(run_algorithm, scene, tmp_path):
    raster, labels, ontology = scene
    areas = write_labels([Label(px_box(0, 0, 200, 200), CRS, {"use": "train"}), Label(px_box(200, 0, 400, 200), CRS, {"use": "val"})],
                         str(tmp_path / "areas.gpkg"), fields=[("use", "str", "use")])
    out = str(tmp_path / "voc")
    result = run_algorithm("seg:exporttrainingdata", {
        "INPUT": raster, "LABELS": labels, "CLASS_FIELD": "class", "TILE": 100, "OVERLAP": 0, "MIN_FRACTION": 0,
        "DATASET_FORMAT": 1, "ONTOLOGY": ontology, "SPLIT_BY": 2, "AOI": areas, "SPLIT_FIELD": "use", "AUGMENT": "flips",
        "OUTPUT": out})
    assert result["CHIPS"] == 8 and result["COCO"] == "" and os.path.exists(result["REPORT"])
    train = open(os.path.join(out, "ImageSets", "Segmentation", "train.txt")).read().split()
    val = open(os.path.join(out, "ImageSets", "Segmentation", "val.txt")).read().split()
    assert len(train) == 4 * 3 and len(val) == 4  # 4 train chips and their flipx, flipy copies
    assert all(int(stem.split("_")[2]) < 2 for stem in train) and all(int(stem.split("_")[2]) >= 2 for stem in val)
    root = ET.parse(os.path.join(out, "Annotations", "tile_0000_0000.xml")).getroot()
    assert [o.findtext("name") for o in root.findall("object")] == ["roof"]
    from PIL import Image

    assert set(np.unique(np.array(Image.open(os.path.join(out, "SegmentationClass", "tile_0000_0001.png"))))) == {0, 7}
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["splits"]["train"]["augmented_chips"] == 8 and report["splits"]["val"]["augmented_chips"] == 0


def test_yolo_block_split_and_bad_split_field(run_algorithm, scene, tmp_path):
    from qgis.core import QgsProcessingException

    raster, labels, ontology = scene
    out = str(tmp_path / "yolo")
    result = run_algorithm("seg:exporttrainingdata", {
        "INPUT": raster, "LABELS": labels, "CLASS_FIELD": "class", "TILE": 100, "OVERLAP": 0, "MIN_FRACTION": 0,
        "DATASET_FORMAT": 2, "FORMAT": 1, "ONTOLOGY": ontology, "SPLIT": "0.5,0.5,0", "SEED": 4, "BLOCK_SIZE": 1, "OUTPUT": out})
    assert result["DATASET"] == os.path.join(out, "data.yaml")
    counts = {s: len(os.listdir(os.path.join(out, "labels", s))) for s in ("train", "val")}
    assert counts == {"train": 4, "val": 4}
    with pytest.raises(QgsProcessingException, match="split areas"):
        run_algorithm("seg:exporttrainingdata", {"INPUT": raster, "LABELS": labels, "TILE": 100, "SPLIT_BY": 2,
                                                 "OUTPUT": str(tmp_path / "bad")})
    assert not os.path.exists(tmp_path / "bad")
