"""A pre-labeling run killed with SIGKILL mid-way, run again with resume, ends with exactly the
uninterrupted output (core.scale.manifest)."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from seg_qgis_plugin.core.batch.raster_job import RasterJob
from seg_qgis_plugin.core.errors import SegError

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("scale_helpers", os.path.join(HERE, "scale_helpers.py"))
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

OPTIONS = dict(points_per_side=8, min_score=0.5, min_stability=0.5)

RUN = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("scale_helpers", {helpers!r})
h = importlib.util.module_from_spec(spec); spec.loader.exec_module(h)
from seg_qgis_plugin.core.batch.raster_job import RasterJob
from seg_qgis_plugin.core.outputs.vectors import write_labels
from seg_qgis_plugin.core.batch.prelabel import PrelabelOptions
from seg_qgis_plugin.core.scale.block_run import BlockRun
from seg_qgis_plugin.core.scale.runs import prelabel_blocks
result, manifest = prelabel_blocks(RasterJob({raster!r}, tile=256, overlap=64), h.SlowOracle(0.4), PrelabelOptions(**{options!r}),
                                   BlockRun(output={out!r}, block_tiles=1))
write_labels(result.labels, {out!r})
manifest.finish()
"""


def _run(raster, out, resume=False, backend=None):
    from seg_qgis_plugin.core.outputs.vectors import write_labels
    from seg_qgis_plugin.core.batch.prelabel import PrelabelOptions
    from seg_qgis_plugin.core.scale.block_run import BlockRun
    from seg_qgis_plugin.core.scale.runs import prelabel_blocks

    result, manifest = prelabel_blocks(RasterJob(raster, tile=256, overlap=64), backend or helpers.SlowOracle(),
                                       PrelabelOptions(**OPTIONS), BlockRun(output=out, resume=resume, block_tiles=1))
    write_labels(result.labels, out)
    manifest.finish()
    return result


def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_output(tmp_path):
    from seg_qgis_plugin.core.outputs.vectors import read_labels

    raster = helpers.write_bright_scene(str(tmp_path / "bright.tif"))
    whole = str(tmp_path / "whole.gpkg")
    _run(raster, whole)
    assert not os.path.exists(whole + ".seg-resume")  # removed once the output is whole

    out = str(tmp_path / "killed.gpkg")
    code = RUN.format(helpers=os.path.join(HERE, "scale_helpers.py"), raster=raster, out=out, options=OPTIONS)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(HERE)))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    manifest = os.path.join(out + ".seg-resume", "manifest.json")
    deadline = time.time() + 120
    finished = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            with open(manifest) as f:
                finished = len(json.load(f)["blocks"])
        except (OSError, ValueError):
            finished = 0
        if finished >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(out)  # nothing half-written
    with open(manifest) as f:
        done = len(json.load(f)["blocks"])
    assert 3 <= done < 9

    counted = helpers.oracle_class()("bright")
    _run(raster, out, resume=True, backend=counted)
    assert counted.encoded == 9 - done  # finished blocks (one tile each) were not redone
    assert helpers.comparable(read_labels(out)) == helpers.comparable(read_labels(whole))
    assert not os.path.exists(out + ".seg-resume")


def test_a_manifest_from_a_different_run_is_refused(tmp_path):
    from seg_qgis_plugin.core.scale.manifest import ResumeManifest, resume_folder

    raster = helpers.write_bright_scene(str(tmp_path / "bright.tif"))
    out = str(tmp_path / "out.gpkg")
    ResumeManifest(out, {"raster": "abc", "options": {"min_score": 0.5}})
    assert os.path.isfile(os.path.join(resume_folder(out), "manifest.json"))
    with pytest.raises(SegError, match="belongs to a different run"):
        _run(raster, out, resume=True)
