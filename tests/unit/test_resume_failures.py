"""The resume manifest under failure: a damaged or wrongly shaped manifest is one sentence; a run
that fails (a full disk, an error) without --resume leaves no resume folder, while an interrupted
run, or a failing run that resumed, keeps its finished blocks for --resume."""
from __future__ import annotations

import errno
import importlib.util
import json
import os

import numpy as np
import pytest

from seg_qgis_plugin.core.batch.raster_job import RasterJob
from seg_qgis_plugin.core.errors import Canceled, OutputError, SegError
from seg_qgis_plugin.core.scale.manifest import ResumeManifest, resume_folder
from seg_qgis_plugin.core.scale.runs import prelabel_blocks
from seg_qgis_plugin.core.scale.block_run import BlockRun
from seg_qgis_plugin.core.batch.prelabel import PrelabelOptions

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("scale_helpers", os.path.join(HERE, "scale_helpers.py"))
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

OPTIONS = PrelabelOptions(points_per_side=8, min_score=0.5, min_stability=0.5)
FINGERPRINT = {"raster": "abc", "options": {"min_score": 0.5}}

WRONG_SHAPES = [[], 3, "text", None, {}, {"fingerprint": 3}, {"fingerprint": [], "blocks": {}},
                {"fingerprint": FINGERPRINT, "blocks": []}, {"fingerprint": FINGERPRINT, "blocks": 7},
                {"fingerprint": FINGERPRINT, "blocks": {"0": 5}}, {"fingerprint": FINGERPRINT, "blocks": {"x": "block-00000.npz"}},
                {"fingerprint": FINGERPRINT, "blocks": {"0": "../../etc/passwd"}},
                {"fingerprint": FINGERPRINT, "blocks": {"0": "/tmp/block-00000.npz"}}]


@pytest.mark.parametrize("stored", WRONG_SHAPES, ids=lambda v: json.dumps(v)[:40])
def test_a_manifest_of_the_wrong_shape_is_one_sentence(tmp_path, stored):
    out = str(tmp_path / "out.gpkg")
    os.makedirs(resume_folder(out))
    with open(os.path.join(resume_folder(out), "manifest.json"), "w") as f:
        json.dump(stored, f)
    with pytest.raises(SegError, match="is unreadable or damaged; run without --resume to start over") as caught:
        ResumeManifest(out, FINGERPRINT, resume=True)
    assert len(str(caught.value).splitlines()) == 1


def _prompts(tmp_path):
    from shapely.geometry import box

    from seg_qgis_plugin.core.engine.labels import Label, attributes
    from seg_qgis_plugin.core.outputs.vectors import write_labels

    path = str(tmp_path / "prompts.geojson")
    write_labels([Label(box(500000 + 20 * k, 4649900, 500010 + 20 * k, 4649910), "EPSG:32633", attributes("obj"))
                  for k in range(6)], path)
    return path


def test_seg_prelabel_resume_with_a_wrongly_shaped_manifest_exits_2(tmp_path, capsys):
    from seg_qgis_plugin.cli.main import main

    raster = helpers.write_bright_scene(str(tmp_path / "bright.tif"), size=256)
    out = str(tmp_path / "out.gpkg")
    os.makedirs(resume_folder(out))
    with open(os.path.join(resume_folder(out), "manifest.json"), "w") as f:
        json.dump([1, 2], f)
    code = main(["prelabel", raster, "--prompts", _prompts(tmp_path), "--backend", "classic", "--out", out, "--resume", "--tile", "256", "--overlap", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "resume manifest" in err
    assert not os.path.exists(out)


class FailingOracle:
    """The oracle, raising `error` at its `at`-th encode (blocks before it are finished)."""

    def __new__(cls, error: BaseException, at: int = 3):
        backend = helpers.oracle_class()("bright")
        original, count = backend.encode, [0]

        def encode(image):
            count[0] += 1
            if count[0] == at:
                raise error
            return original(image)

        backend.encode = encode
        return backend


def _run(raster, out, backend, resume=False):
    return prelabel_blocks(RasterJob(raster, tile=256, overlap=64), backend, OPTIONS, BlockRun(output=out, resume=resume, block_tiles=1))


@pytest.mark.parametrize("error, kept_without_resume", [
    (SegError("the model failed"), False),
    (OSError(errno.ENOSPC, "No space left on device"), False),
    (MemoryError(), False),
    (KeyboardInterrupt(), True),
    (Canceled("canceled"), True),
])
def test_a_failed_run_keeps_its_blocks_only_where_resume_helps(tmp_path, error, kept_without_resume):
    raster = helpers.write_bright_scene(str(tmp_path / "bright.tif"))
    out = str(tmp_path / "out.gpkg")
    with pytest.raises(type(error)):
        _run(raster, out, FailingOracle(error))
    assert os.path.isdir(resume_folder(out)) == kept_without_resume
    with pytest.raises(KeyboardInterrupt):
        _run(raster, out, FailingOracle(KeyboardInterrupt()))  # two blocks finished, kept for --resume
    assert os.path.isdir(resume_folder(out))
    with pytest.raises(type(error)):
        _run(raster, out, FailingOracle(error, at=2), resume=True)  # a resumed run keeps what it had
    assert os.path.isdir(resume_folder(out))


def test_a_full_disk_while_keeping_blocks_removes_them_without_resume(tmp_path, monkeypatch):
    raster = helpers.write_bright_scene(str(tmp_path / "bright.tif"))
    out = str(tmp_path / "out.gpkg")
    saved = [0]
    real_savez = np.savez

    def savez(f, **arrays):
        saved[0] += 1
        if saved[0] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_savez(f, **arrays)

    monkeypatch.setattr(np, "savez", savez)
    with pytest.raises(OutputError, match=r"No space left on device; nothing was written\.$"):
        _run(raster, out, helpers.oracle_class()("bright"))
    assert os.listdir(tmp_path) == ["bright.tif"]


def test_seg_prelabel_failing_to_write_its_output_leaves_no_resume_folder(tmp_path, capsys, monkeypatch):
    from seg_qgis_plugin.cli.main import main
    from seg_qgis_plugin.core.outputs import vectors

    raster = helpers.write_bright_scene(str(tmp_path / "bright.tif"), size=512)

    def refuse(*args, **kwargs):
        raise OutputError("Cannot write the output: No space left on device; nothing was written.")

    prompts = _prompts(tmp_path)
    monkeypatch.setattr(vectors.LabelWriter, "__exit__", lambda self, *exc: refuse())
    code = main(["prelabel", raster, "--prompts", prompts, "--backend", "classic", "--out", str(tmp_path / "pre.gpkg"), "--tile", "256",
                 "--overlap", "0", "--block-tiles", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err
    assert not os.path.exists(resume_folder(str(tmp_path / "pre.gpkg")))  # (the writer's own staging is faked away)
