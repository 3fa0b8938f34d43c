"""The plugin in the real QGIS desktop (qgis under Xvfb, a fresh profile, the built zip), driven
from inside QGIS by driver.py, in three Python environments (see desktop_runner.py).

Each run takes a minute or more; the log and result of a failed run are in the assertion message.
"""
from __future__ import annotations

import importlib.util
import pathlib
import shutil
import sys

import pytest


def load_runner():
    path = pathlib.Path(__file__).with_name("desktop_runner.py")
    spec = importlib.util.spec_from_file_location("seg_test_desktop_runner", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


runner = load_runner()
MISSING = runner.missing_tools()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"the desktop tests need {', '.join(MISSING)} "
                                                      "(apt-get install qgis xvfb python3-pip)")
MAX_FREEZE_S = 20.0  # longest the UI thread may be blocked (importing torch on a busy 2-core machine takes seconds)


@pytest.fixture(scope="session")
def plugin_zip(tmp_path_factory):
    return runner.build_plugin_zip(tmp_path_factory.mktemp("plugin-zip"))


def explain(run) -> str:
    errors = "\n".join(run.result.get("errors", []))
    messages = "\n".join(run.result.get("messages", []))
    return (f"QGIS alive: {run.alive} (exit status {run.returncode}); steps: {run.result.get('steps')}\n"
            f"driver errors:\n{errors}\nQGIS messages:\n{messages}\nQGIS log (tail):\n{run.log[-3000:]}")


def assert_started(run):
    assert run.result.get("done"), "the driver did not finish\n" + explain(run)
    assert run.alive, "QGIS was no longer running when the driver finished\n" + explain(run)
    assert run.result["plugin_loaded"], "QGIS did not load the plugin\n" + explain(run)
    assert run.result["dock_opened"], "the Seg dock did not open\n" + explain(run)
    freeze = run.result["longest_freeze"]
    assert freeze["seconds"] < MAX_FREEZE_S, (f"QGIS did not respond for {freeze['seconds']} s during {freeze['stage']}; "
                                              f"where its threads were:\n{run.result['freeze_stacks']}\n" + explain(run))


def assert_labeled(run, features):
    assert_started(run)
    lines = run.log.splitlines() + run.result.get("messages", [])
    deprecated = [line for line in lines if "deprecat" in line.lower() and ("seg_qgis_plugin" in line or line.startswith("Seg:"))]
    assert not deprecated, "QGIS logged deprecations from Seg:\n" + "\n".join(deprecated[:20])
    assert not run.result["errors"], explain(run)
    assert run.result["features"] >= features, explain(run)
    assert run.result["processing_ok"], explain(run)
    review = run.result["review"] or {}
    # a tab of its own: six fields or more in view at once (stacked under the Seg dock it showed one and a half)
    assert review.get("tabbed") and review["fields"] > 0 and review["rows_shown"] >= 6, f"the review panel: {review}\n" + explain(run)
    # Accept: saved to the file at once, the layer out of edit mode, the message names the layer and the feature
    assert review["reviewed_on_disk"] == 1 and not review["editable"] and ": feature " in review["message"] and "accepted" in review["message"], f"the review panel: {review}\n" + explain(run)


def assert_assisted(run):
    """Learn from accepted labels added its pre-labels (by class), uncertainty and probability (unticked)."""
    assist = run.result["assist"] or {}
    assert (assist.get("features") or 0) >= 3 and "Learned from" in assist["info"], "the assistant in QGIS\n" + explain(run)
    assert assist["renderers"] == {"squares_assist1": "categorizedSymbol", "squares_assist1 probability": "singlebandpseudocolor",
                                   "squares_assist1 uncertainty": "singlebandpseudocolor"}, assist
    assert assist["probability_ticked"] is False, assist


QGIS_VERSIONS = {"3.22": None, "3.40": "trixie", "3.44": "sid"}  # the host's QGIS, then Debian chroots
INSTALL_TIMEOUT_S = 1800  # the dock's default install from the real index, SAM on torch included


@pytest.fixture(params=list(QGIS_VERSIONS), ids=[f"qgis{v}" for v in QGIS_VERSIONS])
def qgis_root(request):
    """None for the host's QGIS 3.22, else the chroot holding QGIS 3.40 (trixie) or 3.44 (sid)."""
    suite = QGIS_VERSIONS[request.param]
    if suite is None:
        return None
    root = runner.chroot_root(suite)
    if root is None:
        pytest.skip(f"no {suite} chroot with QGIS {request.param} (tools/qgis_chroot.sh {suite}; make test builds it)")
    return root


@pytest.fixture
def work(tmp_path, qgis_root):
    """Where a run keeps its files: inside the chroot for a chroot's QGIS."""
    if qgis_root is None:
        yield tmp_path
        shutil.rmtree(tmp_path / "profiles", ignore_errors=True)  # gigabytes of torch in the private folder
        return
    folder = runner.chroot_work(qgis_root, "desktop")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_stock_qgis_loads_the_plugin_and_the_dock_says_what_is_missing(work, qgis_root, plugin_zip):
    run = runner.run_desktop(work, plugin_zip, "stock", root=qgis_root)
    assert_started(run)
    missing, core_missing = set(run.result["missing"]), set(run.result["core_missing"])
    assert core_missing, "QGIS's own Python unexpectedly has every package Seg needs\n" + explain(run)
    assert core_missing <= missing, (f"the dock does not name {sorted(core_missing - missing)} as missing; it says:\n"
                                     + run.result["dock_text"] + "\n" + explain(run))


def test_default_install_from_the_index_then_restart_labels_with_classic_and_sam(work, qgis_root, plugin_zip, tiny_checkpoint,
                                                                                   sam21_tiny_exported):
    """As a new user: the dock's Install dependencies with its defaults (SAM ticked) from the real
    package index, restart QGIS, then classic point and box, a SAM click and a SAM 2.1 click on torch
    with random-weight checkpoints through the dock's model picker, the assistant and one Processing
    algorithm."""
    run = runner.run_desktop(work, plugin_zip, "stock", {"SEG_DRIVER_SCENARIO": "install"}, timeout=INSTALL_TIMEOUT_S + 120,
                             root=qgis_root)
    assert_started(run)
    install = run.result.get("install") or {}
    assert install.get("sam_ticked"), "SAM is not the installer's default\n" + explain(run)
    assert install.get("ok") and "SAM on torch" in install["message"] and "could not" not in install["message"], \
        f"the default install: {install}\n" + explain(run)
    assert any(step.startswith("Downloading torch") and "MB)" in step for step in install["steps"]), install["steps"]
    assert "SAM 2.1 on torch" in install["message"], install["message"]
    checkpoint, sam21 = work / "sam_vit_tiny.pth", work / "sam21_tiny.pt"
    shutil.copy(tiny_checkpoint, checkpoint)
    shutil.copy(sam21_tiny_exported[0], sam21)
    restart = work / "restart"
    restart.mkdir()
    inner = {name: str(path) if qgis_root is None else "/" + str(path.relative_to(qgis_root))
             for name, path in (("SEG_DRIVER_CHECKPOINT", checkpoint), ("SEG_DRIVER_SAM21_CHECKPOINT", sam21))}
    again = runner.run_desktop(restart, plugin_zip, "stock", inner, root=qgis_root, profiles=run.profiles)
    assert_labeled(again, 2 if again.result.get("sam_empty_mask") else 3)
    assert "label_with_sam" in again.result["steps"], explain(again)
    assert not again.result["missing"], "after the default install the dock still names as missing:\n" + again.result["dock_text"]
    assert (again.result["sam21"] or {}).get("model") == "sam2.1-hiera_tiny", explain(again)
    assert_assisted(again)


@pytest.mark.skipif(runner.venv_site_packages() is None, reason="the project's .venv does not exist (make venv)")
def test_venv_labels_with_classic_sam_and_postgis_and_processes(tmp_path, plugin_zip, tiny_checkpoint, sam21_tiny_exported):
    """With a PostgreSQL server (tools/start_postgis.sh) one label goes into a PostGIS table through
    QGIS's own postgres provider, beside the GeoPackage labels. Last, Start with SAM 2.1 Hiera-Tiny
    (ONNX, random weights) on a new raster and one click: the seconds from Start to the mask are
    printed (a measurement, not a pass mark: bench/bench_first_mask.py is the benchmark)."""
    env = {"SEG_DRIVER_CHECKPOINT": tiny_checkpoint, "SEG_DRIVER_FIRST_MASK_MODEL": sam21_tiny_exported[1]}
    table = postgis_table()
    if table:
        env["SEG_DRIVER_PG"] = table
    try:
        run = runner.run_desktop(tmp_path, plugin_zip, "venv", env)
    finally:
        if table:
            drop(table)
    expected = 2 if run.result.get("sam_empty_mask") else 3
    assert_labeled(run, expected)
    assert_assisted(run)
    first = run.result["first_mask"] or {}
    assert first.get("model") == "sam2.1-hiera_tiny" and first.get("mask_pixels", 0) > 0, "SAM 2.1 in QGIS\n" + explain(run)
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench"))
    from common import machine

    facts = machine(threads=2)
    print(f"\nQGIS {first['qgis']} desktop, SAM 2.1 Hiera-Tiny ONNX fp32, new 1024 x 1024 raster: "
          f"Start to first mask {first['start_to_first_mask_s']} s (session open {first['start_to_session_s']} s), "
          f"{facts['cpu']} ({facts['cores']} cores; {' '.join(facts['flags']) or 'no avx2'}), "
          f"load average {first['load_average'][0]:.2f}", file=sys.__stderr__)
    serial, on_cluster = run.result["cluster_rows"] or (None, None)
    assert serial == on_cluster and serial[0] >= 2, "seg:prelabel on local:1 inside QGIS\n" + explain(run)
    if table:
        count, version, label_class = run.result["postgis_rows"] or (None, None, None)
        assert (count, version) == (1, 1) and label_class, explain(run)


def postgis_table():
    """A fresh table name on the test server, or None when none answers (the PostGIS stage is then left out)."""
    import os
    import uuid

    try:
        import psycopg2
    except ImportError:
        return None
    url = os.environ.get("SEG_TEST_PG", "postgresql://seg:seg@localhost:5432/seg_test")
    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except psycopg2.Error:
        return None
    return f"{url}?table=desktop_{uuid.uuid4().hex[:10]}"


def drop(target):
    import psycopg2

    dsn, table = target.split("?table=")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    conn.close()
