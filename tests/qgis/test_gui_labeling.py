"""Labeling in real QGIS, headless: real canvas, real map tools, real mouse and key events, features
read back from the GeoPackage on disk (by GDAL, not by QGIS).

Geometry checks use the oracle backend (tests/conftest.py), whose masks are known exactly: the
bright square of the synthetic raster is SQUARE, so an accepted click must give exactly that square
in map units. One test runs the real SAM path with a tiny checkpoint.
"""
from __future__ import annotations

import json
import os

import pytest


import seg_test_gui_support as support  # registered by tests/qgis/conftest.py


@pytest.fixture(autouse=True)
def user_settings(tmp_path):
    """Nothing here may write to the user's own QgsSettings file."""
    return support.isolate_user_settings(tmp_path / "qsettings")


@pytest.fixture
def ortho(qgis_app, raster_factory):
    """(path, QgsRasterLayer) of the synthetic orthophoto, EPSG:32633."""
    from qgis.core import QgsRasterLayer

    path = raster_factory(support.synthetic_ortho(), name="ortho.tif")
    layer = QgsRasterLayer(path, "ortho", "gdal")
    assert layer.isValid()
    return path, layer


@pytest.fixture
def labeling(ortho, oracle, tmp_path):
    """make(canvas_crs=None, layer_crs=None, mode="bright") -> (canvas, controller, target layer,
    gpkg path, tools): a controller on a canvas with the oracle backend, a session started on the
    synthetic raster and a new GeoPackage target layer. Everything is shut down afterwards."""
    from qgis.core import QgsCoordinateReferenceSystem

    from seg_qgis_plugin.gui.controller import SegController
    from seg_qgis_plugin.gui.label_layer import create_label_layer
    from seg_qgis_plugin.gui.classes import LabelClass
    from seg_qgis_plugin.gui.map_tools import BoxPromptTool, PointPromptTool
    from seg_qgis_plugin.gui.session import SessionConfig

    made = []

    def make(canvas_crs=None, layer_crs=None, mode="bright"):
        path, raster = ortho
        canvas = support.make_canvas(raster, QgsCoordinateReferenceSystem(canvas_crs) if canvas_crs else None)
        controller = SegController(canvas, backend_factory=lambda config: oracle(mode))
        controller.set_label_class(LabelClass("building", "#e31a1c"))  # a controller starts without a class
        gpkg = tmp_path / f"labels{len(made)}.gpkg"
        target = create_label_layer(str(gpkg), QgsCoordinateReferenceSystem(layer_crs or "EPSG:32633"))
        controller.set_target_layer(target)
        controller.start_session(SessionConfig(raster=path, tile=128, overlap=32))
        support.wait_idle(controller)
        assert controller.ready
        tools = {"point": PointPromptTool(canvas, controller), "box": BoxPromptTool(canvas, controller)}
        canvas.setMapTool(tools["point"])
        made.append((canvas, controller, tools))
        return canvas, controller, target, gpkg, tools

    yield make
    for canvas, controller, tools in made:
        canvas.unsetMapTool(tools["point"])
        canvas.unsetMapTool(tools["box"])
        controller.shutdown()
        canvas.close()


def test_click_then_enter_writes_the_square_with_class_tags_and_provenance(labeling, ortho):
    from qgis.core import QgsCategorizedSymbolRenderer
    from qgis.PyQt.QtCore import Qt
    from shapely.geometry import box

    from seg_qgis_plugin.gui.classes import LabelClass

    canvas, controller, target, gpkg, _ = labeling()
    controller.set_label_class(LabelClass("pond", "#1f78b4"))
    controller.set_tags({"date": "2024-06-01", "annotator": "ana", "season": "summer"})
    support.click(canvas, *support.square_centre_map())
    support.wait_idle(controller)

    square = box(*support.square_bounds_map())
    preview = controller.preview.mask_geometry
    assert not preview.isEmpty(), "no mask preview was drawn after the click"
    assert preview.boundingBox().toRectF().getCoords() == pytest.approx(square.bounds)
    assert support.read_gpkg(gpkg)[1] == [], "nothing may be written before the mask is accepted"

    support.key(canvas, Qt.Key.Key_Return)
    support.wait_idle(controller)

    _, geometries, rows = support.read_gpkg(gpkg)
    assert len(geometries) == 1
    assert geometries[0].equals(square), f"{geometries[0].wkt} is not the square {square.wkt}"
    row = rows[0]
    assert row["class"] == "pond"
    assert json.loads(row["tags"]) == {"date": "2024-06-01", "annotator": "ana", "season": "summer"}
    assert (row["date"], row["annotator"], row["season"], row["sensor"]) == ("2024-06-01", "ana", "summer", "")
    assert (row["prompt_type"], row["prompt_count"], row["status"]) == ("point", 1, "accepted")
    assert row["model"] == "oracle-bright" and row["source"] == os.path.basename(ortho[0])
    assert row["window"].endswith("@1") and row["score"] == pytest.approx(1.0)
    assert json.loads(row["radiometry"])["bands"] == [1, 2, 3]
    assert row["created"].endswith("Z")
    assert controller.steps == [] and controller.preview.mask_geometry.isEmpty(), "accepting clears the prompts"

    renderer = target.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer) and renderer.classAttribute() == "class"
    pond = [c for c in renderer.categories() if c.value() == "pond"]
    assert pond and pond[0].symbol().symbolLayer(0).strokeColor().name() == "#1f78b4"


def test_negative_points_undo_and_clear(labeling):
    from qgis.PyQt.QtCore import Qt

    canvas, controller, target, gpkg, _ = labeling(mode="square")
    x, y = support.square_centre_map()
    support.click(canvas, x, y)
    support.click(canvas, x + 5, y, modifiers=Qt.KeyboardModifier.ShiftModifier)
    support.click(canvas, x - 5, y, button=Qt.MouseButton.RightButton)
    support.wait_idle(controller)
    assert [s.state.labels for s in controller.steps] == [(1,), (1, 0), (1, 0, 0)]
    last = controller.preview.mask_geometry
    assert not last.isEmpty()

    support.key(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    support.wait_idle(controller)
    assert [s.state.labels for s in controller.steps] == [(1,), (1, 0)]
    assert not controller.preview.mask_geometry.isEmpty(), "undo shows the previous mask"

    support.key(canvas, Qt.Key.Key_Escape)
    assert controller.steps == [] and controller.preview.mask_geometry.isEmpty()
    support.key(canvas, Qt.Key.Key_Return)
    support.wait_idle(controller)
    assert support.read_gpkg(gpkg)[1] == [], "Esc clears; Enter with nothing to accept writes nothing"


def test_accepted_feature_is_undone_by_the_layer_undo_stack(labeling):
    from qgis.PyQt.QtCore import Qt

    canvas, controller, target, gpkg, _ = labeling()
    support.click(canvas, *support.square_centre_map())
    support.wait_idle(controller)
    assert controller.accept() is not None
    assert len(support.read_gpkg(gpkg)[1]) == 1, "the accepted feature is on disk at once"

    target.undoStack().undo()
    assert support.read_gpkg(gpkg)[1] == [], "the layer's undo removes the feature from the file"
    target.undoStack().redo()
    assert len(support.read_gpkg(gpkg)[1]) == 1

    support.key(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # no prompt left: undo the feature
    assert support.read_gpkg(gpkg)[1] == []
    assert target.featureCount() == 0


def test_box_drag_gives_the_pixels_inside_the_box(labeling):
    from shapely.geometry import box

    canvas, controller, target, gpkg, tools = labeling(mode="box")
    canvas.setMapTool(tools["box"])
    xmin, ymin, xmax, ymax = support.square_bounds_map()
    support.drag(canvas, (xmin + 0.1, ymax - 0.1), (xmax - 0.1, ymin + 0.1))
    support.wait_idle(controller)
    assert controller.steps and controller.steps[-1].state.box is not None
    assert controller.accept() is not None
    geometry = support.read_gpkg(gpkg)[1][0]
    assert geometry.symmetric_difference(box(xmin, ymin, xmax, ymax)).area <= 4 * 20 * 0.5 * 0.5, \
        "the box mask is the square give or take one pixel row per side"
    assert support.read_gpkg(gpkg)[2][0]["prompt_type"] == "box"


def test_canvas_raster_and_layer_in_three_crs(labeling):
    """Canvas in Web Mercator, raster in UTM 33N, target layer in WGS 84: the feature still lands
    exactly on the square."""
    from pyproj import Transformer
    from shapely.geometry import box
    from shapely.ops import transform

    canvas, controller, target, gpkg, _ = labeling(canvas_crs="EPSG:3857", layer_crs="EPSG:4326")
    to_canvas = Transformer.from_crs("EPSG:32633", "EPSG:3857", always_xy=True)
    support.click(canvas, *to_canvas.transform(*support.square_centre_map()))
    support.wait_idle(controller)
    assert controller.accept() is not None

    crs, geometries, rows = support.read_gpkg(gpkg)
    assert "4326" in crs
    back = transform(Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True).transform, geometries[0])
    assert back.hausdorff_distance(box(*support.square_bounds_map())) < 1e-3


def test_errors_are_shown_not_swallowed(labeling, tmp_path):
    from seg_qgis_plugin.gui.session import SessionConfig

    canvas, controller, target, gpkg, _ = labeling()
    errors = []
    controller.errorRaised.connect(errors.append)
    controller.add_point(_outside_point(), True)
    support.wait_idle(controller)
    assert errors and "outside the raster" in errors[-1]
    assert controller.steps == []

    controller.backend_factory = None
    controller.start_session(SessionConfig(raster=str(tmp_path / "missing.tif")))
    support.wait_idle(controller)
    assert "does not exist" in errors[-1] and not controller.ready


def _outside_point():
    from qgis.core import QgsPointXY

    x0, y0 = support.ORIGIN
    return QgsPointXY(x0 - 100.0, y0 + 100.0)


def test_sam_session_with_a_tiny_checkpoint_encodes_ahead_and_labels(ortho, tiny_checkpoint, tmp_path):
    """The real SAM path: checkpoint loaded by path in a task, tiles around the view encoded ahead
    into the cache folder, a click decoded from the cached embedding."""
    from qgis.core import QgsCoordinateReferenceSystem

    from seg_qgis_plugin.core.models.download import sha256_file as sha256_of
    from seg_qgis_plugin.gui.classes import LabelClass
    from seg_qgis_plugin.gui.controller import SegController
    from seg_qgis_plugin.gui.label_layer import create_label_layer
    from seg_qgis_plugin.gui.session import SessionConfig

    path, raster = ortho
    canvas = support.make_canvas(raster)
    controller = SegController(canvas)
    controller.set_label_class(LabelClass("building", "#e31a1c"))  # a controller starts without a class
    try:
        gpkg = tmp_path / "sam.gpkg"
        controller.set_target_layer(create_label_layer(str(gpkg), QgsCoordinateReferenceSystem("EPSG:32633")))
        cache = tmp_path / "cache"
        controller.start_session(SessionConfig(raster=path, backend="sam", checkpoint=tiny_checkpoint, model_type="vit_tiny",
                                               device="cpu", cache_dir=str(cache), tile=128, overlap=32))
        support.wait_idle(controller, timeout=60)
        assert controller.ready and controller.segmenter.backend.model_id == "sam-vit_tiny"
        grid = controller.segmenter.grid
        assert all(controller.segmenter.is_encoded(t) for t in list(grid)[:4])
        assert len(list(cache.rglob("*.safetensors"))) == min(len(grid), 4), "encode-ahead fills the cache folder"

        controller.add_point(_point(*support.square_centre_map()), True)
        support.wait_idle(controller)
        step = controller.current_step
        assert step is not None and step.decoded and step.segmentation.mask.shape == (128, 128)
        if step.geometry is None:
            pytest.skip("the random tiny SAM gave an empty mask for this click; nothing to accept")
        assert controller.accept() is not None
        row = support.read_gpkg(gpkg)[2][0]
        assert row["model"] == "sam-vit_tiny" and row["checkpoint_sha256"] == sha256_of(tiny_checkpoint)
    finally:
        controller.shutdown()
        canvas.close()


def _point(x, y):
    from qgis.core import QgsPointXY

    return QgsPointXY(x, y)


def test_hover_previews_only_on_encoded_tiles(labeling):
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtTest import QTest
    from shapely.geometry import box

    canvas, controller, target, gpkg, _ = labeling()
    controller.hover_enabled = True
    centre = support.square_centre_map()
    QTest.mouseMove(canvas.viewport(), support.canvas_pixel(canvas, *centre))
    support.wait_idle(controller)
    assert controller.preview.hover.asGeometry().isEmpty(), "a hover never starts an encode"

    support.click(canvas, *centre)  # encodes the tile
    support.wait_idle(controller)
    support.key(canvas, Qt.Key.Key_Escape)
    QTest.mouseMove(canvas.viewport(), support.canvas_pixel(canvas, centre[0] + 2, centre[1]))
    support.wait_idle(controller)
    hover = controller.preview.hover.asGeometry()
    assert hover.boundingBox().toRectF().getCoords() == pytest.approx(box(*support.square_bounds_map()).bounds)
