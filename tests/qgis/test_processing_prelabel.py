"""seg:prelabel through processing.run: prompt layers (points, boxes) with the classic and SAM
backends, automatic mode, class raster, cancellation and bad input."""
import json
import os

import numpy as np
import pytest
from shapely.geometry import Point, box

from seg_qgis_plugin.demo.scene import CRS, ORIGIN, write_scene

RES = 0.5


def to_map(col, row):
    return ORIGIN[0] + col * RES, ORIGIN[1] - row * RES


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 512 x 512 synthetic orthomosaic (UTM 33N) and its truth objects."""
    path = str(tmp_path_factory.mktemp("scene") / "scene.tif")
    truth = write_scene(path, width=512, height=512)
    return path, truth


def truth_polygon(obj):
    from seg_qgis_plugin.core.geo.vectorize import mask_to_geometry
    from rasterio.transform import from_origin

    return mask_to_geometry(obj.mask, from_origin(ORIGIN[0], ORIGIN[1], RES, RES))


def iou(a, b):
    return a.intersection(b).area / a.union(b).area


def test_classic_points_and_boxes_carry_class_and_tags(run_algorithm, read_vector, vector_factory, scene, tmp_path):
    import rasterio

    from seg_qgis_plugin.core.geo.vectorize import reproject_geometry

    path, truth = scene
    buildings = [o for o in truth if o.class_name == "building"][:2]
    pond = next(o for o in truth if o.name == "pond")
    points = [reproject_geometry(Point(*to_map(*b.point)), CRS, "EPSG:4326") for b in buildings]  # prompts in lon/lat
    prompts = vector_factory("clicks", points, "EPSG:4326", kind=["roof", "roof"], season=["summer", "winter"])
    boxes = vector_factory("boxes", [box(*to_map(pond.box[0], pond.box[3]), *to_map(pond.box[2], pond.box[1]))], CRS, kind=["water"])
    out, classes = str(tmp_path / "pre.gpkg"), str(tmp_path / "classes.tif")
    result = run_algorithm("seg:prelabel", {"INPUT": path, "MODE": 0, "PROMPTS": prompts, "CLASS_FIELD": "kind", "BACKEND": 0,
                                            "TAGS": "annotator=ci", "TILE": 256, "OVERLAP": 64, "OUTPUT": out, "CLASS_RASTER": classes})
    layer, features = read_vector(result["OUTPUT"])
    assert result["COUNT"] == len(features) == 2 and layer.crs().authid() == "EPSG:32633"
    from seg_qgis_plugin.core.engine.labels import FIELD_NAMES

    assert set(FIELD_NAMES) <= set(layer.fields().names())
    from seg_qgis_plugin.qgis_adapters.geometry import to_shapely

    for feature in features:
        building = buildings[["summer", "winter"].index(feature["season"])]
        assert feature["class"] == "roof" and feature["status"] == "prelabel" and feature["annotator"] == "ci"
        assert feature["model"] == "classic-grabcut" and feature["prompt_type"] == "point"
        assert iou(to_shapely(feature.geometry()), truth_polygon(building)) > 0.8
    assert {f["season"] for f in features} == {"summer", "winter"}
    with rasterio.open(classes) as c, rasterio.open(path) as src:
        assert (c.transform, c.crs, c.shape) == (src.transform, src.crs, src.shape)
        assert np.count_nonzero(c.read(1)) == pytest.approx(sum(b.mask.sum() for b in buildings), rel=0.2)
    result = run_algorithm("seg:prelabel", {"INPUT": path, "PROMPTS": boxes, "CLASS_FIELD": "kind", "BACKEND": 0, "TILE": 256,
                                            "OVERLAP": 64, "OUTPUT": str(tmp_path / "ponds.gpkg")})
    _, (feature,) = read_vector(result["OUTPUT"])
    from seg_qgis_plugin.qgis_adapters.geometry import to_shapely

    assert feature["class"] == "water" and feature["prompt_type"] == "box"
    assert iou(to_shapely(feature.geometry()), truth_polygon(pond)) > 0.8


def test_real_data_boxes_become_instances_inside_their_boxes(run_algorithm, read_vector, shared, tmp_path):
    from seg_qgis_plugin.qgis_adapters.geometry import to_shapely

    image = shared("neon_tree_crowns", "OSBS_029.tif")
    boxes = shared("neon_tree_crowns", "OSBS_029_boxes_derived.geojson")
    result = run_algorithm("seg:prelabel", {"INPUT": image, "PROMPTS": boxes + "|subset=\"id\" < 4", "CLASS_FIELD": "label",
                                            "BACKEND": 0, "TILE": 400, "OVERLAP": 0, "OUTPUT": str(tmp_path / "trees.gpkg")})
    layer, features = read_vector(result["OUTPUT"])
    assert len(features) == 4 and layer.crs().authid() == "EPSG:32617"
    left, top = 404212.0, 3285142.8  # the image's upper-left corner; the tags hold the box in pixels
    for f in features:
        assert f["class"] == "Tree" and '"xmin"' in f["tags"]  # the prompt's other fields travel as tags
        px = {k: float(v) for k, v in json.loads(f["tags"]).items() if k in ("xmin", "ymin", "xmax", "ymax")}
        prompt_box = box(left + px["xmin"] * 0.1, top - px["ymax"] * 0.1, left + px["xmax"] * 0.1, top - px["ymin"] * 0.1)
        geometry = to_shapely(f.geometry())
        assert geometry.area > 0.2 * prompt_box.area
        assert prompt_box.buffer(0.25).contains(geometry)  # inside its box, within 2.5 pixels


def test_sam_prompt_mode_records_model_and_checkpoint(run_algorithm, read_vector, vector_factory, scene, tiny_checkpoint, tmp_path):
    from seg_qgis_plugin.core.models.download import sha256_file as sha256_of

    path, truth = scene
    prompts = vector_factory("p", [Point(*to_map(*truth[0].point)), Point(0, 0)], CRS, note=["in", "outside"])
    result = run_algorithm("seg:prelabel", {"INPUT": path, "PROMPTS": prompts, "CHECKPOINT": tiny_checkpoint, "BACKEND": 1,
                                            "DEFAULT_CLASS": "thing", "TILE": 512, "OVERLAP": 0, "OUTPUT": str(tmp_path / "s.gpkg")})
    assert result["SKIPPED"] == 1  # the point outside the raster is reported, not fatal
    _, features = read_vector(result["OUTPUT"])
    for f in features:
        assert f["model"] == "sam-vit_tiny" and f["checkpoint_sha256"] == sha256_of(tiny_checkpoint) and f["class"] == "thing"


def test_sam_automatic_mode_finds_objects_inside_the_raster(run_algorithm, read_vector, raster_factory, tiny_checkpoint, tmp_path):
    from qgis.core import QgsRasterLayer

    data = np.full((3, 128, 200), 40, np.uint8)  # two 128-pixel tiles
    data[:, 30:90, 40:120] = 220
    raster = raster_factory(data)
    result = run_algorithm("seg:prelabel", {"INPUT": raster, "MODE": 1, "BACKEND": 1, "CHECKPOINT": tiny_checkpoint, "POINTS_PER_SIDE": 3,
                                            "MIN_SCORE": 0.0, "MIN_STABILITY": 0.0, "TILE": 128, "OVERLAP": 32,
                                            "OUTPUT": str(tmp_path / "auto.gpkg")})
    layer, features = read_vector(result["OUTPUT"])
    assert len(features) >= 1 and all(f["prompt_type"] == "auto-grid" for f in features)
    extent = QgsRasterLayer(raster, "r", "gdal").extent()
    assert all(extent.contains(f.geometry().boundingBox()) for f in features)


def test_bad_input_and_cancel_write_nothing(run_algorithm, cancel_at, vector_factory, scene, tmp_path):
    from qgis.core import QgsProcessingException

    path, truth = scene
    out = str(tmp_path / "x.gpkg")
    with pytest.raises(QgsProcessingException, match="classic-grabcut backend cannot pre-label automatically"):
        run_algorithm("seg:prelabel", {"INPUT": path, "MODE": 1, "BACKEND": 0, "OUTPUT": out})
    with pytest.raises(QgsProcessingException, match="needs a prompt layer"):
        run_algorithm("seg:prelabel", {"INPUT": path, "MODE": 0, "BACKEND": 0, "OUTPUT": out})
    with pytest.raises(QgsProcessingException, match="needs a SAM model"):
        prompts = vector_factory("one", [Point(*to_map(*truth[0].point))], CRS, k=["a"])
        run_algorithm("seg:prelabel", {"INPUT": path, "PROMPTS": prompts, "BACKEND": 1, "OUTPUT": out})
    many = vector_factory("many", [Point(*to_map(*o.point)) for o in truth], CRS, k=["a"] * len(truth))
    with pytest.raises(QgsProcessingException, match="Canceled"):
        run_algorithm("seg:prelabel", {"INPUT": path, "PROMPTS": many, "BACKEND": 0, "TILE": 256, "OVERLAP": 64, "OUTPUT": out,
                                       "CLASS_RASTER": str(tmp_path / "c.tif")}, cancel_at(20))
    assert not os.path.exists(out) and not os.path.exists(tmp_path / "c.tif")


def _rows(path):
    """(WKB, attributes without the `created` time) of each feature, in order, read by the core."""
    from seg_qgis_plugin.core.outputs.vectors import read_labels

    return [(lab.geometry.wkb, {k: v for k, v in lab.attributes.items() if k != "created"}) for lab in read_labels(path)]


def test_a_dask_scheduler_gives_the_serial_result_in_both_modes(run_algorithm, vector_factory, raster_factory, scene,
                                                                 tiny_checkpoint, tmp_path):
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install distributed==2024.8.0)")
    path, truth = scene
    buildings = [o for o in truth if o.class_name == "building"][:2]
    prompts = vector_factory("sched", [Point(*to_map(*b.point)) for b in buildings] + [Point(0, 0)], CRS, kind=["roof", "roof", "x"])
    params = {"INPUT": path, "MODE": 0, "PROMPTS": prompts, "CLASS_FIELD": "kind", "BACKEND": 0, "TILE": 256, "OVERLAP": 64}
    serial = run_algorithm("seg:prelabel", dict(params, OUTPUT=str(tmp_path / "serial.gpkg")))
    cluster = run_algorithm("seg:prelabel", dict(params, SCHEDULER="local:1", OUTPUT=str(tmp_path / "cluster.gpkg")))
    assert serial["COUNT"] == cluster["COUNT"] == 2 and serial["SKIPPED"] == cluster["SKIPPED"] == 1
    assert _rows(cluster["OUTPUT"]) == _rows(serial["OUTPUT"])

    data = np.full((3, 128, 200), 40, np.uint8)  # two 128-pixel tiles, one object across both
    data[:, 30:90, 40:120] = 220
    params = {"INPUT": raster_factory(data), "MODE": 1, "BACKEND": 1, "CHECKPOINT": tiny_checkpoint, "POINTS_PER_SIDE": 3,
              "MIN_SCORE": 0.0, "MIN_STABILITY": 0.0, "TILE": 128, "OVERLAP": 32}
    serial = run_algorithm("seg:prelabel", dict(params, OUTPUT=str(tmp_path / "auto_serial.gpkg")))
    cluster = run_algorithm("seg:prelabel", dict(params, SCHEDULER="local:1", OUTPUT=str(tmp_path / "auto_cluster.gpkg")))
    assert serial["COUNT"] == cluster["COUNT"] >= 1
    assert _rows(cluster["OUTPUT"]) == _rows(serial["OUTPUT"])


def test_find_all_like_an_exemplar_and_text_needs_sam3(run_algorithm, read_vector, vector_factory, scene, tmp_path):
    from qgis.core import QgsProcessingException

    from seg_qgis_plugin.qgis_adapters.geometry import to_shapely

    path, truth = scene
    building = next(o for o in truth if o.class_name == "building")
    example = truth_polygon(building)
    exemplars = vector_factory("example", [example], CRS)
    result = run_algorithm("seg:prelabel", {"INPUT": path, "MODE": 2, "EXEMPLARS": exemplars, "DEFAULT_CLASS": "building",
                                            "BACKEND": 0, "MIN_SCORE": 0.3, "OUTPUT": str(tmp_path / "like.gpkg")})
    layer, features = read_vector(result["OUTPUT"])
    assert result["COUNT"] == len(features) >= 1
    assert {f["prompt_type"] for f in features} == {"exemplar"} and {f["class"] for f in features} == {"building"}
    assert max(iou(to_shapely(f.geometry()), example) for f in features) > 0.5
    with pytest.raises(QgsProcessingException, match="SAM 3"):
        run_algorithm("seg:prelabel", {"INPUT": path, "MODE": 2, "TEXT": "pond=water", "BACKEND": 0,
                                       "OUTPUT": str(tmp_path / "never.gpkg")})
    assert not (tmp_path / "never.gpkg").exists()
