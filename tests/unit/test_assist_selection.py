"""The assistant can keep only the features it uses most (train_model's `select`): a selected recipe computes exactly those
columns of the full feature stack (window borders still invisible), the model saves its selection
as format /2, format /1 files (every feature) still load, and prediction gives the same numbers in
any memory layout and chunking."""
import json

import numpy as np
import pytest

pytest.importorskip("lightgbm", reason="the assistant needs lightgbm")

from seg_qgis_plugin.core.assist import classifier  # noqa: E402
from seg_qgis_plugin.core.assist.classifier import load_model, train_model  # noqa: E402
from seg_qgis_plugin.core.assist.features import FeatureRecipe, make_recipe, read_window_features  # noqa: E402
from seg_qgis_plugin.core.assist.samples import training_set  # noqa: E402
from seg_qgis_plugin.core.engine.labels import Label, attributes  # noqa: E402
from seg_qgis_plugin.core.errors import SegError  # noqa: E402
from seg_qgis_plugin.core.geo.raster import RasterSource  # noqa: E402
from seg_qgis_plugin.demo.scene import CRS, pixel_square, write_scene  # noqa: E402

SIZE = 256



@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("selection")
    raster = str(folder / "scene.tif")
    truth = write_scene(raster, SIZE, SIZE, seed=3)
    labels = [Label(pixel_square(int(o.point[0]) - 6, int(o.point[1]) - 6), CRS, attributes(o.class_name)) for o in truth]
    labels += [Label(pixel_square(c, r, 10), CRS, attributes("background")) for c, r in [(5, 5), (240, 5), (5, 240), (120, 20)]]
    with RasterSource(raster) as src:
        recipe = make_recipe(src)
        training = training_set(src, labels, recipe)
        full, valid = read_window_features(src, recipe, (0, 0, SIZE, SIZE))
    return dict(folder=folder, raster=raster, recipe=recipe, training=training, full=full, valid=valid)


def test_a_selected_recipe_computes_exactly_those_columns(scene):
    recipe, full = scene["recipe"], scene["full"]
    names = recipe.all_names()
    assert names == recipe.names() and len(names) == full.shape[0] == 4 * (1 + 3 * 6) + 12  # no LoG, sigmas 0.7 1.6 5
    picked = ("b1", "b4_hessian2_s0.7", "b2_structure1_s1.6", "b3_gradient_s0.7", "nd_b2_b4", "nd_b1_b3_s0.7")
    small = FeatureRecipe.from_dict(dict(recipe.to_dict(), selected=list(picked)))
    assert set(small.names()) == set(picked) and small.names() == [n for n in names if n in picked]
    assert small.halo < recipe.halo  # sigma 5 is not needed, so less context is read
    with RasterSource(scene["raster"]) as src:
        whole, _ = read_window_features(src, small, (0, 0, SIZE, SIZE))
        part, _ = read_window_features(src, small, (100, 70, 90, 60))
    np.testing.assert_allclose(whole, full[[names.index(n) for n in small.names()]], rtol=1e-6, atol=1e-7)  # SIMD rounding
    np.testing.assert_allclose(part, whole[:, 70:130, 100:190], rtol=1e-4, atol=1e-4)
    with pytest.raises(SegError, match="cannot compute"):
        FeatureRecipe.from_dict(dict(recipe.to_dict(), selected=["b9_gauss_s1"]))


def test_a_saved_recipe_of_every_kind_and_sigma_still_computes(scene):
    """Models saved before the leaner defaults name all five kinds and four sigmas; they get
    exactly those features, and the LoG is the sum of the Hessian's eigenvalues."""
    d = scene["recipe"].to_dict()
    del d["sigmas"], d["kinds"]  # a recipe that does not say means the old defaults
    old = FeatureRecipe.from_dict(d)
    assert old.sigmas == (0.7, 1.6, 3.5, 5.0) and "log" in old.kinds and len(old.names()) == 128 and old.halo == 32
    with RasterSource(scene["raster"]) as src:
        features, _ = read_window_features(src, old, (30, 40, 64, 64))
    names = old.names()
    hessian = features[names.index("b2_hessian1_s1.6")] + features[names.index("b2_hessian2_s1.6")]
    np.testing.assert_allclose(features[names.index("b2_log_s1.6")], hessian, rtol=1e-4, atol=1e-5)


def test_the_model_keeps_the_best_features_and_saves_them_as_format_2(scene, tmp_path):
    model = train_model(scene["training"], scene["recipe"], "background", select=40)
    selected = model.recipe.selected
    assert len(selected) == 40 and len(model.recipe.names()) == 40
    assert set(model.importances) <= set(selected)
    assert model.trained["selected"]["of"] == 88 and model.trained["trees"] == classifier.TREES
    path = model.save(str(tmp_path / "m.json"))
    with open(path) as f:
        d = json.load(f)
    assert d["format"] == "seg-assist-model/2" and d["recipe"]["selected"] == list(selected)
    loaded = load_model(path)
    names = scene["recipe"].names()
    X = scene["full"][[names.index(n) for n in loaded.recipe.names()]]
    assert np.array_equal(loaded.predict_maps(X), model.predict_maps(X))


def test_all_features_is_still_format_1_and_old_files_load(scene, tmp_path):
    model = train_model(scene["training"], scene["recipe"], "background", trees=5)
    assert model.recipe.selected is None and len(model.recipe.names()) == 88  # no selection by default
    path = model.save(str(tmp_path / "old.json"))
    with open(path) as f:
        d = json.load(f)
    assert d["format"] == "seg-assist-model/1" and "selected" not in d["recipe"]
    loaded = load_model(path)
    assert np.array_equal(loaded.predict_maps(scene["full"]), model.predict_maps(scene["full"]))
    (tmp_path / "future.json").write_text(json.dumps(dict(d, format="seg-assist-model/3")))
    with pytest.raises(SegError, match="format seg-assist-model/3, which this version cannot read"):
        load_model(str(tmp_path / "future.json"))
    broken = dict(d, format="seg-assist-model/2", recipe=dict(d["recipe"], selected=["nothing"]))
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(SegError, match="cannot compute"):
        load_model(str(tmp_path / "broken.json"))


@pytest.mark.parametrize("trees,select", [(5, 20), (3, 0)])
def test_prediction_is_the_same_in_any_layout_and_chunking(scene, monkeypatch, trees, select):
    model = train_model(scene["training"], scene["recipe"], "background", trees=trees, select=select)
    names = scene["recipe"].names()
    maps = scene["full"][[names.index(n) for n in model.recipe.names()]][:, 10:210, 5:250]  # a cropped, strided view
    n = maps.shape[0]
    reference = model.booster().predict(np.ascontiguousarray(maps.reshape(n, -1).T))
    assert reference.shape == (200 * 245, 3)  # background, building, water
    monkeypatch.setattr(classifier, "CHUNK", 997)  # many chunks, a ragged last one
    by_maps = model.predict_maps(maps)
    feature_major = model.predict_proba(np.ascontiguousarray(maps).reshape(n, -1).T)
    pixel_major = model.predict_proba(np.ascontiguousarray(maps.reshape(n, -1).T))
    np.testing.assert_array_equal(pixel_major, reference.astype(np.float32))
    np.testing.assert_array_equal(feature_major, pixel_major)
    np.testing.assert_array_equal(by_maps.reshape(3, -1).T, pixel_major)
    np.testing.assert_allclose(pixel_major.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(SegError, match="features per pixel"):
        model.predict_proba(np.zeros((4, n + 1), np.float32))
