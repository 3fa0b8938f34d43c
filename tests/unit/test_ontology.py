"""Ontology and stable class codes: exact round trips, the same codes in every file, class rasters
that carry names and colours, and one sentence for bad input."""
import json
import os
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import box

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.engine.ontology import (Ontology, OntologyClass, check_code_fits, class_codes, load_ontology,
                                                  save_ontology)
from seg_qgis_plugin.core.errors import OntologyError, SegWarning
from seg_qgis_plugin.core.outputs.label_rasters import RasterizeOptions, polygonize_raster, rasterize_labels
from seg_qgis_plugin.core.outputs.training_data import TrainingOptions, export_training_data
from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels

CRS = "EPSG:32633"
TRANSFORM = from_origin(500000, 4650000, 0.5, 0.5)
ONTOLOGY = {"classes": [
    {"name": "water", "code": 7, "color": "#1F78B4"},
    {"name": "pond", "code": 11, "color": "#a6cee3", "parent": "water"},
    {"name": "building", "code": 3, "color": "#e31a1c",
     "attributes": {"roof": {"type": "str", "values": ["flat", "pitched"]}}}]}


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write_raster(path, data, tags=None):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype,
                       crs=CRS, transform=TRANSFORM) as dst:
        dst.write(data, 1)
        if tags:
            dst.update_tags(**tags)
    return str(path)


def label(name, col0, row0, col1, row1):
    x0, y1 = TRANSFORM * (col0, row0)
    x1, y0 = TRANSFORM * (col1, row1)
    return Label(box(x0, y0, x1, y1), CRS, attributes(name))


@pytest.fixture
def ontology_file(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps(ONTOLOGY))
    return str(path)


@pytest.fixture
def like(tmp_path):
    return write_raster(tmp_path / "like.tif", np.zeros((60, 80), np.uint8))


def test_load_save_and_look_up(ontology_file, tmp_path):
    ontology = load_ontology(ontology_file)
    assert ontology.names == ["water", "pond", "building"]
    assert ontology.code_of("pond") == 11 and ontology.name_of(3) == "building" and ontology.color_of("water") == "#1f78b4"
    assert ontology.get("pond").parent == "water" and ontology.children_of("water") == ["pond"]
    roof = ontology.get("building").attributes[0]
    assert (roof.name, roof.type, roof.values) == ("roof", "str", ("flat", "pitched"))
    assert load_ontology(save_ontology(ontology, str(tmp_path / "again.json"))) == ontology
    assert json.loads(ontology.to_json())["classes"][1] == {"name": "pond", "code": 11, "color": "#a6cee3", "parent": "water"}
    pytest.importorskip("yaml", reason="PyYAML is not installed: YAML ontologies are optional")
    assert load_ontology(save_ontology(ontology, str(tmp_path / "again.yaml"))) == ontology
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".seg")]


def test_a_class_raster_of_3_and_7_comes_back_as_3_and_7(tmp_path, like, capsys):
    data = np.zeros((60, 80), np.uint8)
    data[5:20, 10:30] = 3
    data[30:50, 40:75] = 7
    data[22:25, 2:8] = 3  # a second region of the same class
    mask = write_raster(tmp_path / "mask.tif", data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SegWarning)  # integer names: codes are stable, no warning
        labels = polygonize_raster(mask)
        assert sorted({lab.attributes["class"] for lab in labels}) == ["3", "7"]
        assert rasterize_labels(labels, like, str(tmp_path / "back.tif")) == {"3": 3, "7": 7}
    with rasterio.open(tmp_path / "back.tif") as back:
        np.testing.assert_array_equal(back.read(1), data)
    # and through the CLI, via a GeoPackage
    assert run(capsys, "polygonize", mask, "--out", tmp_path / "p.gpkg")[0] == 0
    code, out, err = run(capsys, "rasterize", tmp_path / "p.gpkg", "--like", like, "--out", tmp_path / "cli.tif")
    assert code == 0, err
    assert "3=3, 7=7" in out and "hold for" not in err
    with rasterio.open(tmp_path / "cli.tif") as back:
        np.testing.assert_array_equal(back.read(1), data)


def test_two_files_get_the_same_codes(tmp_path, like, ontology_file):
    ontology = load_ontology(ontology_file)
    first = [label("water", 0, 0, 10, 10)]
    second = [label("building", 20, 20, 30, 30), label("water", 0, 0, 10, 10), label("pond", 40, 0, 50, 10)]
    assert rasterize_labels(first, like, str(tmp_path / "a.tif"), RasterizeOptions(ontology=ontology)) == {"water": 7}
    assert rasterize_labels(second,
                            like, str(tmp_path / "b.tif"), RasterizeOptions(ontology=ontology)) == {"building": 3, "pond": 11, "water": 7}
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        assert a.read(1)[5, 5] == b.read(1)[5, 5] == 7 and b.read(1)[25, 25] == 3 and b.read(1)[5, 45] == 11
    # codes -> names with the ontology, even without the file's own metadata
    names = {lab.attributes["class"] for lab in polygonize_raster(str(tmp_path / "b.tif"), ontology=ontology)}
    assert names == {"water", "building", "pond"}


def test_without_an_ontology_names_are_numbered_for_that_file_only(tmp_path, like):
    with pytest.warns(SegWarning, match="hold for .*a.tif only"):
        codes = rasterize_labels([label("water", 0, 0, 5, 5), label("building", 5, 5, 9, 9), label("12", 9, 9, 12, 12)],
                                 like, str(tmp_path / "a.tif"))
    assert codes == {"12": 12, "building": 13, "water": 14}  # numbered after the integers, in sorted order
    with pytest.warns(SegWarning):
        assert class_codes(["roof", "tree"]) == {"roof": 1, "tree": 2}
    with pytest.raises(OntologyError, match="both mean the code 3"):
        class_codes(["3", "03"])


def test_class_rasters_carry_names_and_colours(tmp_path, like, ontology_file):
    ontology = load_ontology(ontology_file)
    out = str(tmp_path / "classes.tif")
    rasterize_labels([label("water", 0, 0, 10, 10), label("building", 20, 20, 30, 30)], like, out, RasterizeOptions(ontology=ontology))
    with rasterio.open(out) as ds:
        colours = ds.colormap(1)
        assert colours[7][:3] == (0x1F, 0x78, 0xB4) and colours[3][:3] == (0xE3, 0x1A, 0x1C)
    assert os.path.exists(out + ".aux.xml")
    gdal = pytest.importorskip("osgeo.gdal", reason="GDAL's Python bindings are not installed")
    ds = gdal.Open(out)
    ds.GetGeoTransform()  # GDAL 3.6's GTiff loads the .aux.xml lazily, on the first dataset-level call
    band = ds.GetRasterBand(1)
    names = band.GetCategoryNames()
    assert names[3] == "building" and names[7] == "water" and names[0] == "background"
    assert band.GetColorTable().GetColorEntry(7)[:3] == (0x1F, 0x78, 0xB4)
    rat = band.GetDefaultRAT()
    assert [rat.GetNameOfCol(i) for i in range(rat.GetColumnCount())] == ["Value", "Class", "Red", "Green", "Blue"]
    assert {(rat.GetValueAsInt(r, 0), rat.GetValueAsString(r, 1)) for r in range(rat.GetRowCount())} == {(3, "building"), (7, "water")}
    band = ds = None
    # names read back from the category names alone (the metadata tag stripped)
    with rasterio.open(out, "r+") as ds:
        ds.update_tags(classes="")
    assert {lab.attributes["class"] for lab in polygonize_raster(out)} == {"water", "building"}
    # an instance raster written over it takes the stale names away
    rasterize_labels([label("water", 0, 0, 10, 10)], like, out, RasterizeOptions(kind="instance"), overwrite=True)
    assert not os.path.exists(out + ".aux.xml")


def test_coco_category_ids_are_the_codes(tmp_path, like, ontology_file):
    ontology = load_ontology(ontology_file)
    image = write_raster(tmp_path / "image.tif", np.full((60, 80), 100, np.uint8))
    labels = [label("pond", 2, 2, 12, 12), label("building", 20, 20, 30, 30)]
    summary = export_training_data(image, labels, str(tmp_path / "chips"), TrainingOptions(tile=64, ontology=ontology))
    coco = json.loads(open(summary.coco_path).read())
    assert coco["categories"] == [{"id": 3, "name": "building", "supercategory": ""},
                                  {"id": 11, "name": "pond", "supercategory": "water"}]
    assert {a["category_id"] for a in coco["annotations"]} == {3, 11}
    with rasterio.open(tmp_path / "chips" / coco["images"][0]["mask_file"]) as mask:
        assert set(np.unique(mask.read(1))) == {0, 3, 11}


@pytest.mark.parametrize("classes, message", [
    ([{"name": "water", "code": 1}, {"name": "water", "code": 2}], "names the class 'water' twice"),
    ([{"name": "water", "code": 1}, {"name": "pond", "code": 1}], "'water' and 'pond' share the code 1"),
    ([{"name": "water", "code": 0}], "positive integer code"),
    ([{"name": "pond", "code": 2, "parent": "lake"}], "parent 'lake'"),
    ([{"name": "water", "code": 1, "color": "blue"}], "#rrggbb"),
    ([{"name": "water"}], "needs a 'name' and a 'code'"),
])
def test_bad_ontologies_give_one_sentence(tmp_path, like, capsys, classes, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"classes": classes}))
    with pytest.raises(OntologyError, match=message):
        load_ontology(str(path))
    write_labels([label("water", 0, 0, 10, 10)], str(tmp_path / "l.gpkg"))
    code, _, err = run(capsys, "rasterize", tmp_path / "l.gpkg", "--like", like, "--out", tmp_path / "c.tif", "--classes", path)
    assert code == 2 and message.split("'")[0] in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c.tif").exists()


def test_a_class_not_in_the_ontology_is_an_error_or_added(tmp_path, like, ontology_file, capsys):
    write_labels([label("water", 0, 0, 10, 10), label("tree", 20, 20, 30, 30)], str(tmp_path / "l.gpkg"))
    code, _, err = run(capsys, "rasterize", tmp_path / "l.gpkg", "--like", like, "--out", tmp_path / "c.tif", "--classes", ontology_file)
    assert code == 2 and "The class 'tree' is not in the ontology" in err
    assert not (tmp_path / "c.tif").exists()
    code, out, err = run(capsys, "rasterize", tmp_path / "l.gpkg", "--like", like, "--out", tmp_path / "c.tif",
                         "--classes", ontology_file, "--add-missing")
    assert code == 0 and "7=water, 12=tree" in out  # after the ontology's highest code, 11
    code, _, err = run(capsys, "polygonize", tmp_path / "c.tif", "--out", tmp_path / "p.gpkg", "--classes", ontology_file)
    assert code == 2 and "No class of the ontology has the code 12" in err
    code, _, err = run(capsys, "polygonize", tmp_path / "c.tif", "--out", tmp_path / "p.gpkg", "--classes", ontology_file, "--add-missing")
    assert code == 0 and {lab.attributes["class"] for lab in read_labels(str(tmp_path / "p.gpkg"))} == {"water", "12"}


def test_a_code_that_does_not_fit_the_raster_type(tmp_path, like, capsys):
    with pytest.raises(OntologyError, match="The class code 300 does not fit a uint8 raster"):
        check_code_fits(300, "uint8")
    check_code_fits(255, "uint8")
    wide = Ontology([OntologyClass("water", 300), OntologyClass("tree", 70000)])
    assert rasterize_labels([label("tree", 0, 0, 5, 5)], like, str(tmp_path / "w.tif"), RasterizeOptions(ontology=wide)) == {"tree": 70000}
    with rasterio.open(tmp_path / "w.tif") as ds:
        assert ds.dtypes[0] == "uint32" and ds.read(1)[0, 0] == 70000
    path = tmp_path / "wide.json"
    save_ontology(wide, str(path))
    image = write_raster(tmp_path / "image.tif", np.full((60, 80), 100, np.uint8))
    write_labels([label("water", 0, 0, 10, 10)], str(tmp_path / "l.gpkg"))
    code, _, err = run(capsys, "export-training", image, "--labels", tmp_path / "l.gpkg", "--out", tmp_path / "chips", "--classes", path)
    assert code == 2 and "The class code 300 does not fit a uint8 raster" in err
    assert not (tmp_path / "chips").exists()
