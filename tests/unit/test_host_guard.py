"""The guard the plugin installs in QGIS: pyproj comes from the copy built on the system's PROJ
(the one QGIS loads) even when a wheel with its own PROJ stands first on sys.path, and triton can
never be imported (torch runs without it)."""
import subprocess
import sys

import pytest

from seg_qgis_plugin.qgis_adapters.host import host_copy


def run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_pyproj_comes_from_the_system_copy_not_the_wheel():
    spec = host_copy("pyproj")
    if spec is None:
        pytest.skip("no pyproj built on the system's PROJ here (Debian's python3-pyproj comes with QGIS)")
    out = run("from seg_qgis_plugin.qgis_adapters.host import protect_qgis; protect_qgis(); "
              "import os, pyproj, pyproj.crs; print(os.path.isdir(os.path.join(os.path.dirname(os.path.dirname(pyproj.__file__)), 'pyproj.libs')))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"  # in the venv the wheel stands first on sys.path


def test_triton_cannot_be_imported_and_torch_does_not_need_it():
    pytest.importorskip("torchvision")
    out = run("from seg_qgis_plugin.qgis_adapters.host import protect_qgis; protect_qgis(); import sys\n"
              "try:\n    import triton\nexcept ModuleNotFoundError as e:\n    print('blocked:', e)\n"
              "import torchvision.ops, segment_anything; print('triton' in sys.modules)")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == ["blocked: triton is kept out of QGIS: it crashes the desktop.", "False"]
