"""Every kind of output Seg writes opens styled in QGIS as a file added from disk (the way
Processing, the plugin and drag and drop add it): the label layer's class outlines, the series'
statuses with temporal properties, the drift tiles graduated, the probability and uncertainty
ramps on 0..1, the class raster's palette."""
from types import SimpleNamespace

import numpy as np
import pytest
from shapely.geometry import box

from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.engine.ontology import Ontology
from seg_qgis_plugin.core.outputs.styles import ontology_style
from seg_qgis_plugin.core.outputs.vectors import write_labels

CRS = "EPSG:32633"
ONTOLOGY = Ontology.from_dict([{"name": "tree", "code": 1, "color": "#00aa00"}, {"name": "water", "code": 2, "color": "#1f78b4"}])


def _labels(*classes):
    return [Label(box(500000 + i * 10, 0, 500008 + i * 10, 8), CRS, attributes(name)) for i, name in enumerate(classes)]


def _vector(path, qgis_app):
    from qgis.core import QgsVectorLayer

    layer = QgsVectorLayer(str(path), "out", "ogr")
    assert layer.isValid()
    return layer


def _raster(path, qgis_app):
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(str(path), "out")
    assert layer.isValid()
    return layer


def _grid(path, values, dtype):
    import rasterio
    from affine import Affine

    values = np.asarray(values, dtype)[None] if np.ndim(values) == 2 else np.asarray(values, dtype)
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[2], height=values.shape[1], count=values.shape[0],
                       dtype=dtype, crs=CRS, transform=Affine(1, 0, 500000, 0, -1, 64)) as dst:
        dst.write(values)
    return str(path)


@pytest.mark.parametrize("name", ["labels.gpkg", "labels.geojson"])
def test_label_layers_open_as_class_outlines(tmp_path, qgis_app, name):
    out = tmp_path / name
    write_labels(_labels("tree", "water", "field"), str(out), style=ontology_style(ONTOLOGY))
    layer = _vector(out, qgis_app)
    renderer = layer.renderer()
    assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "class"
    categories = renderer.categories()  # copies: they own the symbols read below
    by_value = {c.value(): c for c in categories}
    assert {"tree", "water", "field"} <= set(by_value)
    symbol = by_value["tree"].symbol()
    tree = symbol.symbolLayer(0)
    assert tree.strokeColor().name() == "#00aa00" and tree.fillColor().alpha() == 0
    assert tree.strokeWidth() == pytest.approx(0.6)


def test_series_layer_is_by_status_and_temporal(tmp_path, qgis_app):
    from qgis.core import QgsDateTimeRange, QgsVectorLayerTemporalProperties
    from qgis.PyQt.QtCore import QDate, QDateTime, QTime

    out = tmp_path / "series.gpkg"
    labels = _labels("tree", "tree")
    for label, (status, when) in zip(labels, (("accepted", "2021-04-15"), ("lost", "2021-06-15"))):
        label.attributes.update(status=status, date=when)
    write_labels(labels, str(out), style="series")
    layer = _vector(out, qgis_app)
    renderer = layer.renderer()
    assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "status"
    assert {"accepted", "kept", "lost", "uncertain", "outside"} <= {c.value() for c in renderer.categories()}
    temporal = layer.temporalProperties()
    if not temporal.isActive():  # QGIS 3.22 drops the default style's temporal part at construction; a reload applies it
        layer.loadDefaultStyle()
    assert temporal.isActive() and temporal.mode() == QgsVectorLayerTemporalProperties.ModeFeatureDateTimeStartAndEndFromExpressions
    day = QgsDateTimeRange(QDateTime(QDate(2021, 4, 15), QTime(0, 0)), QDateTime(QDate(2021, 4, 16), QTime(0, 0)))
    shown = [f["status"] for f in layer.getFeatures(temporal.createFilterString(_context(layer), day))]
    assert shown == ["accepted"]


def _context(layer):
    from qgis.core import QgsVectorLayerTemporalContext

    context = QgsVectorLayerTemporalContext()
    context.setLayer(layer)
    return context


def test_drift_tiles_are_graduated_and_half_transparent(tmp_path, qgis_app):
    from seg_qgis_plugin.core.jobs import drift

    rng = np.random.default_rng(0)
    first = rng.integers(0, 120, (3, 64, 64))
    second = first.copy()
    second[:, :32, :32] = 255 - second[:, :32, :32]
    rasters = (_grid(tmp_path / "a.tif", first, "uint8"), _grid(tmp_path / "b.tif", second, "uint8"))
    out = tmp_path / "drift.gpkg"
    drift.run(drift.Request(rasters, dates=("2021-04-15", "2021-06-15"), out=str(out), tile=32, threshold=0.1))
    layer = _vector(out, qgis_app)
    renderer = layer.renderer()
    assert renderer.type() == "graduatedSymbol" and renderer.classAttribute() == "drift_ratio"
    assert renderer.ranges()[0].lowerValue() == 0 and [r.upperValue() for r in renderer.ranges()][1:3] == [1, 2]
    assert layer.opacity() == pytest.approx(0.6)


def test_probability_and_uncertainty_rasters_are_0_1_ramps(tmp_path, qgis_app):
    from seg_qgis_plugin.core.assist.predict import _RasterOutputs

    source = SimpleNamespace(width=8, height=8, crs=CRS, transform=_transform())
    paths = (str(tmp_path / "probability.tif"), str(tmp_path / "uncertainty.tif"))
    with _RasterOutputs(source, *paths, ["tree"]) as outputs:
        outputs.write(SimpleNamespace(window=(0, 0, 8, 8), probability=np.full((1, 8, 8), 0.8, "float32"),
                                      uncertainty=np.full((8, 8), 0.3, "float32")))
    for path, first, last in ((paths[0], "0 = not tree", "1 = tree"), (paths[1], "0 = sure", "1 = unsure")):
        layer = _raster(path, qgis_app)
        renderer = layer.renderer()
        assert renderer.type() == "singlebandpseudocolor" and renderer.opacity() == pytest.approx(0.6)
        assert (renderer.classificationMin(), renderer.classificationMax()) == (0, 1)
        ramp = renderer.shader().rasterShaderFunction()
        items = ramp.colorRampItemList()
        assert (items[0].label, items[-1].label) == (first, last) and items[0].color.alpha() == 0
        assert (ramp.legendSettings().minimumLabel(), ramp.legendSettings().maximumLabel()) == (first, last)


def test_class_raster_is_paletted_with_the_ontology(tmp_path, qgis_app):
    from seg_qgis_plugin.core.outputs.label_rasters import RasterizeOptions, rasterize_labels

    like = _grid(tmp_path / "like.tif", np.zeros((64, 64)), "uint8")
    out = tmp_path / "classes.tif"
    rasterize_labels(_labels("tree", "water"), like, str(out), RasterizeOptions(ontology=ONTOLOGY))
    layer = _raster(out, qgis_app)
    renderer = layer.renderer()
    assert renderer.type() == "paletted" and renderer.opacity() == pytest.approx(0.7)
    classes = {c.value: (c.label, c.color.name()) for c in renderer.classes()}
    assert classes == {1: ("tree", "#00aa00"), 2: ("water", "#1f78b4")}


def _transform():
    from affine import Affine

    return Affine(1, 0, 500000, 0, -1, 8)


@pytest.mark.parametrize("output", ["file", "TEMPORARY_OUTPUT"])
def test_processing_outputs_open_styled_when_qgis_loads_them(tmp_path, processing_registered, output):
    """processing.runAndLoadResults is what the Processing dialog does: the loaded layers carry Seg's style."""
    import processing
    from qgis.core import QgsProject

    from seg_qgis_plugin.demo.scene import write_scene

    raster = str(tmp_path / "scene.tif")
    truth = write_scene(raster, width=256, height=256)
    boxes = [box(*_pixel_box(o.box)) for o in truth if o.class_name in ("building", "water")][:3]
    prompts = str(tmp_path / "boxes.gpkg")
    write_labels([Label(b, "EPSG:32633", attributes(c)) for b, c in zip(boxes, ("building", "water", "building"))], prompts)
    before = set(QgsProject.instance().mapLayers())
    target = str(tmp_path / "pre.gpkg") if output == "file" else output
    processing.runAndLoadResults("seg:prelabel", {"INPUT": raster, "MODE": 0, "PROMPTS": prompts, "CLASS_FIELD": "class",
                                                  "TILE": 256, "OVERLAP": 0, "OUTPUT": target})
    added = [QgsProject.instance().mapLayer(i) for i in set(QgsProject.instance().mapLayers()) - before]
    try:
        [layer] = added
        renderer = layer.renderer()
        assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "class"
        assert {c.value() for c in renderer.categories()} >= {"building", "water"}
        assert all(c.symbol().symbolLayer(0).brushStyle() == 0 for c in renderer.categories()), "outlines, no fill"
    finally:
        for layer in added:
            QgsProject.instance().removeMapLayer(layer.id())


def _pixel_box(pixels):
    from seg_qgis_plugin.demo.scene import ORIGIN

    c0, r0, c1, r1 = pixels
    return ORIGIN[0] + c0 * 0.5, ORIGIN[1] - r1 * 0.5, ORIGIN[0] + c1 * 0.5, ORIGIN[1] - r0 * 0.5


def test_choosing_a_layer_in_the_dock_keeps_the_classes_it_already_has(tmp_path, qgis_app):
    """The dock styles its target by the dock's classes; a class the layer holds that the dock
    lacks keeps its symbol, and any other value shows grey: no feature is hidden."""
    from seg_qgis_plugin.gui.classes import LabelClass
    from seg_qgis_plugin.gui.label_layer import style_by_class

    out = tmp_path / "labels.gpkg"
    write_labels(_labels("tree", "water"), str(out), style=ontology_style(ONTOLOGY))
    layer = _vector(out, qgis_app)
    before = {c.value(): c.symbol().symbolLayer(0).strokeColor().name() for c in layer.renderer().categories()}
    assert style_by_class(layer, [LabelClass("building", "#ff0000")])
    after = {c.value(): c.symbol().symbolLayer(0).strokeColor().name() for c in layer.renderer().categories()}
    assert after == {"building": "#ff0000", "tree": before["tree"], "water": before["water"], "": "#808080"}
    assert before["tree"] == "#00aa00"
