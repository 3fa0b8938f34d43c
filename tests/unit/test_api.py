"""The Python API: every function on a synthetic scene with known objects (classic backend) and
with a tiny random-weight SAM checkpoint through the real loading path."""
import json
import os
import subprocess
import sys
import warnings

import geopandas as gpd
import pyogrio
import pytest
import rasterio
from pyproj import CRS
from shapely.geometry import Point, box

import seg_qgis_plugin.api as seg
from seg_qgis_plugin.core.engine.labels import FIELD_NAMES
from seg_qgis_plugin.core.errors import CrsError, OutputError, PromptError, SegError, SegWarning
from seg_qgis_plugin.core.geo.vectorize import mask_to_geometry, reproject_geometry
from seg_qgis_plugin.demo.scene import write_scene

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("api") / "ortho.tif")
    truth = write_scene(path, 512, 512)
    with rasterio.open(path) as ds:
        transform = ds.transform
    return path, truth, transform


def map_box(transform, pixel_box):
    (x0, y1), (x1, y0) = transform * pixel_box[:2], transform * pixel_box[2:]
    return x0, y0, x1, y1


def iou(a, b):
    return a.intersection(b).area / a.union(b).area


def test_segment_returns_one_row_with_crs_and_every_field(scene):
    path, truth, transform = scene
    pond = next(t for t in truth if t.name == "pond" and t.box[2] < 512 and t.box[3] < 512)
    true_shape = mask_to_geometry(pond.mask, transform)
    with seg.open(path, backend="classic") as session:
        by_point = session.segment(points=[transform * pond.point], label="water", tags={"date": "2024-06-01"})
        wgs_box = reproject_geometry(box(*map_box(transform, pond.box)), "EPSG:32633", "EPSG:4326").bounds
        by_box = session.segment(box=wgs_box, crs="EPSG:4326", label="water")
        with pytest.raises(PromptError, match="outside the raster"):
            session.segment(points=[(0.0, 0.0)])
        with pytest.raises(PromptError, match="one label per point"):
            session.segment(points=[transform * pond.point], point_labels=[1, 0])
    for table in (by_point, by_box):
        assert isinstance(table, gpd.GeoDataFrame) and len(table) == 1
        assert CRS.from_user_input(table.crs) == CRS.from_user_input("EPSG:32633")
        assert list(table.columns[: len(FIELD_NAMES)]) == list(FIELD_NAMES)
        assert iou(table.geometry.iloc[0], true_shape) > 0.8
    row = by_point.iloc[0]
    assert row["class"] == "water" and row["date"] == "2024-06-01" and json.loads(row["tags"]) == {"date": "2024-06-01"}
    assert row["prompt_type"] == "point" and row["model"] == "classic-grabcut" and row["status"] == "prelabel"
    assert row["source"] == "ortho.tif" and by_box.iloc[0]["prompt_type"] == "box"
    assert by_point["score"].dtype == "float64" and by_point["prompt_count"].dtype == "int64"


def test_prelabel_from_a_geodataframe_and_from_a_file(scene, tmp_path):
    path, truth, transform = scene
    buildings = [t for t in truth if t.class_name == "building" and t.box[2] < 512 and t.box[3] < 512]
    rows = [{"kind": "building", "detector": "det-v2", "geometry": box(*map_box(transform, b.box))} for b in buildings]
    rows.append({"kind": "building", "detector": "det-v2", "geometry": box(0, 0, 1, 1)})  # far outside the raster
    prompts = gpd.GeoDataFrame(rows, crs="EPSG:32633").to_crs("EPSG:4326")  # any CRS
    with seg.open(path, backend="classic", classes=["building", "water"]) as session:
        with pytest.warns(SegWarning, match=f"1 of {len(rows)} prompts gave no object"):
            table = session.prelabel(prompts, class_field="kind")
        file = str(tmp_path / "prompts.gpkg")
        prompts.iloc[:1].to_file(file)
        from_file = session.prelabel(file, class_field="kind")
        with pytest.raises(SegError, match="'object' is not one of this session's classes"):
            session.prelabel(file)  # without a class field every object is an "object"
        with pytest.raises(PromptError, match="no column 'species'"):
            session.prelabel(prompts, class_field="species")
    assert len(table) == len(buildings) and table.attrs["skipped"][0][0] == len(rows)
    assert set(table["class"]) == {"building"} and set(table["prompt_type"]) == {"box"}
    assert all(json.loads(t)["detector"] == "det-v2" for t in table["tags"])
    truths = [box(*map_box(transform, b.box)) for b in buildings]
    assert all(max(iou(g, t) for t in truths) > 0.8 for g in table.geometry)
    assert len(from_file) == 1 and from_file.iloc[0]["class"] == "building"
    assert CRS.from_user_input(table.crs) == CRS.from_user_input("EPSG:32633")


def test_classes_from_a_list_or_an_ontology_file(scene, tmp_path):
    path, truth, transform = scene
    pond = next(t for t in truth if t.name == "pond" and t.box[2] < 512 and t.box[3] < 512)
    with seg.open(path, backend="classic", classes=["water"]) as session:
        with pytest.raises(SegError, match="'roof' is not one of this session's classes"):
            session.segment(points=[transform * pond.point], label="roof")
    ontology = tmp_path / "classes.json"
    ontology.write_text(json.dumps({"classes": [{"name": "water", "code": 1}, {"name": "pond", "code": 11, "parent": "water"}]}))
    with seg.open(path, backend="classic", classes=str(ontology)) as session:
        assert session.classes == ["water", "pond"] and session.ontology is not None
        assert len(session.segment(points=[transform * pond.point], label="pond")) == 1
        with pytest.raises(SegError, match="'roof' is not in the ontology"):
            session.segment(points=[transform * pond.point], label="roof")


def test_sam_session_segments_caches_and_runs_the_automatic_grid(scene, tmp_path, tiny_checkpoint):
    path, truth, transform = scene
    building = next(t for t in truth if t.class_name == "building" and t.box[2] < 512 and t.box[3] < 512)
    cache = tmp_path / "cache"
    with seg.open(path, checkpoint=tiny_checkpoint, cache=str(cache), device="cpu") as session:
        assert session.model_id == "sam-vit_tiny"
        one = session.segment(box=map_box(transform, building.box), label="building")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SegWarning)  # random weights: few masks pass SAM's thresholds
            grid = session.auto(points_per_side=2)
    assert len(one) == 1 and one.iloc[0]["model"] == "sam-vit_tiny" and len(one.iloc[0]["checkpoint_sha256"]) == 64
    assert one.iloc[0]["prompt_type"] == "box"
    assert any(name.endswith(".safetensors") for name in os.listdir(cache))  # encoded once, kept for later sessions
    assert isinstance(grid, gpd.GeoDataFrame) and list(grid.columns[: len(FIELD_NAMES)]) == list(FIELD_NAMES)
    assert set(grid["prompt_type"]) <= {"auto-grid"} and set(grid["model"]) <= {"sam-vit_tiny"}
    assert CRS.from_user_input(grid.crs) == CRS.from_user_input("EPSG:32633")


def test_auto_finds_every_object_once_with_class_and_tags(raster_factory, oracle):
    import numpy as np

    data = np.full((1, 200, 300), 20, np.uint8)
    rects = [(10, 10, 40, 30), (100, 60, 170, 90), (220, 150, 260, 190)]  # c0, r0, c1, r1
    for c0, r0, c1, r1 in rects:
        data[0, r0:r1, c0:c1] = 230
    path = raster_factory(data)
    with seg.open(path, backend="classic", stretch=(0, 255), classes=["roof"]) as session:
        session._segmenter.backend = oracle("bright")  # a model whose answer is known exactly
        table = session.auto(points_per_side=24, min_score=0.5, min_stability=0.5, label="roof", tags={"season": "summer"})
        with rasterio.open(path) as ds:
            transform = ds.transform
    expected = [box(*map_box(transform, r)) for r in rects]
    assert len(table) == 3 and set(table["class"]) == {"roof"} and set(table["season"]) == {"summer"}
    assert all(any(g.equals(e) for e in expected) for g in table.geometry)
    assert CRS.from_user_input(table.crs) == CRS.from_user_input("EPSG:32633")


def test_auto_needs_sam_and_a_closed_session_says_so(scene):
    session = seg.open(scene[0], backend="classic")
    with pytest.raises(SegError, match="cannot pre-label automatically"):
        session.auto()
    session.close()
    session.close()  # twice is fine
    assert "closed" in repr(session)
    with pytest.raises(SegError, match="session is closed"):
        session.segment(points=[(500010.0, 4649990.0)])


def test_write_and_read_labels_round_trip_and_append_keeps_everything(scene, tmp_path):
    path, truth, transform = scene
    with seg.open(path, backend="classic") as session:
        pond = next(t for t in truth if t.name == "pond" and t.box[2] < 512 and t.box[3] < 512)
        table = session.segment(points=[transform * pond.point], label="water")
    table["reviewer"] = ["ana"]
    out = str(tmp_path / "labels.gpkg")
    assert seg.write_labels(table, out) == out
    back = seg.read_labels(out)
    assert len(back) == 1 and back.iloc[0]["class"] == "water" and back.iloc[0]["reviewer"] == "ana"
    assert back.geometry.iloc[0].equals(table.geometry.iloc[0])
    assert back.iloc[0]["score"] == pytest.approx(table.iloc[0]["score"])
    assert CRS.from_user_input(back.crs) == CRS.from_user_input("EPSG:32633")
    with pytest.raises(OutputError, match="already exists"):
        seg.write_labels(table, out)
    mine = gpd.GeoDataFrame({"class": ["tree", "tree"]}, geometry=[Point(500050, 4649950).buffer(2), Point(500060, 4649950).buffer(2)],
                            crs="EPSG:32633").to_crs("EPSG:4326")
    seg.write_labels(mine, out, append=True)
    back = seg.read_labels(out)
    assert list(back["class"]) == ["water", "tree", "tree"] and pyogrio.read_info(out)["features"] == 3
    assert back.iloc[1]["status"] == "prelabel" and back.iloc[1]["created"]  # missing fields are filled
    assert back.geometry.iloc[1].centroid.distance(Point(500050, 4649950)) < 0.01  # reprojected to the layer's CRS
    geojson = str(tmp_path / "labels.geojson")
    seg.write_labels(back, geojson)
    seg.write_labels(back.iloc[:1], geojson, append=True)
    assert len(seg.read_labels(geojson)) == 4


def test_write_labels_refuses_what_it_cannot_write(tmp_path):
    points = gpd.GeoDataFrame({"class": ["a"]}, geometry=[Point(0, 0)], crs="EPSG:32633")
    with pytest.raises(SegError, match="Only polygons can be written as labels, not Point"):
        seg.write_labels(points, str(tmp_path / "p.gpkg"))
    nocrs = gpd.GeoDataFrame({"class": ["a"]}, geometry=[box(0, 0, 1, 1)])
    with pytest.raises(CrsError, match="no CRS"):
        seg.write_labels(nocrs, str(tmp_path / "n.gpkg"))
    assert os.listdir(tmp_path) == []
    empty = seg.read_labels(_empty_layer(tmp_path / "empty.gpkg"))
    assert len(empty) == 0 and list(empty.columns[: len(FIELD_NAMES)]) == list(FIELD_NAMES) and empty.crs is not None


def _empty_layer(path):
    from seg_qgis_plugin.core.outputs.vectors import LabelWriter

    with LabelWriter(str(path), crs="EPSG:32633"):
        pass
    return str(path)


def test_importing_the_api_is_cheap_and_qgis_free():
    code = ("import sys, seg_qgis_plugin.api; "
            "print(sorted(m for m in ('geopandas', 'pandas', 'rasterio', 'torch', 'qgis', 'PyQt5') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_the_neon_crowns_example_labels_every_box(shared):
    folder = shared("neon_tree_crowns")
    stem = "2018_SJER_3_252000_4107000_image_477"
    shared("neon_tree_crowns", stem + "_boxes_derived.geojson")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "label_neon_crowns.py"), "--data", folder,
                           "--image", stem], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("tree" in line for line in lines)
    summary = lines[-1]
    assert summary.startswith("7 crowns from 7 boxes"), done.stdout
