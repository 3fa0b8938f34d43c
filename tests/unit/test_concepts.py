"""Concept prompts: SAM 3 text and exemplar prompts give exactly the library's own instances,
georeferenced; "Like this" finds look-alikes of an example with the classic backend; text without
SAM 3 is refused in one sentence."""
import json
import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.features import rasterize

from seg_qgis_plugin.cli.main import main

TRANSFORM = Affine(0.5, 0, 500000.0, 0, -0.5, 4200000.0)


def write_raster(path, pixels):
    height, width = pixels.shape[:2]
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=TRANSFORM) as dst:
        dst.write(np.moveaxis(pixels, -1, 0))
    return str(path)


def squares_scene():
    """Green field with five red roofs (20 x 20 px) and one blue one."""
    rng = np.random.default_rng(1)
    pixels = np.empty((240, 320, 3), np.uint8)
    pixels[:] = (60, 140, 50)
    pixels += rng.integers(0, 12, pixels.shape, dtype=np.uint8)
    roofs = [(30, 30), (30, 150), (120, 60), (150, 230), (190, 130)]
    for r, c in roofs:
        pixels[r:r + 20, c:c + 20] = (200, 40, 40)
    pixels[100:120, 260:280] = (40, 40, 210)
    return pixels, roofs


def square_geometry(r, c, size=20):
    from shapely.geometry import box

    x0, y0 = TRANSFORM * (c, r + size)
    x1, y1 = TRANSFORM * (c + size, r)
    return box(x0, y0, x1, y1)


def write_examples(path, geometries, crs="EPSG:32633"):
    features = [{"type": "Feature", "properties": {}, "geometry": g.__geo_interface__} for g in geometries]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features,
                                "crs": {"type": "name", "properties": {"name": crs}}}))
    return str(path)


def test_like_this_with_the_classic_backend_finds_the_other_roofs_and_not_the_blue_one(tmp_path):
    import geopandas

    pixels, roofs = squares_scene()
    raster = write_raster(tmp_path / "roofs.tif", pixels)
    examples = write_examples(tmp_path / "example.geojson", [square_geometry(*roofs[0])])
    out = str(tmp_path / "found.gpkg")
    assert main(["prelabel", raster, "--exemplars", examples, "--class", "roof", "--out", out]) == 0
    found = geopandas.read_file(out)
    assert set(found["class"]) == {"roof"} and set(found["prompt_type"]) == {"exemplar"}
    for r, c in roofs:
        truth = square_geometry(r, c)
        best = max(g.intersection(truth).area / g.union(truth).area for g in found.geometry)
        assert best > 0.7, (r, c, best)
    blue = square_geometry(100, 260)
    assert not any(g.intersects(blue) for g in found.geometry)
    assert (found["score"] > 0).all() and (found["score"] <= 1).all()


def test_session_find_takes_example_geometries(tmp_path):
    from seg_qgis_plugin import api

    pixels, roofs = squares_scene()
    raster = write_raster(tmp_path / "roofs.tif", pixels)
    with api.open(raster) as session:
        found = session.find(exemplars=[square_geometry(*roofs[1])], label="roof")
    assert len(found) >= 5 and set(found["class"]) == {"roof"}


def test_text_without_sam3_is_refused_in_one_sentence(tmp_path, capsys):
    raster = write_raster(tmp_path / "r.tif", squares_scene()[0])
    out = tmp_path / "never.gpkg"
    assert main(["prelabel", raster, "--text", "pond", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Text prompts need SAM 3" in err and "Traceback" not in err
    assert not out.exists()


def test_a_phrase_takes_its_class_from_the_ontology_synonyms(tmp_path):
    from seg_qgis_plugin.core.batch.concepts import Concept, parse_concepts
    from seg_qgis_plugin.core.engine.ontology import load_ontology

    path = tmp_path / "o.json"
    path.write_text(json.dumps({"classes": [{"name": "water", "code": 1, "synonyms": ["pond", "lake"]},
                                            {"name": "building", "code": 2}]}))
    ontology = load_ontology(str(path))
    assert parse_concepts(["pond", "Lake", "house=building", "building"], ontology) == [
        Concept("pond", "water"), Concept("Lake", "water"), Concept("house", "building"), Concept("building", "building")]
    assert load_ontology(str(path)).classes[0].to_dict()["synonyms"] == ["pond", "lake"]


# -- SAM 3 -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sam3_folder(tmp_path_factory):
    pytest.importorskip("transformers", reason="transformers is not installed (make venv installs requirements-sam3.txt)")
    from seg_qgis_plugin.core.models.random_weights import write_random_sam3

    return write_random_sam3(str(tmp_path_factory.mktemp("sam3") / "tiny"), tiny=True)


def library_instances(folder, image, phrase, min_score, boxes=None):
    """What transformers itself answers on `image`: its processor, model and post-processing."""
    import torch
    from transformers import Sam3Model, Sam3Processor

    processor = Sam3Processor.from_pretrained(folder)
    model = Sam3Model.from_pretrained(folder).eval()
    inputs = processor(images=image, text=phrase, input_boxes=boxes, return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    result = processor.post_process_instance_segmentation(outputs, threshold=min_score, mask_threshold=0.5,
                                                          target_sizes=inputs["original_sizes"].tolist())[0]
    return [(float(s), m.numpy().astype(bool)) for s, m in zip(result["scores"], result["masks"])]


def test_sam3_text_gives_the_library_instances_georeferenced_to_the_pixel(sam3_folder, tmp_path):
    import geopandas

    rng = np.random.default_rng(3)
    pixels = (rng.random((300, 420, 3)) * 80).astype(np.uint8)
    pixels[60:160, 100:220] = (40, 90, 200)
    raster = write_raster(tmp_path / "ponds.tif", pixels)
    out = str(tmp_path / "ponds.gpkg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["prelabel", raster, "--text", "pond=water", "--checkpoint", sam3_folder, "--stretch", "0,255",
                     "--min-score", "0.2", "--out", out]) == 0
    found = geopandas.read_file(out)
    expected = library_instances(sam3_folder, pixels, "pond", 0.2)
    assert len(expected) > 0 and len(found) == len(expected)
    assert set(found["class"]) == {"water"} and set(found["prompt_type"]) == {"text"} and set(found["model"]) == {"sam3"}
    for row in found.itertuples():
        score, mask = min(expected, key=lambda e: abs(e[0] - row.score))
        assert abs(score - row.score) < 1e-6
        burnt = rasterize([row.geometry], out_shape=mask.shape, transform=TRANSFORM, dtype="uint8").astype(bool)
        assert np.array_equal(burnt, mask)


def test_sam3_exemplar_prompts_search_every_tile(sam3_folder, tmp_path):
    from seg_qgis_plugin import api

    pixels, roofs = squares_scene()
    raster = write_raster(tmp_path / "roofs.tif", np.tile(pixels, (1, 3, 1)))  # 960 wide: three tiles of 400
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with api.open(raster, checkpoint=sam3_folder) as session:
            session._segmenter.grid = __import__("seg_qgis_plugin.core.geo.tiling", fromlist=["Tiling"]).Tiling(
                400, 80).grid(960, 240)
            found = session.find(exemplars=[square_geometry(*roofs[0])], min_score=0.2, label="roof")
    assert set(found["prompt_type"]) == {"exemplar"}
    xs = [g.centroid.x for g in found.geometry]
    assert min(xs) < TRANSFORM.c + 200 * 0.5 and max(xs) > TRANSFORM.c + 600 * 0.5  # found beyond the example's tile


def test_random_sam3_folder_warns_and_a_wrong_folder_is_refused(sam3_folder, tmp_path):
    from seg_qgis_plugin.core.errors import CheckpointError, SegError
    from seg_qgis_plugin.core.engine.labeling import open_backend
    from seg_qgis_plugin.core.models.checkpoint_files import RandomWeightsWarning

    with pytest.warns(RandomWeightsWarning):
        backend = open_backend(sam3_folder)
    assert backend.model_id == "sam3" and len(backend.checkpoint_sha256) == 64
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "sam2"}))
    with pytest.raises(SegError, match="SAM 3"):
        open_backend(str(tmp_path), backend="sam3")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "sam3"}))
    with pytest.raises(CheckpointError, match="not a readable SAM 3 model"):
        open_backend(str(broken))
