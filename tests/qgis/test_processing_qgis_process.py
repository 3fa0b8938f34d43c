"""The plugin installed into a throwaway QGIS profile and driven headless through qgis_process.bin
(iface None): plugins enable, list, run --json. This is what users and servers run."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"


def install_plugin(profile_root: str) -> str:
    """Lay the plugin out as the plugin zip does (seg_qgis_plugin/ with metadata.txt and the
    processing package inside, no tests) in the default profile of `profile_root`."""
    plugins = os.path.join(profile_root, "profiles", "default", "python", "plugins")
    target = os.path.join(plugins, "seg_qgis_plugin")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(os.path.join(ROOT, "seg_qgis_plugin"), target, ignore=ignore)
    shutil.copytree(os.path.join(ROOT, "processing"), os.path.join(target, "processing"), ignore=ignore)
    shutil.copy(os.path.join(ROOT, "metadata.txt"), os.path.join(target, "metadata.txt"))
    return target


@pytest.fixture
def qgis_process(tmp_path):
    if not os.path.exists(QGIS_PROCESS):
        pytest.skip("qgis_process.bin is not installed")
    if not os.path.exists(os.path.join(ROOT, "metadata.txt")):
        pytest.fail("metadata.txt is missing at the repository root; qgis_process cannot load the plugin without it")
    profile = tmp_path / "qgis-config"
    install_plugin(str(profile))
    site = os.path.join(sys.prefix, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(profile), PYTHONPATH=site,
               XDG_RUNTIME_DIR=str(tmp_path))
    env.pop("PYTHONHOME", None)

    def run(*args, timeout=120):
        done = subprocess.run([QGIS_PROCESS, *args], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"qgis_process {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return done.stdout

    return run


def test_qgis_process_enables_lists_and_runs_the_plugin(qgis_process, raster_factory, tmp_path):
    qgis_process("plugins", "enable", "seg_qgis_plugin")
    listing = qgis_process("list")
    for algorithm_id in ("seg:tileraster", "seg:encoderaster", "seg:prelabel", "seg:polygonizemasks", "seg:rasterizelabels",
                         "seg:exporttrainingdata"):
        assert algorithm_id in listing
    help_text = qgis_process("help", "seg:prelabel")
    assert "box to instance" in help_text
    raster = raster_factory(np.ones((1, 300, 200), np.uint8))
    out = str(tmp_path / "tiles.gpkg")
    result = json.loads(qgis_process("--json", "run", "seg:tileraster", "--", f"INPUT={raster}", "TILE=128", "OVERLAP=0",
                                     f"OUTPUT={out}"))
    assert result["results"]["TILE_COUNT"] == 2 * 3
    import pyogrio

    info = pyogrio.read_info(out)
    assert info["features"] == 6 and info["crs"] == "EPSG:32633"


def test_qgis_process_without_segs_packages_says_what_to_do_in_one_sentence(tmp_path, raster_factory):
    """A stock QGIS (none of Seg's packages on its Python): the algorithm answers with the sentence
    the dock shows, not a traceback."""
    if not os.path.exists(QGIS_PROCESS):
        pytest.skip("qgis_process.bin is not installed")
    raster = raster_factory(np.ones((1, 64, 64), np.uint8))
    profile = tmp_path / "stock-config"
    install_plugin(str(profile))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen",
           "QGIS_CUSTOM_CONFIG_PATH": str(profile), "XDG_RUNTIME_DIR": str(tmp_path)}
    run = lambda *args: subprocess.run([QGIS_PROCESS, *args], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)  # noqa: E731
    run("plugins", "enable", "seg_qgis_plugin")
    done = run("run", "seg:tileraster", "--", f"INPUT={raster}", "TILE=32", f"OUTPUT={tmp_path / 'tiles.gpkg'}")
    said = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in said, said[-3000:]
    assert "Seg needs affine" in said and "press Install dependencies in the Seg dock" in said, said[-3000:]
    assert not (tmp_path / "tiles.gpkg").exists()
