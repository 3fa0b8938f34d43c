"""A saved assistant model that was edited or cut short is refused in one sentence before LightGBM
reads it (LightGBM can crash the process on a damaged forest): by load_model, `seg assist --model`
and `seg rank-tiles --model`. Every truncation and many single edits are tried in a child process,
so a crash shows as a failed test instead of a dead test run."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("lightgbm", reason="the assistant needs lightgbm")

from seg_qgis_plugin.cli.main import main  # noqa: E402
from seg_qgis_plugin.core.assist.classifier import load_model, train_model  # noqa: E402
from seg_qgis_plugin.core.assist.features import FeatureRecipe  # noqa: E402
from seg_qgis_plugin.core.assist.samples import TrainingSet  # noqa: E402
from seg_qgis_plugin.core.errors import SegError  # noqa: E402
from seg_qgis_plugin.demo.scene import write_scene  # noqa: E402


def _model(tmp_path, n_classes=3, trees=3):
    recipe = FeatureRecipe(bands=(1, 2, 3), low=(0.0,) * 3, high=(255.0,) * 3, sigmas=(1.0,), kinds=("gauss",), indices=False)
    n = len(recipe.names())
    rng = np.random.default_rng(0)
    X = rng.random((400, n)).astype(np.float32)
    y = np.minimum((X[:, 0] * n_classes).astype(np.int64), n_classes - 1)
    classes = ["background", "water", "building"][:n_classes]
    training = TrainingSet(X, y, classes, {c: int((y == k).sum()) for k, c in enumerate(classes)})
    path = str(tmp_path / f"model{n_classes}.json")
    train_model(training, recipe, "background", trees=trees).save(path)
    return path


def _edit(path, out, change):
    d = json.load(open(path))
    change(d)
    with open(out, "w") as f:
        json.dump(d, f)
    return str(out)


@pytest.fixture
def raster(tmp_path):
    path = str(tmp_path / "scene.tif")
    write_scene(path, 128, 128, seed=1)
    return path


def _same_length_edit(text, after):
    i = text.index(after) + len(after)
    return text[:i] + ("2" if text[i] == "1" else "1") + text[i + 1:]


EDITS = {
    "a class added": lambda d: d["classes"].append("tree"),
    "a class removed": lambda d: d["classes"].pop(),
    "classes not a list": lambda d: d.update(classes="water"),
    "a class twice": lambda d: d.update(classes=["water", "water", "building"]),
    "background not a class": lambda d: d.update(background="road"),
    "num_class edited": lambda d: d.update(lightgbm=d["lightgbm"].replace("num_class=3", "num_class=4", 1)),
    "a threshold edited": lambda d: d.update(lightgbm=_same_length_edit(d["lightgbm"], "threshold=")),
    "a band more": lambda d: d["recipe"].update(bands=[1, 2, 3, 4], low=[0] * 4, high=[255] * 4),
    "a NaN sigma": lambda d: d["recipe"].update(sigmas=["nan"]),
    "a recipe that is a list": lambda d: d.update(recipe=[1, 2]),
    "the forest a number": lambda d: d.update(lightgbm=5),
}


@pytest.mark.parametrize("edit", list(EDITS))
@pytest.mark.parametrize("keep_checksum", [True, False])
def test_an_edited_model_is_one_sentence(tmp_path, raster, capsys, edit, keep_checksum):
    def change(d):
        EDITS[edit](d)
        if not keep_checksum:
            d.pop("lightgbm_sha256")

    path = _edit(_model(tmp_path), tmp_path / "edited.json", change)
    if edit == "a threshold edited" and not keep_checksum:
        load_model(path)  # a consistent forest from before checksums: accepted
        return
    with pytest.raises(SegError, match="damaged Seg assistant model") as caught:
        load_model(path)
    assert len(str(caught.value).splitlines()) == 1
    for argv in (["assist", raster, "--model", path, "--out", str(tmp_path / "a.gpkg")],
                 ["rank-tiles", raster, "--model", path, "--out", str(tmp_path / "r.gpkg")]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err and "damaged Seg assistant model" in err, err
    assert sorted(os.listdir(tmp_path)) == ["edited.json", "model3.json", "scene.tif"]


def test_a_model_saved_by_seg_records_its_checksum_and_loads(tmp_path):
    for n in (2, 3):
        path = _model(tmp_path, n)
        assert len(json.load(open(path))["lightgbm_sha256"]) == 64
        assert load_model(path).classes[:n]


SWEEP = textwrap.dedent("""
    import json, random, sys
    from seg_qgis_plugin.core.assist.classifier import load_model
    from seg_qgis_plugin.core.errors import SegError
    source, scratch = sys.argv[1], sys.argv[2]
    d = json.load(open(source))
    d.pop("lightgbm_sha256")
    text = d["lightgbm"]
    start, end = text.index("Tree=0"), text.index("end of trees") + 20
    cuts = sorted(set(range(0, start, 7)) | set(range(start, end)))
    rng = random.Random(0)
    edits = []
    for _ in range(2000):  # a character replaced, removed or inserted
        i, op, ch = rng.randrange(0, end), rng.randrange(3), rng.choice("0123456789-.=e+ \\nx")
        edits.append(text[:i] + [ch, "", ch + text[i]][op] + text[i + 1:])
    refused = accepted = 0
    for candidate in [text[:c] for c in cuts] + edits:
        json.dump(dict(d, lightgbm=candidate), open(scratch, "w"))
        try:
            load_model(scratch)
            accepted += 1
        except SegError:
            refused += 1
    print(refused, accepted, len(cuts))
""")


@pytest.mark.parametrize("n_classes", [2, 3])
def test_no_truncation_or_single_edit_crashes_the_process(tmp_path, n_classes):
    path = _model(tmp_path, n_classes, trees=2)
    done = subprocess.run([sys.executable, "-c", SWEEP, path, str(tmp_path / "scratch.json")], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    refused, accepted, cuts = map(int, done.stdout.splitlines()[-1].split())  # LightGBM warns on stdout
    assert refused >= cuts  # every truncation is refused
