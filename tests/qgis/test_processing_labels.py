"""seg:rasterizelabels, seg:polygonizemasks and seg:exporttrainingdata through processing.run."""
import json
import os

import numpy as np
import pytest
import rasterio
from shapely.geometry import MultiPolygon, box

from seg_qgis_plugin.core.engine.labels import FIELD_NAMES, Label, attributes
from seg_qgis_plugin.core.outputs.vectors import write_labels

X0, Y0, RES = 500000.0, 4650000.0, 0.5
CRS = "EPSG:32633"


def px_box(c0, r0, c1, r1):
    return box(X0 + c0 * RES, Y0 - r1 * RES, X0 + c1 * RES, Y0 - r0 * RES)


@pytest.fixture
def labelled(raster_factory, tmp_path):
    """A 300 x 200 raster and a GeoPackage of three labels (two classes) on its pixel edges."""
    raster = raster_factory(np.random.default_rng(0).integers(0, 255, (3, 200, 300)).astype(np.uint8), name="img.tif")
    shapes = {"tree": [px_box(10, 10, 30, 40), px_box(200, 150, 260, 190)], "roof": [px_box(90, 90, 130, 110)]}
    labels = [Label(MultiPolygon([g]), CRS, attributes(name)) for name, geoms in shapes.items() for g in geoms]
    path = write_labels(labels, str(tmp_path / "labels.gpkg"))
    return raster, path, shapes


def test_rasterize_then_polygonize_returns_the_labels(run_algorithm, read_vector, labelled, tmp_path):
    from seg_qgis_plugin.qgis_adapters.geometry import to_shapely

    raster, labels, shapes = labelled
    out = str(tmp_path / "classes.tif")
    result = run_algorithm("seg:rasterizelabels", {"INPUT": labels, "FIELD": "class", "LIKE": raster, "KIND": 0, "OUTPUT": out})
    assert json.loads(result["CLASSES"]) == {"roof": 1, "tree": 2}
    with rasterio.open(out) as c, rasterio.open(raster) as src:
        assert (c.transform, c.crs, c.shape) == (src.transform, src.crs, src.shape)
        data = c.read(1)
    assert np.count_nonzero(data == 2) == 20 * 30 + 60 * 40 and np.count_nonzero(data == 1) == 40 * 20
    result = run_algorithm("seg:polygonizemasks", {"INPUT": out, "KIND": 0, "CLASS_FIELD": "class", "OUTPUT": str(tmp_path / "p.gpkg")})
    layer, features = read_vector(result["OUTPUT"])
    assert layer.crs().authid() == CRS and set(FIELD_NAMES) <= set(layer.fields().names())
    got = sorted((f["class"], to_shapely(f.geometry()).bounds) for f in features)
    assert got == sorted((name, g.bounds) for name, geoms in shapes.items() for g in geoms)
    assert all(to_shapely(f.geometry()).area in (600 * 0.25, 2400 * 0.25, 800 * 0.25) for f in features)


def test_an_ontology_gives_its_codes_both_ways(run_algorithm, read_vector, labelled, tmp_path):
    from qgis.core import QgsProcessingException

    raster, labels, shapes = labelled
    ontology = tmp_path / "classes.json"
    ontology.write_text(json.dumps({"classes": [{"name": "roof", "code": 7, "color": "#ff0000"},
                                                {"name": "tree", "code": 3, "color": "#00ff00"}]}))
    out = str(tmp_path / "classes.tif")
    result = run_algorithm("seg:rasterizelabels", {"INPUT": labels, "LIKE": raster, "ONTOLOGY": str(ontology), "OUTPUT": out})
    assert json.loads(result["CLASSES"]) == {"roof": 7, "tree": 3}
    with rasterio.open(out) as c:
        assert sorted(np.unique(c.read(1))) == [0, 3, 7]
    result = run_algorithm("seg:polygonizemasks", {"INPUT": out, "ONTOLOGY": str(ontology), "OUTPUT": str(tmp_path / "p.gpkg")})
    assert sorted(f["class"] for f in read_vector(result["OUTPUT"])[1]) == ["roof", "tree", "tree"]
    ontology.write_text(json.dumps({"classes": [{"name": "roof", "code": 7, "color": "#ff0000"}]}))
    with pytest.raises(QgsProcessingException, match="tree"):
        run_algorithm("seg:rasterizelabels", {"INPUT": labels, "LIKE": raster, "ONTOLOGY": str(ontology), "OUTPUT": str(tmp_path / "x.tif")})
    assert not os.path.exists(tmp_path / "x.tif")


def test_rasterize_real_buildings_as_instances_and_back(run_algorithm, read_vector, shared, tmp_path):
    image = shared("spacenet_atlanta_buildings", "sample_geotiff.tif")
    buildings = shared("spacenet_atlanta_buildings", "geotiff_labels.geojson")
    out = str(tmp_path / "ids.tif")
    run_algorithm("seg:rasterizelabels", {"INPUT": buildings, "LIKE": image, "KIND": 1, "OUTPUT": out})
    with rasterio.open(out) as ids, rasterio.open(image) as src:
        assert (ids.transform, ids.crs, ids.shape) == (src.transform, src.crs, src.shape)
        values = np.unique(ids.read(1))
    result = run_algorithm("seg:polygonizemasks", {"INPUT": out, "KIND": 1, "OUTPUT": str(tmp_path / "b.gpkg")})
    layer, features = read_vector(result["OUTPUT"])
    assert len(features) == len(values) - 1 > 30 and layer.crs().authid() == "EPSG:32616"


def test_polygonize_real_flood_mask_in_lonlat(run_algorithm, read_vector, shared, tmp_path):
    mask = shared("sen1floods11_spain_7370579", "Spain_7370579_LabelHand.tif")
    result = run_algorithm("seg:polygonizemasks", {"INPUT": mask, "KIND": 0, "CLASS_FIELD": "label", "OUTPUT": str(tmp_path / "f.gpkg")})
    layer, features = read_vector(result["OUTPUT"])
    assert layer.crs().authid() == "EPSG:4326" and "label" in layer.fields().names()
    with rasterio.open(mask) as src:
        water = np.count_nonzero(src.read(1) == 1)
        pixel = abs(src.transform.a * src.transform.e)
    area = sum(f.geometry().area() for f in features if f["class"] == "1")
    assert area == pytest.approx(water * pixel, rel=1e-6)


def test_export_training_data_chips_and_coco(run_algorithm, labelled, tmp_path):
    raster, labels, _ = labelled
    out = str(tmp_path / "train")
    result = run_algorithm("seg:exporttrainingdata", {"INPUT": raster, "LABELS": labels, "CLASS_FIELD": "class", "TILE": 100,
                                                      "OVERLAP": 0, "MIN_FRACTION": 0.01, "FORMAT": 0, "OUTPUT": out})
    coco = json.load(open(result["COCO"]))
    assert result["CHIPS"] == len(coco["images"]) == 5  # tree (0,0); roof in 4 chips incl. (0,0); tree 2 in (1,2)
    assert [c["name"] for c in coco["categories"]] == ["roof", "tree"]
    assert result["ANNOTATIONS"] == len(coco["annotations"]) == 1 + 4 + 1
    first = next(i for i in coco["images"] if i["file_name"] == "images/tile_0000_0000.tif")
    tree = next(a for a in coco["annotations"] if a["image_id"] == first["id"] and a["category_id"] == 2)
    assert tree["bbox"] == [10, 10, 20, 30]
    with rasterio.open(os.path.join(out, first["mask_file"])) as m, rasterio.open(os.path.join(out, first["file_name"])) as im:
        assert m.transform == im.transform and np.count_nonzero(m.read(1) == 2) == 600


def test_export_real_tree_boxes_match_their_pixel_boxes(run_algorithm, shared, tmp_path):
    import csv

    image = shared("neon_tree_crowns", "OSBS_029.tif")
    boxes = shared("neon_tree_crowns", "OSBS_029_boxes_derived.geojson")
    truth = list(csv.DictReader(open(shared("neon_tree_crowns", "OSBS_029.csv"))))
    result = run_algorithm("seg:exporttrainingdata", {"INPUT": image, "LABELS": boxes, "CLASS_FIELD": "label", "TILE": 400,
                                                      "OVERLAP": 0, "MIN_FRACTION": 0, "SKIP_NODATA": False, "FORMAT": 1,
                                                      "OUTPUT": str(tmp_path / "neon")})
    coco = json.load(open(result["COCO"]))
    assert coco["categories"] == [{"id": 1, "name": "Tree", "supercategory": ""}]
    got = sorted(tuple(round(v, 1) for v in a["bbox"]) for a in coco["annotations"])
    expected = sorted((float(r["xmin"]), float(r["ymin"]), float(r["xmax"]) - float(r["xmin"]), float(r["ymax"]) - float(r["ymin"]))
                      for r in truth)
    assert got == expected


def test_export_cancel_and_busy_folder_leave_nothing(run_algorithm, cancel_at, labelled, tmp_path):
    from qgis.core import QgsProcessingException

    raster, labels, _ = labelled
    out = str(tmp_path / "train")
    with pytest.raises(QgsProcessingException, match="Canceled"):
        run_algorithm("seg:exporttrainingdata", {"INPUT": raster, "LABELS": labels, "TILE": 32, "MIN_FRACTION": 0, "OUTPUT": out},
                      cancel_at(30))
    assert not os.path.exists(out) and not [n for n in os.listdir(tmp_path) if n.startswith(".seg")]
    os.makedirs(out)
    open(os.path.join(out, "keep.txt"), "w").close()
    with pytest.raises(QgsProcessingException, match="not empty"):
        run_algorithm("seg:exporttrainingdata", {"INPUT": raster, "LABELS": labels, "TILE": 100, "OUTPUT": out})
    assert os.listdir(out) == ["keep.txt"]
    with pytest.raises(QgsProcessingException, match="no field 'nope'|field 'nope'"):
        run_algorithm("seg:rasterizelabels", {"INPUT": labels, "FIELD": "nope", "LIKE": raster, "OUTPUT": str(tmp_path / "x.tif")})
