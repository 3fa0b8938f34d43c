"""One request, one entry: `seg assist`, `seg rank-tiles`, `seg export-training`, `seg rasterize`,
`seg polygonize` and `seg encode` give exactly what seg_qgis_plugin.api's functions of the same
names give on the same input (core/jobs)."""
import json
import os

import numpy as np
import pytest
import rasterio

import seg_qgis_plugin.api as seg
from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.errors import SettingError
from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels
from seg_qgis_plugin.demo.scene import CRS, pixel_square, write_scene

SIZE = 256


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 256 x 256 scene and a label layer: a square on every object and on four background spots."""
    folder = tmp_path_factory.mktemp("parity")
    raster = str(folder / "scene.tif")
    truth = write_scene(raster, SIZE, SIZE, seed=3)
    occupied = np.any([o.mask for o in truth], axis=0)
    labels = [Label(pixel_square(int(o.point[0]) - 6, int(o.point[1]) - 6), CRS, attributes(o.class_name, status="accepted"))
              for o in truth]
    for col, row in [(5, 5), (238, 5), (5, 238), (238, 238), (120, 5), (5, 120)]:
        if not occupied[row:row + 12, col:col + 12].any():
            labels.append(Label(pixel_square(col, row), CRS, attributes("background", status="accepted")))
    path = write_labels(labels, str(folder / "labels.gpkg"))
    return dict(folder=folder, raster=raster, labels=path, classes=sorted({o.class_name for o in truth}))


def cli(*args) -> None:
    code = main([str(a) for a in args])
    assert code == 0


def features(labels):
    """What must agree between two runs: geometry, class and the provenance that is not a time."""
    rows = []
    for lab in labels:
        a = lab.attributes
        rows.append((tuple(round(v, 4) for v in lab.geometry.bounds), round(lab.geometry.area, 4), a.get("class"),
                     a.get("label"), a.get("status"), a.get("prompt_type"), a.get("tags") or "", round(float(np.nan_to_num(a.get("score") or 0)), 5),
                     a.get("rank"), a.get("window") or ""))
    return sorted(rows, key=repr)


def frame_features(frame):
    return features([Label(g, CRS, {k: (None if v is None or (isinstance(v, float) and np.isnan(v)) else v)
                                    for k, v in row.items() if k != "geometry"})
                     for g, (_, row) in zip(frame.geometry, frame.iterrows())])


def same_raster(a: str, b: str) -> None:
    with rasterio.open(a) as x, rasterio.open(b) as y:
        assert (x.transform, x.crs, x.shape, x.count, x.dtypes) == (y.transform, y.crs, y.shape, y.count, y.dtypes)
        assert np.array_equal(x.read(), y.read())
        assert x.tags().get("classes") == y.tags().get("classes")


@pytest.fixture(scope="module")
def assisted(scene):
    """`seg assist` and api.assist on the same labels, every output asked for."""
    pytest.importorskip("lightgbm", reason="the assistant needs lightgbm")
    folder = scene["folder"]
    cli("assist", scene["raster"], "--labels", scene["labels"], "--out", folder / "cli.gpkg", "--probability", folder / "cli_p.tif",
        "--uncertainty", folder / "cli_u.tif", "--save-model", folder / "cli_m.json", "--tag", "site=a", "--min-area", "4")
    frame = seg.assist(scene["raster"], labels=scene["labels"], out=str(folder / "api.gpkg"), probability=str(folder / "api_p.tif"),
                       uncertainty=str(folder / "api_u.tif"), save_model=str(folder / "api_m.json"), tags={"site": "a"},
                       min_area=4.0)
    return frame


def test_assist_is_the_same_job_from_the_cli_and_the_api(scene, assisted):
    folder = scene["folder"]
    assert len(assisted) > 0 and set(assisted["class"]) <= set(scene["classes"])
    assert features(read_labels(str(folder / "cli.gpkg"))) == features(read_labels(str(folder / "api.gpkg")))
    assert frame_features(assisted) == features(read_labels(str(folder / "cli.gpkg")))
    assert set(assisted.attrs["outputs"]) == {"labels", "probability", "uncertainty", "model"}
    for name in ("p", "u"):
        same_raster(folder / f"cli_{name}.tif", folder / f"api_{name}.tif")
    with open(folder / "cli_m.json") as a, open(folder / "api_m.json") as b:
        cli_model, api_model = json.load(a), json.load(b)
    assert cli_model["classes"] == api_model["classes"] and cli_model["lightgbm_sha256"] == api_model["lightgbm_sha256"]


def test_assist_applies_a_saved_model_and_checks_classes_from_both_doors(scene, assisted, tmp_path):
    folder = scene["folder"]
    cli("assist", scene["raster"], "--model", folder / "cli_m.json", "--out", tmp_path / "cli.gpkg", "--min-area", "4")
    frame = seg.assist(scene["raster"], model=str(folder / "cli_m.json"), min_area=4.0)  # no file: the frame only
    assert frame_features(frame) == features(read_labels(str(tmp_path / "cli.gpkg")))
    ontology = tmp_path / "classes.json"
    ontology.write_text(json.dumps({"classes": [{"name": "water", "code": 1}]}))
    missing = [c for c in scene["classes"] if c not in ("water", "background")]
    if missing:  # the scene's other classes are not in the ontology: both doors refuse before any work
        assert main(["assist", scene["raster"], "--model", str(folder / "cli_m.json"), "--out", str(tmp_path / "x.gpkg"),
                     "--classes", str(ontology)]) == 2
        with pytest.raises(Exception, match=missing[0]):
            seg.assist(scene["raster"], model=str(folder / "cli_m.json"), classes=str(ontology))
        assert not (tmp_path / "x.gpkg").exists()
    with pytest.raises(SettingError, match="not both"):
        seg.assist(scene["raster"], labels=scene["labels"], model=str(folder / "cli_m.json"))


def test_rank_tiles_is_the_same_job_from_the_cli_and_the_api(scene, assisted, tmp_path):
    folder = scene["folder"]
    cli("rank-tiles", scene["raster"], "--uncertainty", folder / "cli_u.tif", "--labels", scene["labels"], "--top", 5,
        "--tile", 64, "--out", tmp_path / "cli.gpkg")
    frame = seg.rank_tiles(scene["raster"], uncertainty=str(folder / "cli_u.tif"), labels=scene["labels"], top=5, tile=64,
                           out=str(tmp_path / "api.gpkg"))
    cli_tiles = read_labels(str(tmp_path / "cli.gpkg"))
    assert len(cli_tiles) == len(frame) == 5 and list(frame["rank"]) == [1, 2, 3, 4, 5]
    assert features(cli_tiles) == features(read_labels(str(tmp_path / "api.gpkg"))) == frame_features(frame)


def test_rasterize_and_polygonize_are_the_same_jobs_from_the_cli_and_the_api(scene, tmp_path):
    cli("rasterize", scene["labels"], "--like", scene["raster"], "--out", tmp_path / "cli.tif")
    path = seg.rasterize(scene["labels"], scene["raster"], str(tmp_path / "api.tif"))
    assert path == str(tmp_path / "api.tif")
    same_raster(tmp_path / "cli.tif", path)
    cli("polygonize", tmp_path / "cli.tif", "--out", tmp_path / "cli.gpkg", "--class-field", "label")
    frame = seg.polygonize(path, class_field="label")
    polygons = read_labels(str(tmp_path / "cli.gpkg"))
    assert len(polygons) == len(frame) > 0 and set(frame["label"]) == set(frame["class"])
    assert {lab.attributes["source"] for lab in polygons} == {"cli.tif"} and set(frame["source"]) == {"api.tif"}
    assert features(polygons) == frame_features(frame)
    as_frame = seg.read_labels(scene["labels"])  # a GeoDataFrame is as good an input as its file
    same_raster(seg.rasterize(as_frame, scene["raster"], str(tmp_path / "frame.tif")), path)


def test_export_training_is_the_same_job_from_the_cli_and_the_api(scene, tmp_path):
    args = dict(tile=128, overlap=0, min_labeled=0.0, split="0.5,0.5,0", split_by="random", seed=1, format="yolo")
    cli("export-training", scene["raster"], "--labels", scene["labels"], "--out", tmp_path / "cli", "--tile", 128,
        "--overlap", 0, "--split", "0.5,0.5,0", "--split-by", "random", "--seed", 1, "--format", "yolo")
    with pytest.warns(Warning):  # a random split leaks; every door says so
        folder = seg.export_training(scene["raster"], scene["labels"], str(tmp_path / "api"), **args)
    assert folder == str(tmp_path / "api")

    def files(root):
        return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root) for f in names)

    assert files(tmp_path / "cli") == files(folder) and "data.yaml" in files(folder)
    for name in files(folder):
        if name.endswith(".txt"):
            assert (tmp_path / "cli" / name).read_text() == (tmp_path / "api" / name).read_text()
    reports = [json.load(open(os.path.join(root, "report.json"))) for root in (tmp_path / "cli", folder)]
    assert reports[0]["splits"] == reports[1]["splits"] and reports[0]["chips"] == reports[1]["chips"] == 4


def test_encode_is_the_same_job_from_the_cli_and_the_api(scene, tmp_path, tiny_checkpoint):
    cli("encode", scene["raster"], "--checkpoint", tiny_checkpoint, "--cache", tmp_path / "cli", "--tile", 128, "--overlap", 0)
    folder = seg.encode(scene["raster"], checkpoint=tiny_checkpoint, cache=str(tmp_path / "api"), tile=128, overlap=0)
    assert folder == str(tmp_path / "api")
    entries = [sorted(n for n in os.listdir(root) if n.endswith(".safetensors")) for root in (tmp_path / "cli", tmp_path / "api")]
    assert entries[0] == entries[1] and len(entries[0]) == 4
    from safetensors.numpy import load_file

    first = entries[0][0]
    a, b = load_file(str(tmp_path / "cli" / first)), load_file(str(tmp_path / "api" / first))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(SettingError, match="SAM checkpoint"):
        seg.encode(scene["raster"])
