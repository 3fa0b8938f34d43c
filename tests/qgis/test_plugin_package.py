"""The built plugin zip, installed into a throwaway QGIS profile: loaded with qgis.utils as QGIS
loads plugins, and driven headless through qgis_process (plugins enable, list, run).

Everything runs in subprocesses, so the plugin is imported from the unzipped profile folder, never
from the checkout (the test process has the checkout's seg_qgis_plugin imported already).
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
QGIS_PROCESS = shutil.which("qgis_process.bin")
EXPECTED = {"seg:tileraster", "seg:encoderaster", "seg:prelabel", "seg:polygonizemasks", "seg:rasterizelabels",
            "seg:exporttrainingdata", "seg:labelqa", "seg:agreement", "seg:propagatelabels", "seg:changereport",
            "seg:driftmap", "seg:assist", "seg:ranktiles"}

pytest.importorskip("qgis.core", reason="QGIS Python bindings are not installed")


def load_build_tool():
    spec = importlib.util.spec_from_file_location("seg_build_plugin", os.path.join(REPO, "tools", "build_plugin.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """A QGIS config folder whose default profile has the built plugin unzipped into python/plugins."""
    base = tmp_path_factory.mktemp("qgis-config")
    zip_path = load_build_tool().build_zip(str(tmp_path_factory.mktemp("dist")))
    plugins = base / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(plugins)
    return {"config": str(base), "plugins": str(plugins), "zip": zip_path}


def clean_env(profile, **extra):
    """Headless, isolated profile, our venv's packages visible, the checkout NOT on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "QGIS_PLUGINPATH")}
    env.update(QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=profile["config"],
               PYTHONPATH=sysconfig.get_paths()["purelib"], **extra)
    return env


LOAD_LIKE_QGIS = r"""
import json, os, sys
plugins = sys.argv[1]
sys.path.insert(0, plugins)                                  # QGIS puts the profile's plugin folder first
sys.path.insert(1, "/usr/share/qgis/python/plugins")         # and its own plugins (processing) next
from qgis.core import QgsApplication
app = QgsApplication([], True)
app.setPrefixPath("/usr", True)
app.initQgis()
from processing.core.Processing import Processing
Processing.initialize()
import qgis.utils
qgis.utils.plugin_paths = [plugins]
qgis.utils.updateAvailablePlugins()
out = {"available": "seg_qgis_plugin" in qgis.utils.available_plugins,
       "version": qgis.utils.pluginMetadata("seg_qgis_plugin", "version"),
       "processing_provider": qgis.utils.pluginMetadata("seg_qgis_plugin", "hasProcessingProvider"),
       "loaded": qgis.utils.loadPlugin("seg_qgis_plugin")}
import seg_qgis_plugin, processing
out["heavy_after_load"] = sorted(m for m in ("torch", "segment_anything", "cv2") if m in sys.modules)
out["started"] = qgis.utils.startProcessingPlugin("seg_qgis_plugin")
out["heavy_after_start"] = sorted(m for m in ("torch", "segment_anything") if m in sys.modules)
out["file"] = seg_qgis_plugin.__file__
out["our_processing"] = sys.modules["seg_qgis_plugin.processing"].__file__
out["qgis_processing"] = processing.__file__
provider = QgsApplication.processingRegistry().providerById("seg")
out["algorithms"] = sorted(a.id() for a in provider.algorithms()) if provider else []
out["unloaded"] = qgis.utils.unloadPlugin("seg_qgis_plugin")
out["provider_after_unload"] = QgsApplication.processingRegistry().providerById("seg") is not None
print("RESULT " + json.dumps(out))
"""


def test_plugin_loads_from_the_profile_with_qgis_utils(profile):
    run = subprocess.run([sys.executable, "-c", LOAD_LIKE_QGIS, profile["plugins"]], capture_output=True, text=True,
                         env=clean_env(profile), cwd=profile["config"], timeout=120)
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["available"] and out["loaded"] and out["started"], out
    assert out["version"] == load_build_tool().pyproject_version() and out["processing_provider"] == "yes"
    plugin_dir = os.path.join(profile["plugins"], "seg_qgis_plugin")
    assert out["file"] == os.path.join(plugin_dir, "__init__.py")
    assert out["our_processing"] == os.path.join(plugin_dir, "processing", "__init__.py")
    assert out["qgis_processing"].startswith("/usr/share/qgis/python/plugins/processing/")
    assert set(out["algorithms"]) == EXPECTED
    assert out["unloaded"] and not out["provider_after_unload"]
    assert out["heavy_after_load"] == [] and out["heavy_after_start"] == [], "heavy modules must load lazily"


def qgis_process(profile, *args, timeout=120):
    if QGIS_PROCESS is None:
        pytest.skip("qgis_process.bin is not installed")
    return subprocess.run([QGIS_PROCESS, *args], capture_output=True, text=True, env=clean_env(profile),
                          cwd=profile["config"], timeout=timeout)


def test_qgis_process_enables_lists_and_runs_the_plugin(profile, tmp_path):
    # The only seg_qgis_plugin qgis_process can find is the one in the profile.
    probe = subprocess.run(["/usr/bin/python3", "-c", "import importlib.util as u; print(u.find_spec('seg_qgis_plugin'))"],
                           capture_output=True, text=True, env=clean_env(profile), cwd=profile["config"])
    assert probe.stdout.strip() == "None", probe.stdout + probe.stderr

    enabled = qgis_process(profile, "plugins", "enable", "seg_qgis_plugin")
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    assert "* seg_qgis_plugin" in enabled.stdout
    ini = os.path.join(profile["config"], "profiles", "default", "QGIS", "QGIS3.ini")
    assert "seg_qgis_plugin=true" in open(ini).read()

    listed = qgis_process(profile, "--json", "list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    providers = json.loads(listed.stdout)["providers"]
    assert "seg" in providers and set(providers["seg"]["algorithms"]) == EXPECTED

    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    raster, tiles = str(tmp_path / "ortho.tif"), str(tmp_path / "tiles.gpkg")
    with rasterio.open(raster, "w", driver="GTiff", width=200, height=150, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=from_origin(500000, 4650000, 0.5, 0.5)) as dst:
        dst.write(np.random.default_rng(0).integers(0, 255, (3, 150, 200), dtype=np.uint8))
    ran = qgis_process(profile, "--json", "run", "seg:tileraster", "--", f"INPUT={raster}", "TILE=64", "OVERLAP=16",
                       f"OUTPUT={tiles}")
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    results = json.loads(ran.stdout)["results"]
    assert results["OUTPUT"] == tiles and os.path.isfile(tiles) and results["TILE_COUNT"] > 0


def tiny_wheel(folder):
    """A real pure-Python wheel, seg_task_dummy 1.0, in `folder`."""
    import base64
    import hashlib

    files = {"segtaskdummy/__init__.py": b"VALUE = 7\n",
             "seg_task_dummy-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: seg-task-dummy\nVersion: 1.0\n",
             "seg_task_dummy-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = [f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}"
              for n, d in files.items()] + ["seg_task_dummy-1.0.dist-info/RECORD,,"]
    files["seg_task_dummy-1.0.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(os.path.join(folder, "seg_task_dummy-1.0-py3-none-any.whl"), "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)


def run_task(qgis_app, task, seconds=60):
    import time

    from qgis.core import QgsApplication

    done = []
    task.installFinished.connect(lambda ok, message: done.append((ok, message)))
    QgsApplication.taskManager().addTask(task)
    deadline = time.monotonic() + seconds
    while not done and time.monotonic() < deadline:
        qgis_app.processEvents()
        time.sleep(0.02)
    assert done, "the install task did not finish"
    return done[0]


def test_install_task_installs_into_the_profile_folder_and_reports_failures(qgis_app, tmp_path):
    from seg_qgis_plugin import deps
    from seg_qgis_plugin.qgis_adapters.deps_task import InstallDependenciesTask, private_folder

    assert private_folder().endswith(os.path.join("python", "seg_deps", deps.platform_tag()))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    tiny_wheel(str(wheels))
    target = str(tmp_path / "python" / "seg_deps" / deps.platform_tag())
    local = ["--no-index", "--find-links", str(wheels)]
    path_before = list(sys.path)
    try:
        lines = []
        task = InstallDependenciesTask(["seg-task-dummy==1.0"], target, pip_options=local)
        task.lineReceived.connect(lines.append)
        ok, message = run_task(qgis_app, task)
        assert ok and message.startswith(f"Installed seg-task-dummy-1.0 into {target}"), message
        assert any(ln.startswith("Successfully installed") for ln in lines)
        assert sys.path[-1] == target  # activated, after QGIS's own packages
        import segtaskdummy

        assert segtaskdummy.VALUE == 7

        ok, message = run_task(qgis_app, InstallDependenciesTask(["seg-not-there==1.0"], target, pip_options=local))
        assert not ok and "pip found no seg-not-there==1.0 for Python" in message and "\n" not in message
        assert sorted(os.listdir(target)) == ["seg_task_dummy-1.0.dist-info", "segtaskdummy"]
    finally:
        deps.deactivate(target)
        sys.modules.pop("segtaskdummy", None)
    assert sys.path == path_before
