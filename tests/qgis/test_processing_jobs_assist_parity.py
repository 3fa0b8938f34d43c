"""One request, one entry: seg:assist, seg:ranktiles, seg:exporttrainingdata, seg:rasterizelabels,
seg:polygonizemasks and seg:encoderaster give exactly what `seg assist`, `seg rank-tiles`, `seg
export-training`, `seg rasterize`, `seg polygonize` and `seg encode` give on the same input."""
import json
import os

import numpy as np
import pytest
import rasterio

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels
from seg_qgis_plugin.demo.scene import CRS, pixel_square, write_scene

SIZE = 256


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 256 x 256 scene and a label layer: a square on every object and on background spots."""
    folder = tmp_path_factory.mktemp("processing-parity")
    raster = str(folder / "scene.tif")
    truth = write_scene(raster, SIZE, SIZE, seed=3)
    occupied = np.any([o.mask for o in truth], axis=0)
    labels = [Label(pixel_square(int(o.point[0]) - 6, int(o.point[1]) - 6), CRS, attributes(o.class_name, status="accepted"))
              for o in truth]
    for col, row in [(5, 5), (238, 5), (5, 238), (238, 238), (120, 5), (5, 120)]:
        if not occupied[row:row + 12, col:col + 12].any():
            labels.append(Label(pixel_square(col, row), CRS, attributes("background", status="accepted")))
    return dict(folder=folder, raster=raster, labels=write_labels(labels, str(folder / "labels.gpkg")))


def cli(*args) -> None:
    assert main([str(a) for a in args]) == 0


def features(path):
    """What must agree between two doors: geometry, class and the provenance that is not a time."""
    rows = []
    for lab in read_labels(str(path)):
        a = lab.attributes
        rows.append((tuple(round(v, 4) for v in lab.geometry.bounds), round(lab.geometry.area, 4), a.get("class"),
                     a.get("label"), a.get("status"), a.get("prompt_type"), a.get("tags") or "", a.get("source") or "",
                     round(float(np.nan_to_num(a.get("score") or 0)), 5), a.get("rank"), a.get("window") or ""))
    return sorted(rows, key=repr)


def same_raster(a, b) -> None:
    with rasterio.open(a) as x, rasterio.open(b) as y:
        assert (x.transform, x.crs, x.shape, x.count, x.dtypes) == (y.transform, y.crs, y.shape, y.count, y.dtypes)
        assert np.array_equal(x.read(), y.read())


def test_assist_and_rank_tiles_are_the_same_jobs_from_processing_and_the_cli(run_algorithm, scene, tmp_path):
    pytest.importorskip("lightgbm", reason="the assistant needs lightgbm")
    raster, labels = scene["raster"], scene["labels"]
    cli("assist", raster, "--labels", labels, "--out", tmp_path / "cli.gpkg", "--probability", tmp_path / "cli_p.tif",
        "--uncertainty", tmp_path / "cli_u.tif", "--save-model", tmp_path / "cli_m.json", "--tag", "site=a", "--min-area", "4")
    result = run_algorithm("seg:assist", {"INPUT": raster, "LABELS": labels, "CLASS_FIELD": "class", "MIN_AREA": 4.0,
                                          "TAGS": "site=a", "OUTPUT": str(tmp_path / "alg.gpkg"),
                                          "PROBABILITY": str(tmp_path / "alg_p.tif"), "UNCERTAINTY": str(tmp_path / "alg_u.tif"),
                                          "SAVE_MODEL": str(tmp_path / "alg_m.json")})
    assert result["COUNT"] > 0 and features(tmp_path / "alg.gpkg") == features(tmp_path / "cli.gpkg")
    for name in ("p", "u"):
        same_raster(tmp_path / f"cli_{name}.tif", result["PROBABILITY" if name == "p" else "UNCERTAINTY"])
    with open(tmp_path / "cli_m.json") as a, open(result["SAVE_MODEL"]) as b:
        assert json.load(a)["lightgbm_sha256"] == json.load(b)["lightgbm_sha256"]

    cli("rank-tiles", raster, "--uncertainty", tmp_path / "cli_u.tif", "--labels", labels, "--top", 5, "--tile", 64,
        "--out", tmp_path / "cli_next.gpkg")
    ranked = run_algorithm("seg:ranktiles", {"INPUT": raster, "UNCERTAINTY": str(tmp_path / "cli_u.tif"), "LABELS": labels,
                                             "TOP": 5, "TILE": 64, "OUTPUT": str(tmp_path / "alg_next.gpkg")})
    assert len(features(ranked["OUTPUT"])) == 5 and features(ranked["OUTPUT"]) == features(tmp_path / "cli_next.gpkg")


def test_rasterize_and_polygonize_are_the_same_jobs_from_processing_and_the_cli(run_algorithm, scene, tmp_path):
    raster, labels = scene["raster"], scene["labels"]
    cli("rasterize", labels, "--like", raster, "--out", tmp_path / "cli.tif")
    result = run_algorithm("seg:rasterizelabels", {"INPUT": labels, "FIELD": "class", "LIKE": raster, "OUTPUT": str(tmp_path / "alg.tif")})
    same_raster(tmp_path / "cli.tif", result["OUTPUT"])
    with rasterio.open(tmp_path / "cli.tif") as ds:
        assert json.loads(result["CLASSES"]) == json.loads(ds.tags()["classes"])
    cli("polygonize", tmp_path / "cli.tif", "--out", tmp_path / "cli.gpkg", "--class-field", "label")
    polygons = run_algorithm("seg:polygonizemasks", {"INPUT": str(tmp_path / "cli.tif"), "CLASS_FIELD": "label",
                                                     "OUTPUT": str(tmp_path / "alg.gpkg")})
    assert len(features(polygons["OUTPUT"])) > 0 and features(polygons["OUTPUT"]) == features(tmp_path / "cli.gpkg")


def test_export_training_is_the_same_job_from_processing_and_the_cli(run_algorithm, scene, tmp_path):
    raster, labels = scene["raster"], scene["labels"]
    cli("export-training", raster, "--labels", labels, "--out", tmp_path / "cli", "--tile", 128, "--overlap", 0,
        "--split", "0.5,0.5,0", "--split-by", "random", "--seed", 1, "--format", "yolo", "--image-format", "png")
    result = run_algorithm("seg:exporttrainingdata", {"INPUT": raster, "LABELS": labels, "CLASS_FIELD": "class", "TILE": 128,
                                                      "OVERLAP": 0, "MIN_FRACTION": 0.0, "FORMAT": 1, "DATASET_FORMAT": 2,
                                                      "SPLIT": "0.5,0.5,0", "SPLIT_BY": 1, "SEED": 1,
                                                      "OUTPUT": str(tmp_path / "alg")})

    def files(root):
        return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root) for f in names)

    assert files(tmp_path / "cli") == files(result["OUTPUT"]) and "data.yaml" in files(result["OUTPUT"])
    for name in files(result["OUTPUT"]):
        if name.endswith(".txt"):
            assert (tmp_path / "cli" / name).read_text() == (tmp_path / "alg" / name).read_text()
    reports = [json.load(open(os.path.join(root, "report.json"))) for root in (tmp_path / "cli", result["OUTPUT"])]
    assert reports[0]["splits"] == reports[1]["splits"] and result["CHIPS"] == reports[0]["chips"] == 4


def test_encode_is_the_same_job_from_processing_and_the_cli(run_algorithm, scene, tmp_path, tiny_checkpoint):
    raster = scene["raster"]
    cli("encode", raster, "--checkpoint", tiny_checkpoint, "--cache", tmp_path / "cli", "--tile", 128, "--overlap", 0)
    result = run_algorithm("seg:encoderaster", {"INPUT": raster, "CHECKPOINT": tiny_checkpoint, "TILE": 128, "OVERLAP": 0,
                                                "CACHE": str(tmp_path / "alg"), "OUTPUT": str(tmp_path / "coverage.gpkg")})
    assert (result["ENCODED"], result["CACHED"], result["NODATA"]) == (4, 0, 0)
    entries = [sorted(n for n in os.listdir(root) if n.endswith(".safetensors")) for root in (tmp_path / "cli", result["CACHE"])]
    assert entries[0] == entries[1] and len(entries[0]) == 4
    from safetensors.numpy import load_file

    a, b = (load_file(os.path.join(root, entries[0][0])) for root in (tmp_path / "cli", result["CACHE"]))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert len(read_labels(result["OUTPUT"])) == 4  # the coverage: one square per cached tile
