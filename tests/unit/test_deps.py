"""Dependency checks without heavy imports, and real pip installs from a local wheel folder into a
private target (no network): success, a failed install that leaves everything usable, cancel."""
import base64
import hashlib
import os
import subprocess
import sys
import zipfile

import pytest

from seg_qgis_plugin import deps, installer
from seg_qgis_plugin.core.errors import Canceled

HEAVY = ("torch", "torchvision", "segment_anything", "cv2", "rasterio", "pyogrio", "shapely", "pyproj", "safetensors")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def make_wheel(folder, dist, version, module, requires=()):
    """A real pure-Python wheel (py3-none-any) holding `module` with VALUE = '<dist> <version>'."""
    files = {f"{module}/__init__.py": f"VALUE = {dist + ' ' + version!r}\n".encode()}
    info = f"{dist.replace('-', '_')}-{version}.dist-info"
    files[f"{info}/METADATA"] = ("Metadata-Version: 2.1\n" f"Name: {dist}\nVersion: {version}\n"
                                 + "".join(f"Requires-Dist: {r}\n" for r in requires)).encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: seg-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
              for name, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join(record + [f"{info}/RECORD,,"]) + "\n").encode()
    path = os.path.join(folder, f"{dist.replace('-', '_')}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wheels")
    make_wheel(folder, "seg-dummy-core", "1.0", "segdummycore")
    make_wheel(folder, "seg-dummy-sam", "2.0", "segdummysam", requires=["seg-dummy-core>=1.0"])
    import importlib.metadata as md

    # needs pytest, which the host already has: wheels of its version and a newer one are on offer
    make_wheel(folder, "seg-dummy-needs-host", "1.0", "segdummyneedshost", requires=["pytest"])
    for version in (md.version("pytest"), "99.0"):
        make_wheel(folder, "pytest", version, "pytest_copy")
    return str(folder)


def local(wheelhouse):
    return ["--no-index", "--find-links", wheelhouse]


DUMMIES = (deps.Requirement("segdummysam", ("seg-dummy-sam",), "seg-dummy-sam==2.0", "1.5", "sam", "the test"),
           deps.Requirement("segdummycore", ("seg-dummy-core",), "seg-dummy-core==1.0", "1.0", "core", "the test"))


def test_check_finds_versions_without_importing_heavy_modules():
    code = ("import sys; from seg_qgis_plugin import deps; s = deps.check(); "
            f"print([m for m in {HEAVY!r} if m in sys.modules]); print(len(s))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and int(out[1]) == len(deps.PINS)


def test_check_reports_what_this_environment_has():
    statuses = {s.requirement.module: s for s in deps.check()}
    import importlib.metadata as md

    assert statuses["rasterio"].state == "ok" and statuses["rasterio"].version == md.version("rasterio")
    assert statuses["cv2"].version == md.version("opencv-python-headless")  # module and distribution differ
    assert all(s.location == "python" for s in statuses.values())


def test_missing_and_too_old_are_told_apart(monkeypatch):
    old = deps.Requirement("pytest", ("pytest",), "pytest==99.0", "99.0", "core", "the test")
    gone = deps.Requirement("seg_no_such_module", ("seg-no-such",), "seg-no-such==1.0", "1.0", "sam", "nothing")
    statuses = deps.check(requirements=(old, gone))
    assert [s.state for s in statuses] == ["too old", "missing"]
    assert deps.to_install(statuses) == ["pytest==99.0", "seg-no-such==1.0"]
    assert deps.to_install(statuses, groups=("sam",)) == ["seg-no-such==1.0"]
    assert deps.summary(statuses) == "Missing or too old: pytest, seg_no_such_module."
    assert "older than 99.0" in statuses[0].describe() and statuses[1].describe() == "seg_no_such_module: missing, needed for nothing"


def test_version_tuple_compares_local_and_pre_release_versions():
    assert deps.version_tuple("2.13.0+cpu") == (2, 13, 0) and deps.version_tuple("1.0rc1") == (1, 0)
    assert deps.version_tuple("4.10.0.84") > deps.version_tuple("4.8")


def test_private_folder_is_keyed_by_python_version_and_platform(tmp_path):
    folder = deps.private_folder(str(tmp_path))
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}-"
    assert os.path.dirname(folder) == str(tmp_path / "seg_deps") and os.path.basename(folder).startswith(tag)
    assert deps.platform_tag().count("-") == 2


def test_find_python_when_sys_executable_is_qgis(monkeypatch, tmp_path):
    fake_qgis = tmp_path / "qgis"
    fake_qgis.write_text("#!/bin/sh\nexit 3\n")
    monkeypatch.setattr(sys, "executable", str(fake_qgis))
    python = installer.find_python()
    assert python != str(fake_qgis) and os.path.basename(python).startswith("python")
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True).stdout
    assert version.strip() == str(sys.version_info[:2])


def test_install_into_a_private_folder_then_activate(wheelhouse, tmp_path):
    target = deps.private_folder(str(tmp_path / "profile" / "python"))
    statuses = deps.check(target, DUMMIES)
    assert [s.state for s in statuses] == ["missing", "missing"]
    lines, percents = [], []

    class Progress:
        def set_progress(self, p):
            percents.append(p)

        def is_canceled(self):
            return False

    report = installer.install(deps.to_install(statuses), target, progress=Progress(), on_line=lines.append,
                          pip_options=local(wheelhouse))
    assert set(report.installed) == {"seg-dummy-sam-2.0", "seg-dummy-core-1.0"}  # the dependency came along
    assert os.path.isfile(os.path.join(target, "segdummysam", "__init__.py"))
    assert percents == sorted(percents) and percents[-1] == 100.0 and any(ln.startswith("Successfully") for ln in lines)
    log = open(report.log_path).read()
    assert report.log_path == os.path.join(os.path.dirname(target), "install.log")
    assert "--target" in log and "Successfully installed" in log and "=== exit status 0" in log
    assert not [n for n in os.listdir(os.path.dirname(target)) if n.startswith("constraints-")]

    # Installed but not active: found in the private folder, still not importable.
    statuses = deps.check(target, DUMMIES)
    assert [(s.state, s.version, s.location) for s in statuses] == [("ok", "2.0", "private"), ("ok", "1.0", "private")]
    code = ("import sys; from seg_qgis_plugin import deps; t = sys.argv[1]; "
            "import importlib.util as u; print(u.find_spec('segdummysam') is None); "
            "print(deps.activate(t), deps.activate(t), sys.path[-1] == t); "
            "import segdummysam; print(segdummysam.VALUE)")
    out = subprocess.run([sys.executable, "-c", code, target], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:3] == ["True", "True False True", "seg-dummy-sam 2.0"]


def test_what_the_host_has_is_pinned_to_its_version_and_never_copied(wheelhouse, tmp_path):
    import importlib.metadata as md

    target = deps.private_folder(str(tmp_path))
    report = installer.install(["seg-dummy-needs-host==1.0"], target, pip_options=local(wheelhouse))
    log = open(report.log_path).read()
    assert f"pytest-{md.version('pytest')}" in log and "pytest-99.0" not in log  # the host's version, not the newest
    assert report.installed == ("seg-dummy-needs-host-1.0",)
    assert sorted(os.listdir(target)) == ["seg_dummy_needs_host-1.0.dist-info", "segdummyneedshost"]


def test_failed_install_is_one_sentence_and_leaves_everything_usable(wheelhouse, tmp_path):
    target = deps.private_folder(str(tmp_path))
    installer.install(["seg-dummy-core==1.0"], target, pip_options=local(wheelhouse))
    before = sorted(os.listdir(target))
    path_before = list(sys.path)

    with pytest.raises(deps.InstallError) as err:
        installer.install(["seg-dummy-sam==2.0", "seg-not-in-folder==1.0"], target, pip_options=local(wheelhouse))
    message = str(err.value)
    assert message.startswith("Installing seg-dummy-sam==2.0 seg-not-in-folder==1.0 failed: ")
    assert "pip found no seg-not-in-folder==1.0 for Python" in message
    assert message.endswith(f"the log is {os.path.join(tmp_path, 'seg_deps', 'install.log')}.") and "\n" not in message
    assert sorted(os.listdir(target)) == before  # nothing half-installed, the earlier package intact
    assert sys.path == path_before
    assert [s.state for s in deps.check(target, DUMMIES)] == ["missing", "ok"]
    assert "=== exit status 1" in open(os.path.join(tmp_path, "seg_deps", "install.log")).read()


def test_cancel_stops_pip_and_installs_nothing(wheelhouse, tmp_path):
    target = deps.private_folder(str(tmp_path))

    class CancelAtOnce:
        def set_progress(self, p):
            pass

        def is_canceled(self):
            return True

    with pytest.raises(Canceled, match="Installing was canceled; the log is"):
        installer.install(["seg-dummy-sam==2.0"], target, progress=CancelAtOnce(), pip_options=local(wheelhouse))
    assert os.listdir(target) == []


def test_pins_agree_with_the_development_environment():
    """One requirements table in deps.py; the versions requirements.txt and constraints.txt pin
    for the development environment must lie inside its ranges."""
    from packaging.requirements import Requirement

    pinned = {}
    for name in ("requirements.txt", "requirements-sam2.txt", "constraints.txt"):
        path = os.path.join(REPO, name)
        if not os.path.isfile(path):
            pytest.skip(f"{name} is not beside the checkout")
        for line in open(path):
            line = line.split("#")[0].strip()
            if "==" in line:
                dist, version = line.split("==")
                pinned[dist.strip().lower()] = version.strip()
    for req in deps.PINS:
        if req.pin:
            wanted = Requirement(req.pin)
            assert wanted.name in pinned, f"the dev environment does not pin {wanted.name}"
            assert wanted.specifier.contains(pinned[wanted.name]), f"deps.PINS asks for {req.pin}, the dev environment has {pinned[wanted.name]}"
            if wanted.name not in ("torch", "torchvision"):  # a pair built for each other, pinned together
                assert "==" not in req.pin, f"{req.pin}: an exact pin the index may lack for another Python"


def test_constraints_never_hold_packaging_tools_or_debian_versions():
    host = {"setuptools": "66.1.1", "certifi": "2026.10.23", "pip": "23.0.1", "wheel": "0.38.4", "lz4": "4.4.0+dfsg",
            "numpy": "1.24.2", "mpmath": "0.0.0"}
    assert installer.host_constraints((), host) == ["lz4==4.4.0", "numpy==1.24.2"]


def test_a_constraint_the_index_lacks_is_dropped_and_pip_runs_again(wheelhouse, tmp_path, monkeypatch):
    """The host has pytest at a version the index does not offer (as Debian's certifi was): the
    installer drops that constraint and installs."""
    host = installer.host_distributions()
    monkeypatch.setattr(installer, "host_distributions", lambda exclude=None: dict(host, pytest="7.0.0.post999"))
    target = deps.private_folder(str(tmp_path))
    report = installer.install(["seg-dummy-needs-host==1.0"], target, pip_options=local(wheelhouse))
    assert report.installed == ("pytest-99.0", "seg-dummy-needs-host-1.0")
    assert "(QGIS's own) does not fit: trying again without it" in open(report.log_path).read()
    # the copy pip installed instead is kept, and comes before QGIS's own once the plugin loads
    assert installer.preferred_modules(target) == ["pytest_copy"] and os.path.isdir(os.path.join(target, "pytest_copy"))
    # a later group's run drops only the host copies it installed itself: this one stays
    installer.install(["seg-dummy-core==1.0"], target, pip_options=local(wheelhouse))
    assert os.path.isdir(os.path.join(target, "pytest_copy")) and os.path.isdir(os.path.join(target, "segdummycore"))


def test_groups_install_separately_and_an_optional_failure_never_blocks_the_core(wheelhouse, tmp_path):
    broken = deps.Requirement("segnotthere", ("seg-not-there",), "seg-not-there==1.0", "1.0", "sam", "the test")
    target = deps.private_folder(str(tmp_path))
    outcomes = installer.install_groups(deps.check(target, DUMMIES[1:] + (broken,)), deps.GROUPS, target, pip_options=local(wheelhouse))
    assert [(o.group, o.installed, bool(o.error)) for o in outcomes] == [("core", ("seg-dummy-core-1.0",), False),
                                                                        ("sam", (), True)]
    sentence = installer.outcome_sentence(outcomes)
    assert sentence.startswith("Installed the engine. SAM on torch could not be installed (Installing seg-not-there==1.0 failed: ")
    assert "\n" not in sentence and sentence.endswith(".")
    core_broken = deps.Requirement("segnotthere", ("seg-not-there",), "seg-not-there==1.0", "1.0", "core", "x")
    with pytest.raises(deps.InstallError):
        installer.install_groups(deps.check(target, (core_broken,)), deps.GROUPS, target, pip_options=local(wheelhouse))


def test_an_unreachable_extra_index_costs_seconds(monkeypatch):
    import time

    monkeypatch.setattr(installer, "CPU_TORCH_INDEX", "https://seg-no-such-host.invalid/whl/cpu")
    monkeypatch.setattr(installer.platform, "system", lambda: "Linux")
    lines = []
    started = time.monotonic()
    assert installer._torch_index(["torch>=2.1,<3"], [], lines.append) == []
    assert time.monotonic() - started < installer.PROBE_SECONDS + 2
    assert "does not answer" in lines[0]
    assert installer._torch_index(["shapely"], [], lines.append) == [] and len(lines) == 1  # no probe without torch


def test_steps_name_the_download_and_its_size():
    assert installer.describe_step("Downloading torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl (526.6 MB)") == \
        "Downloading torch 2.13.0 (526.6 MB)"
    assert installer.describe_step("Collecting rasterio<2,>=1.3") == "Resolving rasterio<2,>=1.3"
    assert installer.describe_step("  Using cached x") is None


def test_one_sentence_about_what_is_missing(monkeypatch):
    monkeypatch.setattr(deps, "_advice", {})  # outside QGIS: pip; inside: the Install dependencies button
    assert deps.sentence_for(("sam",), ["torch", "torchvision"]) == (
        'SAM on torch needs torch and torchvision, which are not installed: install with: pip install "seg-qgis-plugin[sam]".')
    assert deps.sentence_for(("core",), []) == ""
    deps.advise_from_qgis()
    assert deps.sentence_for(("assist",), ["lightgbm"]) == ("The assistant needs lightgbm, which is not installed: press Install "
                                                            "dependencies in the Seg dock (or Plugins > Seg), then restart QGIS.")


def test_shapely_is_fitted_to_the_geos_qgis_loaded():
    assert deps.fit_to_loaded_geos("shapely>=2.0,<3", (3, 11)) == "shapely>=2.0,<2.1"
    assert deps.fit_to_loaded_geos("shapely>=2.0,<3", (3, 13)) == "shapely>=2.0,<3"
    assert deps.fit_to_loaded_geos("shapely>=2.0,<3", None) == "shapely>=2.0,<3"
    assert deps.fit_to_loaded_geos("rasterio>=1.3,<2", (3, 11)) == "rasterio>=1.3,<2"
