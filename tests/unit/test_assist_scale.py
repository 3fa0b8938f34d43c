"""`seg assist --cluster` and `--resume`: a Dask cluster and a run killed with SIGKILL both end with
exactly the serial run's polygons and rasters (core.scale.assist_runs)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio

pytest.importorskip("lightgbm", reason="the assistant needs lightgbm")
pytest.importorskip("distributed", reason="--cluster needs dask.distributed")

from seg_qgis_plugin.cli.main import main  # noqa: E402
from seg_qgis_plugin.core.assist import predict  # noqa: E402
from seg_qgis_plugin.core.engine.labels import Label, attributes  # noqa: E402
from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels  # noqa: E402
from seg_qgis_plugin.core.scale import assist_runs  # noqa: E402
from seg_qgis_plugin.core.scale.manifest import ResumeManifest  # noqa: E402
from seg_qgis_plugin.demo.scene import CRS, pixel_square, write_scene  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE, WINDOW = 384, 96  # 16 windows: blobs cross window borders
KILLED_RUN = """
import time, sys
from seg_qgis_plugin.core.assist import predict
predict.window_size = lambda n_features: {window}
call = predict.WindowPredictor.__call__
def slow(self, window):
    time.sleep(0.4)
    return call(self, window)
predict.WindowPredictor.__call__ = slow
from seg_qgis_plugin.cli.main import main
sys.exit(main({args!r}))
"""


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("assist_scale")
    raster = str(folder / "scene.tif")
    truth = write_scene(raster, SIZE, SIZE, seed=4)

    def square(col, row):
        return pixel_square(col, row, 10)

    labels = [Label(square(int(o.point[0]) - 5, int(o.point[1]) - 5), CRS, attributes(o.class_name)) for o in truth]
    taken = np.any([o.mask for o in truth], axis=0)
    labels += [Label(square(c, r), CRS, attributes("background")) for c, r in [(10, 10), (360, 10), (10, 360), (200, 200)]
               if not taken[r:r + 10, c:c + 10].any()]
    path = str(folder / "labels.gpkg")
    write_labels(labels, path)
    return dict(folder=folder, raster=raster, labels=path)


def run_assist(scene, name, *extra):
    out = scene["folder"] / name
    args = ["assist", scene["raster"], "--labels", scene["labels"], "--out", str(out) + ".gpkg", "--probability",
            str(out) + "-p.tif", "--uncertainty", str(out) + "-u.tif", "--min-area", "2", "--block-tiles", "1", *extra]
    return args, str(out)


def outputs(out):
    layer = sorted((lab.geometry.wkb, json.dumps({k: v for k, v in lab.attributes.items() if k != "created"}, sort_keys=True))
                   for lab in read_labels(out + ".gpkg"))
    with rasterio.open(out + "-p.tif") as p, rasterio.open(out + "-u.tif") as u:
        return layer, p.read(), u.read()


def assert_same(a, b):
    assert a[0] == b[0] and len(a[0]) > 3
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])


@pytest.fixture(scope="module")
def serial(scene):
    mp = pytest.MonkeyPatch()
    mp.setattr(predict, "window_size", lambda n_features: WINDOW)
    args, out = run_assist(scene, "serial")
    assert main(args) == 0
    mp.undo()
    assert not os.path.exists(out + ".gpkg.seg-resume")  # the manifest goes once the outputs are whole
    return outputs(out)


def test_a_local_cluster_gives_the_serial_output(scene, serial, monkeypatch, capsys):
    monkeypatch.setattr(predict, "window_size", lambda n_features: WINDOW)
    args, out = run_assist(scene, "cluster", "--cluster", "local:2")
    assert main(args) == 0
    assert_same(outputs(out), serial)


def test_a_run_killed_with_sigkill_resumes_to_the_serial_output(scene, serial, monkeypatch):
    args, out = run_assist(scene, "killed")
    code = KILLED_RUN.format(window=WINDOW, args=args)
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=ROOT), stderr=subprocess.PIPE)
    manifest = out + ".gpkg.seg-resume/manifest.json"
    deadline, done = time.time() + 180, 0
    while time.time() < deadline and proc.poll() is None and done < 4:
        try:
            with open(manifest) as f:
                done = len(json.load(f)["blocks"])
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not any(os.path.exists(out + suffix) for suffix in (".gpkg", "-p.tif", "-u.tif"))  # nothing half-written
    with open(manifest) as f:
        done = len(json.load(f)["blocks"])
    assert 4 <= done < 16

    monkeypatch.setattr(predict, "window_size", lambda n_features: WINDOW)
    monkeypatch.setattr("seg_qgis_plugin.core.assist.pipeline.learn", lambda *a, **k: pytest.fail("the model was learned again"))
    computed = []
    call = predict.WindowPredictor.__call__
    monkeypatch.setattr(predict.WindowPredictor, "__call__", lambda self, w: computed.append(w) or call(self, w))
    assert main(args + ["--resume"]) == 0
    assert len(computed) == 16 - done  # finished blocks (one window each) were not redone
    assert_same(outputs(out), serial)
    assert not os.path.exists(out + ".gpkg.seg-resume")


def test_resume_on_a_cluster_and_a_manifest_of_another_run(scene, serial, monkeypatch, capsys):
    monkeypatch.setattr(predict, "window_size", lambda n_features: WINDOW)
    args, out = run_assist(scene, "other")
    ResumeManifest(out + ".gpkg", {"kind": "assist", "raster": "another"})
    assert main(args + ["--resume"]) == 2
    assert "belongs to a different run" in capsys.readouterr().err
    assert not os.path.exists(out + ".gpkg")

    # a run stopped after 5 blocks, resumed on a cluster: only the other 11 blocks go to the workers
    stop = predict.WindowPredictor.__call__
    calls = []

    def stopping(self, window):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(window)
        return stop(self, window)

    monkeypatch.setattr(predict.WindowPredictor, "__call__", stopping)
    assert main(args) == 130  # Ctrl-C
    assert not os.path.exists(out + ".gpkg") and not os.path.exists(out + "-p.tif")
    monkeypatch.setattr(predict.WindowPredictor, "__call__", stop)
    sent = []
    run_blocks = assist_runs.run_blocks
    monkeypatch.setattr(assist_runs, "run_blocks", lambda client, fn, blocks, *a: sent.append(len(blocks)) or run_blocks(client, fn, blocks, *a))
    assert main(args + ["--resume", "--cluster", "local:1"]) == 0
    assert sent == [11]
    assert_same(outputs(out), serial)
