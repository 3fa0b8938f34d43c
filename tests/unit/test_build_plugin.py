"""The plugin zip (`make plugin`): one root folder, complete metadata equal to pyproject's version,
the processing package inside, no tests, caches or compiled files."""
import configparser
import importlib.util
import os
import re
import stat
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(REPO, "tools", "build_plugin.py")


def load_tool():
    spec = importlib.util.spec_from_file_location("seg_build_plugin", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_tool()


def pyproject_version():
    import tomllib  # Python 3.11: an independent reading of pyproject.toml

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["version"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = build.build_zip(str(tmp_path_factory.mktemp("dist")))
    with zipfile.ZipFile(path) as zf:
        return path, zf.namelist(), {n: zf.read(n) for n in zf.namelist()}


def test_zip_is_named_by_version_and_has_one_root_folder(built):
    path, names, _ = built
    assert os.path.basename(path) == f"seg_qgis_plugin-{pyproject_version()}.zip"
    assert {n.split("/")[0] for n in names} == {"seg_qgis_plugin"}
    for required in ("__init__.py", "plugin.py", "metadata.txt", "icon.svg", "core/errors.py", "deps.py",
                     "processing/__init__.py", "processing/provider.py"):
        assert f"seg_qgis_plugin/{required}" in names, required


def test_processing_package_is_inside_and_matches_the_sources(built):
    _, names, contents = built
    sources = sorted(os.path.relpath(os.path.join(b, f), os.path.join(REPO, "processing")).replace(os.sep, "/")
                     for b, _, files in os.walk(os.path.join(REPO, "processing")) if "__pycache__" not in b
                     for f in files if f.endswith(".py"))
    inside = sorted(n[len("seg_qgis_plugin/processing/"):] for n in names if n.startswith("seg_qgis_plugin/processing/"))
    assert inside == sources
    assert not any(n.startswith("processing/") for n in names)  # never a top-level `processing`


def test_no_tests_caches_or_compiled_files(built):
    _, names, contents = built
    bad = [n for n in names if re.search(r"(^|/)(tests?|__pycache__|\.pytest_cache|[^/]*\.egg-info)/|\.py[co]$|/\.", n)]
    assert bad == []
    for name, data in contents.items():
        if name.endswith(".py"):
            compile(data, name, "exec")  # every module in the zip is valid Python


def test_metadata_in_the_zip_is_the_root_file_and_complete(built):
    _, _, contents = built
    with open(os.path.join(REPO, "metadata.txt"), "rb") as f:
        assert contents["seg_qgis_plugin/metadata.txt"] == f.read()
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(contents["seg_qgis_plugin/metadata.txt"].decode("utf-8"))
    meta = parser["general"]
    for key in ("name", "description", "about", "version", "qgisMinimumVersion", "qgisMaximumVersion",
                "hasProcessingProvider", "tags", "homepage", "tracker", "repository", "icon", "changelog"):
        assert meta.get(key, "").strip(), f"metadata.txt lacks {key}"
    assert meta["version"] == pyproject_version()
    assert (meta["qgisMinimumVersion"], meta["qgisMaximumVersion"], meta["hasProcessingProvider"]) == ("3.22", "4.99", "yes")
    assert f"seg_qgis_plugin/{meta['icon']}" in contents
    assert all(meta[k].startswith("https://") for k in ("homepage", "tracker", "repository"))
    assert build.metadata_problems(dict(meta), pyproject_version(), os.path.join(REPO, "seg_qgis_plugin")) == []


def test_the_same_sources_give_the_same_bytes(built, tmp_path):
    again = build.build_zip(str(tmp_path))
    assert open(again, "rb").read() == open(built[0], "rb").read()
    assert os.listdir(tmp_path) == [os.path.basename(again)]  # no temporary files left


def fake_root(tmp_path, version="0.1.0", metadata=None):
    """A minimal source tree in tmp_path/src with the repository's metadata.txt, plus junk to skip."""
    root = tmp_path / "src"
    (root / "seg_qgis_plugin" / "__pycache__").mkdir(parents=True)
    (root / "seg_qgis_plugin" / "tests").mkdir()
    (root / "processing" / "__pycache__").mkdir(parents=True)
    (root / "pyproject.toml").write_text(f'[build-system]\nrequires = []\n\n[project]\nname = "x"\nversion = "{version}"\n')
    (root / "metadata.txt").write_text(metadata or open(os.path.join(REPO, "metadata.txt"), encoding="utf-8").read())
    (root / "LICENSE").write_text("GPL-2.0-or-later\n")
    shutil.copy(os.path.join(REPO, "seg_qgis_plugin", "icon.svg"), root / "seg_qgis_plugin" / "icon.svg")
    for path in ("seg_qgis_plugin/__init__.py", "processing/__init__.py", "seg_qgis_plugin/tests/test_x.py"):
        (root / path).write_text("")
    for junk in ("seg_qgis_plugin/__pycache__/x.cpython-311.pyc", "seg_qgis_plugin/stale.pyc",
                 "processing/__pycache__/y.cpython-311.pyc", "seg_qgis_plugin/.DS_Store", "seg_qgis_plugin/notes.txt~"):
        (root / junk).write_bytes(b"junk")
    return str(root)


def test_junk_is_left_out_and_license_goes_in(tmp_path):
    meta = open(os.path.join(REPO, "metadata.txt"), encoding="utf-8").read()
    root = fake_root(tmp_path, version=re.search(r"^version=(.*)$", meta, re.M).group(1))
    with zipfile.ZipFile(build.build_zip(str(tmp_path / "out"), root=root)) as zf:
        assert sorted(zf.namelist()) == ["seg_qgis_plugin/LICENSE", "seg_qgis_plugin/__init__.py",
                                         "seg_qgis_plugin/icon.svg", "seg_qgis_plugin/metadata.txt",
                                         "seg_qgis_plugin/processing/__init__.py"]


def test_a_version_mismatch_fails_clearly_and_writes_nothing(tmp_path):
    root = fake_root(tmp_path, version="9.9.9")
    with pytest.raises(build.BuildError, match=r"metadata.txt says version=[0-9.]+, but pyproject.toml's version is 9\.9\.9\."):
        build.build_zip(str(tmp_path / "out"), root=root)
    assert os.listdir(tmp_path / "out") == []


def test_incomplete_metadata_names_every_missing_key(tmp_path):
    root = fake_root(tmp_path, metadata="[general]\nname=Seg\nversion=0.1.0\nqgisMinimumVersion=3.16\nicon=nope.svg\n")
    with pytest.raises(build.BuildError) as err:
        build.build_zip(str(tmp_path / "out"), root=root)
    message = str(err.value)
    for key in ("description", "about", "tracker", "repository", "changelog", "hasProcessingProvider", "qgisMaximumVersion"):
        assert f"metadata.txt lacks {key}." in message
    assert "qgisMinimumVersion=3.16, but what Seg is tested with is 3.22" in message and "icon=nope.svg" in message


def test_the_command_line_prints_the_zip_and_exits_2_on_errors(tmp_path):
    out = subprocess.run([sys.executable, TOOL, "--out", str(tmp_path)], capture_output=True, text=True, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / f"seg_qgis_plugin-{pyproject_version()}.zip")
    bad = subprocess.run([sys.executable, TOOL, "--out", str(tmp_path / "x"), "--root", fake_root(tmp_path, "2.0")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("build_plugin: error: metadata.txt says version=") and bad.stderr.count("\n") == 1


def test_zip_and_its_files_are_readable_by_everyone(built, tmp_path):
    path, names, _ = built
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o044 == 0o044
    with zipfile.ZipFile(path) as zf:
        modes = {info.filename: info.external_attr >> 16 for info in zf.infolist()}
    assert all(stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o644 for mode in modes.values())
