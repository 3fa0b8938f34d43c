"""The assistant: learns a synthetic scene from a few squares and a scribble, writes rasters on the
exact grid, saves a model as data that predicts identically, ranks tiles, and refuses bad input in
one sentence."""
import json

import numpy as np
import pytest
import rasterio
from shapely.geometry import LineString, box

pytest.importorskip("lightgbm", reason="the assistant needs lightgbm")

from seg_qgis_plugin.cli.main import main  # noqa: E402
from seg_qgis_plugin.core.assist.classifier import load_model  # noqa: E402
from seg_qgis_plugin.core.assist.features import make_recipe, read_window_features  # noqa: E402
from seg_qgis_plugin.core.assist import pipeline  # noqa: E402
from seg_qgis_plugin.core.assist.options import AssistOptions, PredictOptions  # noqa: E402
from seg_qgis_plugin.core.assist.rank import RankOptions, rank_tiles  # noqa: E402
from seg_qgis_plugin.core.engine.labels import Label, attributes  # noqa: E402
from seg_qgis_plugin.core.errors import SegError  # noqa: E402
from seg_qgis_plugin.core.geo.raster import RasterSource  # noqa: E402
from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels  # noqa: E402
from seg_qgis_plugin.demo.scene import CRS, ORIGIN, pixel_square, write_scene  # noqa: E402

SIZE, RES = 512, 0.5


def assist(raster, out, labels=None, model_path=None, save_model=None, refine=None, cache=None, checkpoint=None, **predict):
    """core.assist.pipeline.assist with its options spelled as keywords."""
    options = AssistOptions(out, model_path=model_path, save_model=save_model, refine=refine, cache=cache,
                            checkpoint=checkpoint, predict=PredictOptions(**predict))
    return pipeline.assist(raster, labels, options)



@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("assist")
    raster = str(folder / "scene.tif")
    truth = write_scene(raster, SIZE, SIZE, seed=1)
    water = np.any([o.mask for o in truth if o.class_name == "water"], axis=0)
    building = np.any([o.mask for o in truth if o.class_name == "building"], axis=0)
    labels = []
    for o in truth:
        col, row = o.point
        labels.append(Label(pixel_square(int(col) - 6, int(row) - 6), CRS, attributes(o.class_name, status="accepted")))
    for col, row in [(20, 20), (20, 480), (480, 20), (250, 470), (470, 250), (150, 120), (330, 300), (60, 300)]:
        if not (water | building)[row:row + 12, col:col + 12].any():
            labels.append(Label(pixel_square(col, row), CRS, attributes("background", status="accepted")))
    # a scribble: a 1-pixel-wide stroke across a field, as a polygon
    stroke = LineString([(ORIGIN[0] + 10 * RES, ORIGIN[1] - 250 * RES), (ORIGIN[0] + 40 * RES, ORIGIN[1] - 235 * RES)]).buffer(RES)
    labels.append(Label(stroke, CRS, attributes("background", status="accepted")))
    labels.append(Label(pixel_square(20, 20, 40), CRS, attributes("water", status="rejected")))  # wrong: must be ignored
    labels_path = str(folder / "labels.gpkg")
    write_labels(labels, labels_path)
    out = folder / "run"
    out.mkdir()
    summary = assist(raster, str(out / "pre.gpkg"), read_labels(labels_path), probability=str(out / "prob.tif"),
                     uncertainty=str(out / "unc.tif"), save_model=str(out / "model.json"), min_area=10.0)
    return dict(folder=folder, raster=raster, labels=labels_path, water=water, building=building, out=out, summary=summary)


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_learns_the_scene_from_squares_and_a_scribble(scene):
    with rasterio.open(scene["out"] / "prob.tif") as ds:
        names = list(ds.descriptions)
        proba = ds.read()
    assert names == ["building", "water"]  # background is learned, not written
    assert iou(proba[names.index("water")] > 0.5, scene["water"]) > 0.9
    assert iou(proba[names.index("building")] > 0.5, scene["building"]) > 0.7
    labels = read_labels(str(scene["out"] / "pre.gpkg"))
    assert {lab.attributes["class"] for lab in labels} == {"water", "building"}
    assert all(lab.attributes["status"] == "prelabel" and 0.5 < lab.attributes["score"] <= 1.0 for lab in labels)
    assert all(lab.attributes["prompt_type"] == "assist" for lab in labels)
    water_polys = [lab.geometry for lab in labels if lab.attributes["class"] == "water"]
    assert len(water_polys) == 3  # the big pond crosses window borders only in bigger rasters; one polygon per pond
    assert scene["summary"].model.trained["pixels"]["water"] == 3 * 144  # the rejected square taught nothing


def test_probability_and_uncertainty_are_on_the_raster_grid(scene):
    with rasterio.open(scene["raster"]) as src, rasterio.open(scene["out"] / "prob.tif") as prob, \
            rasterio.open(scene["out"] / "unc.tif") as unc:
        for ds in (prob, unc):
            assert (ds.width, ds.height) == (src.width, src.height)
            assert ds.transform == src.transform and ds.crs == src.crs
            assert ds.dtypes[0] == "float32"
        u = unc.read(1)
        p = prob.read()
    assert 0.0 <= u.min() and u.max() <= 1.0
    assert u[scene["water"]].mean() < u[~scene["water"]].max()
    assert np.all((p >= 0) & (p <= 1))


def test_saved_model_is_json_and_predicts_identically(scene, tmp_path):
    path = scene["out"] / "model.json"
    raw = path.read_bytes()
    assert raw[:1] == b"{" and b"\x80" not in raw[:2]  # JSON, not a pickle stream
    d = json.loads(raw)
    assert d["format"] == "seg-assist-model/1" and d["classes"] == ["background", "building", "water"]
    assert d["recipe"]["bands"] == [1, 2, 3, 4] and len(d["recipe"]["low"]) == 4
    model = load_model(str(path))
    original = scene["summary"].model
    with RasterSource(scene["raster"]) as src:
        features, valid = read_window_features(src, model.recipe, (100, 100, 64, 64))
    X = features[:, valid].T
    assert np.array_equal(model.predict_proba(X), original.predict_proba(X))
    again = assist(scene["raster"], str(tmp_path / "again.gpkg"), model_path=str(path), probability=str(tmp_path / "p.tif"), min_area=10.0)
    assert again.result.count == scene["summary"].result.count
    with rasterio.open(tmp_path / "p.tif") as a, rasterio.open(scene["out"] / "prob.tif") as b:
        assert np.array_equal(a.read(), b.read())


def test_window_borders_do_not_show(scene):
    with RasterSource(scene["raster"]) as src:
        recipe = make_recipe(src)
        whole, _ = read_window_features(src, recipe, (0, 0, SIZE, SIZE))
        part, _ = read_window_features(src, recipe, (200, 130, 100, 90))
    np.testing.assert_allclose(part, whole[:, 130:220, 200:300], rtol=1e-4, atol=1e-4)


def test_rank_tiles_prefers_uncertain_unlabelled_tiles(scene, tmp_path):
    out = str(tmp_path / "next.gpkg")
    chosen = rank_tiles(scene["raster"], out, uncertainty=str(scene["out"] / "unc.tif"), labels=read_labels(scene["labels"]),
                        options=RankOptions(top=5, tile=128))
    ranked = read_labels(out)
    assert [lab.attributes["rank"] for lab in ranked] == [1, 2, 3, 4, 5]
    priorities = [lab.attributes["priority"] for lab in ranked]
    assert priorities == sorted(priorities, reverse=True)
    assert all(t.unlabeled > 0 for t in chosen)
    by_model = rank_tiles(scene["raster"], None, model=scene["summary"].model, options=RankOptions(top=3, tile=256))
    assert len(by_model) == 3


def test_bad_input_gives_one_sentence(scene, tmp_path, capsys):
    raster = scene["raster"]
    only_water = [Label(pixel_square(100, 100), CRS, attributes("water"))]
    with pytest.raises(SegError, match="at least two classes"):
        assist(raster, str(tmp_path / "a.gpkg"), only_water)
    with pytest.raises(SegError, match="labels to learn from"):
        assist(raster, str(tmp_path / "b.gpkg"))
    with pytest.raises(SegError, match="needs a SAM checkpoint"):
        assist(raster, str(tmp_path / "c.gpkg"), only_water, refine="sam")
    (tmp_path / "fake.json").write_text('{"format": "something else"}')
    with pytest.raises(SegError, match="not a Seg assistant model"):
        load_model(str(tmp_path / "fake.json"))
    far = [Label(box(0, 0, 10, 10), CRS, attributes("water")), Label(box(20, 0, 30, 10), CRS, attributes("background"))]
    with pytest.raises(SegError, match="No label lies on"):
        assist(raster, str(tmp_path / "d.gpkg"), far)
    one_band = str(tmp_path / "one.tif")
    with rasterio.open(raster) as src:
        profile = dict(src.profile, count=1)
        with rasterio.open(one_band, "w", **profile) as dst:
            dst.write(src.read(1), 1)
    with pytest.raises(SegError, match="has 1"):
        assist(one_band, str(tmp_path / "e.gpkg"), model_path=str(scene["out"] / "model.json"))
    assert not list(tmp_path.glob("*.gpkg"))  # nothing half-written
    rc = main(["assist", raster, "--labels", scene["labels"], "--out", str(scene["out"] / "pre.gpkg")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "already exists" in err[0]
    small = str(tmp_path / "small.tif")
    with rasterio.open(small, "w", **dict(profile, width=100, height=100)) as dst:
        dst.write(np.zeros((1, 100, 100), np.uint16))
    rc = main(["rank-tiles", raster, "--out", str(tmp_path / "n.gpkg"), "--uncertainty", small])
    assert rc == 2 and "not on the grid" in capsys.readouterr().err


def test_small_windows_give_the_same_rasters_and_merge_blobs_across_borders(scene, tmp_path, monkeypatch):
    from seg_qgis_plugin.core.assist import predict

    model = scene["summary"].model
    runs = {}
    for side in (512, 96):
        monkeypatch.setattr(predict, "window_size", lambda n_features, side=side: side)
        labels = []
        with RasterSource(scene["raster"]) as src:
            predict.predict_raster(src, model, labels.append, PredictOptions(str(tmp_path / f"p{side}.tif"), min_area=10.0))
        with rasterio.open(tmp_path / f"p{side}.tif") as ds:
            runs[side] = (ds.read(), sorted(round(lab.geometry.area, 6) for lab in labels),
                          sorted(round(lab.attributes["score"], 4) for lab in labels))
    np.testing.assert_allclose(runs[96][0], runs[512][0], atol=1e-3)  # features agree to float rounding, not bit for bit
    assert len(runs[96][1]) == len(runs[512][1])  # the big pond crosses 96-pixel windows and still comes out whole
    np.testing.assert_allclose(runs[96][1], runs[512][1], rtol=1e-3)
    np.testing.assert_allclose(runs[96][2], runs[512][2], atol=1e-3)


def test_sam_embedding_features_from_a_cache(tiny_checkpoint, tmp_path):
    """--cache: the model gains SAM features (principal components of the cached embedding), stores
    them as numbers, and needs the cache again when applied."""
    from seg_qgis_plugin.core.engine.labeling import open_backend, open_segmenter
    from seg_qgis_plugin.core.geo.tiling import Tiling

    raster = str(tmp_path / "small.tif")
    truth = write_scene(raster, 256, 256, seed=3)
    segmenter = open_segmenter(raster, open_backend(tiny_checkpoint, "vit_tiny", "sam", "cpu"), tiling=Tiling(256, 0),
                               cache_dir=str(tmp_path / "cache"))
    segmenter.encode()
    pond = next(o for o in truth if o.class_name == "water")
    labels = [Label(pixel_square(int(pond.point[0]) - 6, int(pond.point[1]) - 6), CRS, attributes("water")),
              Label(pixel_square(5, 5), CRS, attributes("background")), Label(pixel_square(240, 5, 10), CRS, attributes("background"))]
    summary = assist(raster, str(tmp_path / "pre.gpkg"), labels, cache=str(tmp_path / "cache"), checkpoint=tiny_checkpoint,
                     save_model=str(tmp_path / "m.json"), probability=str(tmp_path / "p.tif"))
    names = summary.model.recipe.names()
    assert names[-16:] == [f"sam_pc{k}" for k in range(16)]
    with open(tmp_path / "m.json") as f:
        spec = json.load(f)["recipe"]["embedding"]
    assert spec["model_id"] == segmenter.backend.model_id and len(spec["components"][0]) == 256
    with pytest.raises(SegError, match="SAM embedding features"):
        assist(raster, str(tmp_path / "again.gpkg"), model_path=str(tmp_path / "m.json"))
    again = assist(raster, str(tmp_path / "again.gpkg"), model_path=str(tmp_path / "m.json"), cache=str(tmp_path / "cache"),
                   probability=str(tmp_path / "p2.tif"))
    assert again.result.count == summary.result.count
    with rasterio.open(tmp_path / "p.tif") as a, rasterio.open(tmp_path / "p2.tif") as b:
        assert np.array_equal(a.read(), b.read())
