"""The guard the plugin installs in QGIS: pyproj comes from the copy built on the system's PROJ
(the one QGIS loads) even when a wheel with its own PROJ stands first on sys.path, and triton can
never be imported (torch runs without it)."""
import os
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


def proj_db(folder, minor):
    import sqlite3

    folder.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(folder / "proj.db") as db:
        db.execute("CREATE TABLE metadata (key TEXT, value TEXT)")
        db.execute("INSERT INTO metadata VALUES ('DATABASE.LAYOUT.VERSION.MINOR', ?)", (str(minor),))
    db.close()
    return folder


def test_qgis_proj_db_replaces_older_wheel_copies_in_the_private_folder_only(tmp_path, monkeypatch):
    """QGIS 3.44's PROJ needs layout minor 7 and the wheels carry 6: their copies in Seg's folder take
    QGIS's, PROJ_DATA names QGIS's folder; a newer wheel copy is left as it is."""
    from seg_qgis_plugin.qgis_adapters.host import proj_db_minor, share_proj_data

    qgis = proj_db(tmp_path / "qgis-proj", 7)
    private = tmp_path / "seg_deps"
    proj_db(private / "pyogrio" / "proj_data", 6)
    proj_db(private / "rasterio" / "proj_data", 8)
    monkeypatch.setenv("PROJ_DATA", "")  # empty counts as unset; monkeypatch restores what was there
    monkeypatch.setenv("PROJ_LIB", "")
    share_proj_data(str(private), [str(tmp_path / "nothing"), str(qgis)])
    assert proj_db_minor(str(private / "pyogrio" / "proj_data")) == 7
    assert proj_db_minor(str(private / "rasterio" / "proj_data")) == 8
    assert os.environ["PROJ_DATA"] == str(qgis)

    monkeypatch.setenv("PROJ_LIB", "/somewhere/the/user/chose")
    monkeypatch.setenv("PROJ_DATA", "")
    share_proj_data(str(private), [str(qgis)])
    assert os.environ["PROJ_DATA"] == ""  # the user's choice stands
