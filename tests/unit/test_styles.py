"""The QGIS styles Seg writes, without QGIS: the QML text of each kind, the GeoPackage's
layer_styles row and the `.qml` files beside other outputs (tests/qgis/test_output_styles.py
reads them back in QGIS)."""
import os
import sqlite3
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import numpy as np
import pytest
from shapely.geometry import box

from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.engine.ontology import Ontology
from seg_qgis_plugin.core.errors import SettingError
from seg_qgis_plugin.core.outputs import raster_styles, styles
from seg_qgis_plugin.core.outputs.vectors import write_labels

CRS = "EPSG:32633"


def _labels(*classes):
    return [Label(box(i * 10, 0, i * 10 + 8, 8), CRS, attributes(name)) for i, name in enumerate(classes)]


def _xml(qml: str) -> ET.Element:
    root = ET.fromstring(qml.split("\n", 1)[1])
    assert root.tag == "qgis" and root.get("version").startswith("3.22")
    return root


def test_label_outlines_take_ontology_colours_and_leave_the_imagery_visible():
    ontology = Ontology.from_dict([{"name": "tree", "code": 1, "color": "#00aa00"}])
    root = _xml(styles.ontology_style(ontology).qml(["tree", "water"]))
    renderer = root.find("renderer-v2")
    assert renderer.get("type") == "categorizedSymbol" and renderer.get("attr") == "class"
    assert [c.get("value") for c in renderer.iter("category")] == ["tree", "water", ""]
    first = {p.get("k"): p.get("v") for p in renderer.find("symbols")[0].iter("prop")}
    assert first["style"] == "no" and first["color"].endswith(",0") and first["outline_color"] == "0,170,0,255"
    assert first["outline_width"] == "0.6" and first["outline_width_unit"] == "MM"


def test_series_style_is_by_status_on_the_date_and_drift_is_graduated():
    series = _xml(styles.series_qml())
    assert series.find("renderer-v2").get("attr") == "status"
    assert {"accepted", "kept", "lost", "uncertain", "outside"} <= {c.get("value") for c in series.iter("category")}
    temporal = series.find("temporal")
    assert temporal.get("enabled") == "1" and temporal.get("startExpression") == 'to_datetime("date")'
    drift = _xml(styles.drift_qml())
    ranges = [(float(r.get("lower")), float(r.get("upper"))) for r in drift.iter("range")]
    assert drift.find("renderer-v2").get("type") == "graduatedSymbol" and drift.find("renderer-v2").get("attr") == "drift_ratio"
    assert ranges[0][0] == 0 and 1.0 in [hi for _, hi in ranges] and float(drift.find("layerOpacity").text) == pytest.approx(0.6)


def test_raster_styles_are_fixed_0_1_ramps_and_class_palettes():
    for qml, words in ((raster_styles.probability_qml("tree"), ("0 = not tree", "1 = tree")),
                       (raster_styles.uncertainty_qml(), ("0 = sure", "1 = unsure"))):
        renderer = _xml(qml).find("pipe/rasterrenderer")
        assert renderer.get("type") == "singlebandpseudocolor" and float(renderer.get("opacity")) < 1
        assert (renderer.get("classificationMin"), renderer.get("classificationMax")) == ("0", "1")
        labels = [i.get("label") for i in renderer.iter("item")]
        assert labels[0] == words[0] and labels[-1] == words[1]
    palette = _xml(raster_styles.class_raster_qml({0: ("background", "#000000"), 2: ("tree", "#00aa00")}))
    entries = [(e.get("value"), e.get("color"), e.get("label")) for e in palette.iter("paletteEntry")]
    assert entries == [("2", "#00aa00", "tree")]


def test_a_geopackage_keeps_its_style_as_the_default_in_layer_styles(tmp_path):
    out = str(tmp_path / "labels.gpkg")
    write_labels(_labels("tree", "water"), out)
    with sqlite3.connect(out) as db:
        rows = db.execute("SELECT f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, styleQML, "
                          "useAsDefault, update_time FROM layer_styles").fetchall()
        registered = db.execute("SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'").fetchone()
    assert len(rows) == 1 and registered == ("attributes",)
    catalog, schema, table, column, name, qml, default, updated = rows[0]
    assert (catalog, schema, table, column, name, default) == ("", "", "labels", "geom", "seg", 1) and updated
    assert 'value="tree"' in qml and 'value="water"' in qml
    write_labels(_labels("field"), out, layer="more")  # a new layer in the same GeoPackage gets its own
    with sqlite3.connect(out) as db:
        assert db.execute("SELECT count(*) FROM layer_styles WHERE f_table_name = 'more' AND useAsDefault = 1").fetchone() == (1,)


def _categories(path, layer="labels"):
    with sqlite3.connect(path) as db:
        qml = db.execute("SELECT styleQML FROM layer_styles WHERE f_table_name = ? AND useAsDefault = 1", (layer,)).fetchone()[0]
    renderer = _xml(qml).find("renderer-v2")
    outline = {s.get("name"): s.find("./layer/prop[@k='outline_color']").get("v") for s in renderer.iter("symbol")}
    return {c.get("value"): outline[c.get("symbol")] for c in renderer.iter("category")}


def test_appending_new_classes_adds_them_to_seg_style_and_keeps_the_colours(tmp_path):
    out = str(tmp_path / "labels.gpkg")
    write_labels(_labels("tree", "water"), out)
    before = _categories(out)
    write_labels(_labels("building", "tree"), out, mode="append")
    after = _categories(out)
    assert set(after) == {"building", "tree", "water", ""}
    assert {k: after[k] for k in before} == before  # old classes keep their colours
    assert after["building"] != after[""]  # the new class has a colour of its own, not "other" grey
    with sqlite3.connect(out) as db:  # a style the user saved is theirs: appending leaves it alone
        db.execute("UPDATE layer_styles SET description = 'mine'")
    write_labels(_labels("road"), out, mode="append")
    assert "road" not in _categories(out)


def test_other_formats_get_a_qml_beside_and_no_style_means_none(tmp_path):
    out = str(tmp_path / "series.geojson")
    series = _labels("tree")
    series[0].attributes.update(status="lost", date="2021-04-15")
    write_labels(series, out, style="series")
    assert 'attr="status"' in open(tmp_path / "series.qml").read()
    write_labels(_labels("tree"), str(tmp_path / "plain.fgb"), style=None)
    assert not os.path.exists(tmp_path / "plain.qml")
    with pytest.raises(SettingError, match="rainbow"):
        write_labels(_labels("tree"), str(tmp_path / "odd.gpkg"), style="rainbow")
    assert not os.path.exists(tmp_path / "odd.gpkg")


def test_raster_writers_put_a_qml_beside_the_geotiff(tmp_path):
    from seg_qgis_plugin.core.outputs.label_rasters import write_probability

    out = str(tmp_path / "probability.tif")
    from affine import Affine

    write_probability(SimpleNamespace(probability=np.full((4, 4), 0.5, "float32"), crs=CRS,
                                      transform=Affine(1, 0, 0, 0, -1, 4)), out)
    assert "singlebandpseudocolor" in open(tmp_path / "probability.qml").read()
