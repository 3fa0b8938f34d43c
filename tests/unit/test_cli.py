"""The `seg` command as a user runs it: real files in, real files out, one sentence on mistakes."""
import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.demo.scene import write_scene
from seg_qgis_plugin.core.outputs.vectors import read_labels


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene")
    path = str(folder / "ortho.tif")
    truth = write_scene(path, 768, 768)
    return path, truth


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def map_xy(path, col, row):
    with rasterio.open(path) as ds:
        return ds.transform * (col, row)


def test_info(capsys, scene):
    code, out, _ = run(capsys, "info", scene[0])
    assert code == 0 and "EPSG:32633" in out and "768 x 768" in out and "suggested bands: 1,2,3" in out


def test_segment_with_the_classic_backend_writes_every_output(capsys, scene, tmp_path):
    path, truth = scene
    pond = next(t for t in truth if t.name == "pond")
    x, y = map_xy(path, *pond.point)
    out = tmp_path / "l.gpkg"
    code, stdout, err = run(capsys, "segment", path, "--point", f"{x},{y}", "--class", "water", "--tag", "season=summer",
                            "--backend", "classic", "--tile", "512", "--overlap", "128", "--out", out,
                            "--probability", tmp_path / "p.tif", "--class-raster", tmp_path / "c.tif")
    assert code == 0, err
    (lab,) = read_labels(str(out))
    assert lab.attributes["class"] == "water" and lab.attributes["season"] == "summer"
    assert lab.attributes["model"].startswith("classic")
    assert (tmp_path / "p.tif").exists() and (tmp_path / "c.tif").exists()
    code, _, err = run(capsys, "segment", path, "--point", f"{x},{y}", "--class", "water", "--backend", "classic", "--out", out, "--append")
    assert code == 0 and len(read_labels(str(out))) == 2


def test_encode_then_segment_with_a_sam_checkpoint(capsys, scene, tmp_path, tiny_checkpoint):
    path, truth = scene
    cache = tmp_path / "cache"
    code, out, err = run(capsys, "encode", path, "--checkpoint", tiny_checkpoint, "--cache", cache, "--tile", "512", "--overlap", "256")
    assert code == 0, err
    assert "4 tiles encoded, 0 already cached" in out
    code, out, _ = run(capsys, "encode", path, "--checkpoint", tiny_checkpoint, "--cache", cache, "--tile", "512", "--overlap", "256")
    assert "0 tiles encoded, 4 already cached" in out
    building = next(t for t in truth if t.class_name == "building")
    x0, y1 = map_xy(path, *building.box[:2])
    x1, y0 = map_xy(path, *building.box[2:])
    code, out, err = run(capsys, "segment", path, "--box", f"{x0},{y0},{x1},{y1}", "--checkpoint", tiny_checkpoint, "--cache", cache,
                         "--tile", "512", "--overlap", "256", "--class", "building", "--out", tmp_path / "b.geojson")
    assert code == 0, err
    (lab,) = read_labels(str(tmp_path / "b.geojson"))
    assert lab.attributes["model"] == "sam-vit_tiny" and len(lab.attributes["checkpoint_sha256"]) == 64
    assert lab.attributes["prompt_type"] == "box"


def test_polygonize_and_rasterize_round_trip(capsys, scene, tmp_path):
    path = scene[0]
    classes = np.zeros((768, 768), np.uint8)
    classes[100:200, 50:300] = 1
    classes[400:420, 400:700] = 2
    with rasterio.open(path) as ds:
        profile = dict(ds.profile, count=1, dtype="uint8", nodata=None)
    mask = tmp_path / "mask.tif"
    with rasterio.open(mask, "w", **profile) as dst:
        dst.write(classes, 1)
    code, out, err = run(capsys, "polygonize", mask, "--out", tmp_path / "poly.gpkg")
    assert code == 0 and "2 features" in out, err
    code, out, err = run(capsys, "rasterize", tmp_path / "poly.gpkg", "--like", path, "--out", tmp_path / "back.tif")
    assert code == 0, err
    with rasterio.open(tmp_path / "back.tif") as back:
        burned = back.read(1)
    np.testing.assert_array_equal(burned > 0, classes > 0)


@pytest.mark.parametrize("problem", ["corrupt", "nocrs", "outside", "existing", "badfolder", "readonly", "badcheckpoint", "nopoint"])
def test_user_mistakes_exit_2_with_one_sentence_and_write_nothing(capsys, scene, tmp_path, problem):
    path = scene[0]
    x, y = map_xy(path, 100, 100)
    out = tmp_path / "out.gpkg"
    args = ["segment", path, "--point", f"{x},{y}", "--class", "c", "--backend", "classic", "--out", out]
    if problem == "corrupt":
        bad = tmp_path / "bad.tif"
        bad.write_bytes(open(path, "rb").read()[:300])
        args[1] = bad
    elif problem == "nocrs":
        nocrs = tmp_path / "nocrs.tif"
        with rasterio.open(path) as ds:
            profile = dict(ds.profile, crs=None)
            with rasterio.open(nocrs, "w", **profile) as dst:
                dst.write(ds.read())
        args[1] = nocrs
    elif problem == "outside":
        args[3] = "0,0"
    elif problem == "existing":
        out.write_bytes(b"precious")
    elif problem == "badfolder":
        args[-1] = tmp_path / "missing" / "out.gpkg"
    elif problem == "readonly":
        args[-1] = "/proc/seg-out.gpkg"
    elif problem == "badcheckpoint":
        ckpt = tmp_path / "model.pth"
        ckpt.write_bytes(b"not a model")
        args[args.index("--backend"):args.index("--backend") + 2] = ["--checkpoint", ckpt]
        pytest.importorskip("torch", reason="torch is not installed")
    elif problem == "nopoint":
        args[2:4] = []
    code, stdout, err = run(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seg: error: ") and lines[0].endswith("."), err
    assert "Traceback" not in err
    if problem == "existing":
        assert out.read_bytes() == b"precious"
    else:
        assert not out.exists()
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".seg")]


def test_console_script_and_demo(tmp_path):
    seg = os.path.join(os.path.dirname(sys.executable), "seg")
    result = subprocess.run([seg, "demo", "--out", str(tmp_path / "demo")], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, SEG_CHECKPOINT=""))
    assert result.returncode == 0, result.stderr
    for name in ("labels.gpkg", "classes.tif", "preview.png", "big_pond_probability.tif"):
        assert (tmp_path / "demo" / name).exists()
    assert "backend: classic" in result.stdout and "mean IoU" in result.stdout
    assert len(read_labels(str(tmp_path / "demo" / "labels.gpkg"))) >= 5


def test_prelabel_from_a_prompt_layer_then_export_training_chips(capsys, scene, tmp_path):
    import json

    import pyogrio.raw
    from shapely import to_wkb
    from shapely.geometry import box

    path, truth = scene
    boxes = []
    for obj in truth:
        if obj.class_name == "building":
            x0, y1 = map_xy(path, *obj.box[:2])
            x1, y0 = map_xy(path, *obj.box[2:])
            boxes.append(box(x0, y0, x1, y1))
    prompt_file = tmp_path / "prompts.gpkg"  # a detector's boxes with its own fields
    pyogrio.raw.write(str(prompt_file), np.array([to_wkb(b) for b in boxes], dtype=object),
                      [np.array(["building"] * len(boxes), dtype=object), np.array(["det-v2"] * len(boxes), dtype=object)],
                      ["cls", "source_model"], driver="GPKG", geometry_type="Polygon", crs="EPSG:32633")
    code, out, err = run(capsys, "prelabel", path, "--prompts", prompt_file, "--class-field", "cls", "--backend", "classic",
                         "--tile", "512", "--overlap", "128", "--tag", "season=summer", "--out", tmp_path / "pre.gpkg")
    assert code == 0, err
    assert not (tmp_path / "pre.gpkg.seg-resume").exists()  # kept during the run for --resume, gone once the output is whole
    labels = read_labels(str(tmp_path / "pre.gpkg"))
    assert len(labels) == len(boxes)
    assert {lab.attributes["class"] for lab in labels} == {"building"}
    assert all(lab.attributes["season"] == "summer" and lab.attributes["status"] == "prelabel" for lab in labels)
    assert all(json.loads(lab.attributes["tags"])["source_model"] == "det-v2" for lab in labels)
    for lab, obj in zip(sorted(labels, key=lambda l: l.geometry.bounds), sorted((t for t in truth if t.class_name == "building"), key=lambda t: t.box)):
        x0, y1 = map_xy(path, *obj.box[:2])
        x1, y0 = map_xy(path, *obj.box[2:])
        assert lab.geometry.intersection(box(x0, y0, x1, y1)).area / lab.geometry.union(box(x0, y0, x1, y1)).area > 0.9
    code, out, err = run(capsys, "export-training", path, "--labels", tmp_path / "pre.gpkg", "--out", tmp_path / "chips",
                         "--tile", "256", "--min-labeled", "0.01")
    assert code == 0, err
    coco = json.loads((tmp_path / "chips" / "annotations.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["building"]
    assert len(coco["annotations"]) >= len(boxes) and len(coco["images"]) >= 1
    code, _, err = run(capsys, "prelabel", path, "--prompts", prompt_file, "--backend", "classic", "--out", tmp_path / "pre.gpkg")
    assert code == 2 and "already exists" in err
