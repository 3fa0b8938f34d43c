"""`seg assist --refine sam` end to end through the CLI with a random-weight SAM checkpoint: the
mechanics (one feature per blob, provenance of the refined ones, the count printed), not the quality
of random-weight outlines."""
import re

import numpy as np
import pytest

pytest.importorskip("lightgbm", reason="the assistant needs lightgbm")

from seg_qgis_plugin.cli.main import main  # noqa: E402
from seg_qgis_plugin.core.engine.labels import Label, attributes  # noqa: E402
from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels  # noqa: E402
from seg_qgis_plugin.demo.scene import CRS, pixel_square, write_scene  # noqa: E402

SIZE = 256



@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("assist_refine")
    raster = str(folder / "scene.tif")
    truth = write_scene(raster, SIZE, SIZE, seed=3)
    objects = np.any([o.mask for o in truth], axis=0)
    labels = [Label(pixel_square(int(o.point[0]) - 6, int(o.point[1]) - 6), CRS, attributes(o.class_name)) for o in truth]
    for col, row in [(5, 5), (240, 5), (5, 240), (120, 20), (20, 120)]:
        if not objects[row:row + 12, col:col + 12].any():
            labels.append(Label(pixel_square(col, row, 10), CRS, attributes("background")))
    path = str(folder / "labels.gpkg")
    write_labels(labels, path)
    return dict(folder=folder, raster=raster, labels=path)


def run_assist(capsys, scene, out, *extra):
    code = main(["assist", scene["raster"], "--labels", scene["labels"], "--out", out, "--min-area", "4", "--threads", "1", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_refine_sam_keeps_one_feature_per_blob_with_sam_provenance(capsys, scene, tiny_checkpoint):
    from seg_qgis_plugin.core.models.download import sha256_file

    plain_out = str(scene["folder"] / "plain.gpkg")
    printed = run_assist(capsys, scene, plain_out)
    assert "refined by SAM" not in printed
    plain = read_labels(plain_out)
    assert plain and all(lab.attributes["prompt_type"] == "assist" for lab in plain)

    refined_out = str(scene["folder"] / "refined.gpkg")
    printed = run_assist(capsys, scene, refined_out, "--refine", "sam", "--checkpoint", tiny_checkpoint)
    found = re.search(r"^(\d+) polygons \(.*\), (\d+) refined by SAM$", printed, re.M)
    assert found, printed
    count, refined_count = int(found.group(1)), int(found.group(2))
    assert refined_count >= 1  # the fixed-seed random weights redraw at least one blob, so both branches run
    labels = read_labels(refined_out)
    assert count == len(labels) == len(plain)  # one feature per blob, refined or kept
    plain_by_score = sorted((lab.attributes["class"], round(lab.attributes["score"], 5)) for lab in plain)
    assert sorted((lab.attributes["class"], round(lab.attributes["score"], 5)) for lab in labels) == plain_by_score

    kinds = [lab.attributes["prompt_type"] for lab in labels]
    assert set(kinds) <= {"assist+box", "assist"}
    assert kinds.count("assist+box") == refined_count
    sha = sha256_file(tiny_checkpoint)
    for lab in labels:
        a = lab.attributes
        assert a["status"] == "prelabel" and a["class"] in {"water", "building"} and 1 / 3 < a["score"] <= 1.0  # the winning one of three classes
        assert lab.geometry.is_valid and not lab.geometry.is_empty
        if a["prompt_type"] == "assist+box":
            assert a["model"] == "sam-vit_tiny"
            assert re.fullmatch(r"[0-9a-f]{64}", a["checkpoint_sha256"]) and a["checkpoint_sha256"] == sha
            assert a["stability"] is not None and a["window"].endswith("@1")
        else:
            assert a["model"] == "assist-rf" and a["checkpoint_sha256"] == ""


def test_refine_sam_carries_tags_and_needs_a_checkpoint(capsys, scene, tiny_checkpoint):
    out = str(scene["folder"] / "tagged.gpkg")
    run_assist(capsys, scene, out, "--refine", "sam", "--checkpoint", tiny_checkpoint, "--tag", "sensor=demo", "--tag", "site=a")
    for lab in read_labels(out):
        assert lab.attributes["sensor"] == "demo"
        assert '"site": "a"' in lab.attributes["tags"] and '"sensor": "demo"' in lab.attributes["tags"]
    missing = str(scene["folder"] / "missing.gpkg")
    for extra in ([], ["--checkpoint", str(scene["folder"] / "nothing.pth")]):
        code = main(["assist", scene["raster"], "--labels", scene["labels"], "--out", missing, "--refine", "sam", *extra])
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1]  # the lines before are the progress bar being cleared
        assert code == 2 and "Traceback" not in err and last.startswith("seg: error:") and "checkpoint" in last
        assert "15%" not in err  # refused before learning
    assert not (scene["folder"] / "missing.gpkg").exists()
