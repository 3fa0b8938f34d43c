"""Prompt-layer pre-labeling in blocks (core.scale.prompt_runs): on a local cluster, resumed, and
interrupted with Ctrl-C, it ends with the serial output feature for feature and the same skipped
prompts."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from seg_qgis_plugin.core.batch.prelabel import PrelabelOptions, PromptFeature
from seg_qgis_plugin.core.batch.raster_job import RasterJob, prelabel_raster
from seg_qgis_plugin.core.errors import Canceled, SegError
from seg_qgis_plugin.core.scale.block_run import BlockRun

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
_spec = importlib.util.spec_from_file_location("scale_helpers", os.path.join(HERE, "scale_helpers.py"))
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

CRS = "EPSG:32633"
ORIGIN = (500000.0, 4650000.0)  # scale_helpers.write_bright_scene: 0.5 m pixels


def bright_prompts(raster: str, n: int, seed: int = 0):
    """(x, y) map points on `n` random bright pixels (objects), some objects hit twice."""
    import rasterio

    with rasterio.open(raster) as src:
        rows, cols = np.nonzero(src.read(1) > 127)
    pick = np.random.default_rng(seed).choice(len(rows), n, replace=False)
    return [(ORIGIN[0] + (cols[i] + 0.5) * 0.5, ORIGIN[1] - (rows[i] + 0.5) * 0.5) for i in pick]


def features_for(raster: str, n: int = 24, seed: int = 0):
    """PromptFeatures on bright pixels, plus one outside the raster and one on the dark ground
    (both skipped), with a class and a tag each."""
    from shapely.geometry import Point

    points = bright_prompts(raster, n, seed)
    points[3:3] = [(0.0, 0.0), (ORIGIN[0] + 1.25, ORIGIN[1] - 1.25)]
    return [PromptFeature(Point(x, y), CRS, f"kind{i % 3}", {"n": str(i)}) for i, (x, y) in enumerate(points)]


def write_prompt_layer(path: str, features) -> str:
    rows = [{"type": "Feature", "properties": {"kind": f.class_name, "n": f.tags["n"]},
             "geometry": {"type": "Point", "coordinates": [f.geometry.x, f.geometry.y]}} for f in features]
    with open(path, "w") as f:
        json.dump({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
                   "features": rows}, f)
    return path


def same_features(a, b, tmp_path) -> bool:
    """Whether two label lists are the same once written to and read back from GeoPackages."""
    from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels

    write_labels(a, str(tmp_path / "a.gpkg"), mode="overwrite")
    write_labels(b, str(tmp_path / "b.gpkg"), mode="overwrite")
    return helpers.comparable(read_labels(str(tmp_path / "a.gpkg"))) == helpers.comparable(read_labels(str(tmp_path / "b.gpkg")))


class CancelAfter:
    """A progress host that cancels after `n` checks (one per prompt answered here)."""

    def __init__(self, n: int):
        self.n = n

    def set_progress(self, percent: float) -> None:
        pass

    def is_canceled(self) -> bool:
        self.n -= 1
        return self.n < 0


@pytest.fixture
def bright_scene(tmp_path):
    return helpers.write_bright_scene(str(tmp_path / "bright.tif"))


def test_prompt_layer_on_a_local_cluster_equals_the_serial_run(bright_scene, tmp_path):
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install distributed==2024.8.0)")
    from seg_qgis_plugin.core.scale.cluster import ModelSpec
    from seg_qgis_plugin.core.scale.runs import prelabel_scaled

    Oracle = helpers.oracle_class()
    job, features = RasterJob(bright_scene, tile=256, overlap=64), features_for(bright_scene)
    serial = prelabel_raster(job, Oracle(), features)
    assert serial.count >= 15 and len({lab.attributes["class"] for lab in serial.labels}) == 3
    assert [n for n, _ in serial.skipped] == [4, 5]
    assert "outside the raster" in serial.skipped[0][1] and serial.skipped[1][1] == "the mask was empty after clean-up"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        found = []
        distributed, manifest = prelabel_scaled(job, Oracle(), features, run=BlockRun(ModelSpec.from_factory(Oracle), cluster="local:2",
                                                block_tiles=1), on_label=found.append)
    assert manifest is None and distributed.count == serial.count and not distributed.labels
    assert distributed.skipped == serial.skipped
    assert same_features(serial.labels, found, tmp_path)  # streamed in the serial order


def test_a_canceled_prompt_run_resumes_without_redoing_finished_blocks(bright_scene, tmp_path):
    from seg_qgis_plugin.core.scale.prompt_runs import prelabel_prompt_blocks, split_prompt_blocks

    Oracle = helpers.oracle_class()
    job, features = RasterJob(bright_scene, tile=256, overlap=64), features_for(bright_scene)
    serial = prelabel_raster(job, Oracle(), features)
    whole = Oracle()
    prelabel_prompt_blocks(job, whole, features, run=BlockRun(block_tiles=1))
    out = str(tmp_path / "out.gpkg")
    with pytest.raises(Canceled):
        prelabel_prompt_blocks(job, Oracle(), features, run=BlockRun(output=out, block_tiles=1), progress=CancelAfter(12))
    with open(os.path.join(out + ".seg-resume", "manifest.json")) as f:
        finished = len(json.load(f)["blocks"])
    with job.open(Oracle()) as segmenter:
        from seg_qgis_plugin.core.batch.prelabel import order_prompts

        blocks = split_prompt_blocks(segmenter, order_prompts(segmenter, features)[0], 1)
    assert len(blocks) >= 4 and 1 <= finished < len(blocks)
    assert sorted(os.listdir(out + ".seg-resume")) == [f"block-{b:05d}.json" for b in range(finished)] + ["manifest.json"]

    counted = Oracle()
    resumed, manifest = prelabel_prompt_blocks(job, counted, features, run=BlockRun(output=out, resume=True, block_tiles=1))
    assert counted.encoded < whole.encoded  # the finished blocks' tiles were not encoded again
    assert resumed.skipped == serial.skipped and resumed.count == serial.count
    assert same_features(serial.labels, resumed.labels, tmp_path)
    manifest.finish()
    assert not os.path.exists(out + ".seg-resume")


def test_a_manifest_from_another_prompt_layer_is_refused_in_one_sentence(bright_scene, tmp_path):
    from seg_qgis_plugin.core.scale.prompt_runs import prelabel_prompt_blocks

    Oracle = helpers.oracle_class()
    job, out = RasterJob(bright_scene, tile=256, overlap=64), str(tmp_path / "out.gpkg")
    with pytest.raises(Canceled):
        prelabel_prompt_blocks(job, Oracle(), features_for(bright_scene), run=BlockRun(output=out, block_tiles=1), progress=CancelAfter(12))  # a block finished
    moved = features_for(bright_scene, seed=1)
    with pytest.raises(SegError, match=r"belongs to a different run \(another prompt layer\); run without --resume") as err:
        prelabel_prompt_blocks(job, Oracle(), moved, run=BlockRun(output=out, resume=True, block_tiles=1))
    assert str(err.value).count(". ") == 0
    with pytest.raises(SegError, match=r"different run \(other options\)"):
        prelabel_prompt_blocks(job, Oracle(), features_for(bright_scene), PrelabelOptions(simplify=0.5),
                               BlockRun(output=out, resume=True, block_tiles=1))


RUNNER = '''
import importlib.util, sys

DELAY = {delay!r}


def slow_model():
    return helpers.SlowOracle(DELAY)


if __name__ == "__main__":  # `seg` itself, with the oracle (slowed down) as the model, here and on the workers
    import cloudpickle

    spec = importlib.util.spec_from_file_location("seg_scale_helpers", {helpers!r})
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    sys.modules["seg_scale_helpers"] = helpers
    cloudpickle.register_pickle_by_value(helpers)
    from seg_qgis_plugin.cli.main import main
    from seg_qgis_plugin.core.jobs.base import ModelFields
    from seg_qgis_plugin.core.scale.cluster import ModelSpec

    ModelFields.model_spec = lambda request: ModelSpec.from_factory(slow_model)  # the request's model, here and on workers
    sys.exit(main(sys.argv[1:]))
'''


def _seg(runner, *args, **popen):
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONWARNINGS="ignore::DeprecationWarning")
    return subprocess.Popen([sys.executable, runner, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def test_ctrl_c_on_a_cluster_run_leaves_nothing_and_resume_gives_the_serial_output(tmp_path):
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install distributed==2024.8.0)")
    import psutil

    raster = helpers.write_bright_scene(str(tmp_path / "bright.tif"), size=1024)
    prompts = write_prompt_layer(str(tmp_path / "prompts.geojson"), features_for(raster, n=30))
    runner = str(tmp_path / "seg_runner.py")
    with open(runner, "w") as f:
        f.write(RUNNER.format(delay=0.4, helpers=os.path.join(HERE, "scale_helpers.py")))
    common = ["prelabel", raster, "--prompts", prompts, "--class-field", "kind", "--tile", "256", "--overlap", "64",
              "--block-tiles", "1"]
    serial_out = str(tmp_path / "serial.gpkg")
    serial = _seg(runner, *common, "--out", serial_out)
    serial_stdout, serial_stderr = serial.communicate(timeout=300)
    assert serial.returncode == 0, serial_stderr[-2000:]

    folder = tmp_path / "run"
    folder.mkdir()
    out = str(folder / "labels.gpkg")
    # its own process group, and SIGINT as a terminal leaves it, even where this test runs with it ignored (CI)
    proc = _seg(runner, *common, "--out", out, "--cluster", "local:1", start_new_session=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    resume_folder = out + ".seg-resume"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.isdir(resume_folder) and any(n.startswith("block-") for n in os.listdir(resume_folder)):
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert workers  # the LocalCluster's worker process(es)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    interrupted = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - interrupted < 30
    messages = [line.strip() for line in stderr.replace("\r", "\n").splitlines() if line.strip() and "pre-labeling" not in line]
    assert proc.returncode == 130 and messages == ["seg: interrupted; nothing half-written was left behind."], stderr[-3000:]
    gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, [p.cmdline() for p in alive]
    assert sorted(os.listdir(folder)) == ["labels.gpkg.seg-resume"]  # no output, no temporary file beside it
    blocks = sorted(os.listdir(resume_folder))
    assert blocks[-1] == "manifest.json" and all(n.startswith("block-") and n.endswith(".json") for n in blocks[:-1])

    resumed = _seg(runner, *common, "--out", out, "--resume")
    resumed_stdout, resumed_stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, resumed_stderr[-2000:]
    assert os.listdir(folder) == ["labels.gpkg"]
    from seg_qgis_plugin.core.outputs.vectors import read_labels

    assert helpers.comparable(read_labels(out)) == helpers.comparable(read_labels(serial_out))
    skipped = [line for line in serial_stdout.splitlines() if "skipped" in line]
    assert len(skipped) == 2 and skipped[0].startswith("prompt 4 skipped: ") and "outside the raster" in skipped[0]
    assert skipped[1] == "prompt 5 skipped: the mask was empty after clean-up"
    assert [line for line in resumed_stdout.splitlines() if "skipped" in line] == skipped


def test_local_workers_run_python_even_inside_another_program(monkeypatch):
    import multiprocessing.spawn

    from seg_qgis_plugin.core.scale.cluster import python_for_workers

    monkeypatch.setattr(multiprocessing.spawn, "_python_exe", "/usr/bin/qgis")  # sys.executable inside QGIS
    chosen = python_for_workers()
    assert os.path.basename(chosen).startswith("python") and os.access(chosen, os.X_OK)
    assert os.fsdecode(multiprocessing.spawn.get_executable()) == chosen
    out = subprocess.run([chosen, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    assert out.stdout.strip() == str(tuple(sys.version_info[:2]))
    monkeypatch.setattr(multiprocessing.spawn, "_python_exe", "/opt/qgis/qgis-bin.exe")
    monkeypatch.setattr(sys, "exec_prefix", "/nonexistent")
    with pytest.raises(SegError, match="local:N cannot start Python worker processes from /opt/qgis/qgis-bin.exe"):
        python_for_workers()


def test_a_worker_keeps_its_last_two_sessions_and_closes_older_ones(bright_scene, tmp_path):
    from seg_qgis_plugin.core.scale import cluster
    from seg_qgis_plugin.core.scale.cluster import ModelSpec, _session

    Oracle = helpers.oracle_class()
    spec = ModelSpec.from_factory(Oracle)
    jobs = [RasterJob(bright_scene, tile=t, overlap=0) for t in (128, 192, 256)]
    first = _session(jobs[0], spec, None)
    try:
        assert _session(jobs[0], spec, None) is first  # opened once, then reused
        _session(jobs[1], spec, None)
        _session(jobs[2], spec, None)
        assert len(cluster._SESSIONS) == cluster.MAX_SESSIONS == 2
        assert first.source.dataset.closed  # the oldest was closed, not leaked
    finally:
        while cluster._SESSIONS:
            cluster._SESSIONS.popitem()[1].close()
