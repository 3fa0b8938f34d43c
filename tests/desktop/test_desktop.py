"""The plugin in the real QGIS desktop (qgis under Xvfb, a fresh profile, the built zip), driven
from inside QGIS by driver.py, in three Python environments (see desktop_runner.py).

Each run takes a minute or more; the log and result of a failed run are in the assertion message.
"""
from __future__ import annotations

import importlib.util
import pathlib
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
    assert not run.result["errors"], explain(run)
    assert run.result["features"] >= features, explain(run)
    assert run.result["processing_ok"], explain(run)


def test_stock_qgis_loads_the_plugin_and_the_dock_says_what_is_missing(tmp_path, plugin_zip):
    run = runner.run_desktop(tmp_path, plugin_zip, "stock")
    assert_started(run)
    missing, core_missing = set(run.result["missing"]), set(run.result["core_missing"])
    assert core_missing, "QGIS's own Python unexpectedly has every package Seg needs\n" + explain(run)
    assert core_missing <= missing, (f"the dock does not name {sorted(core_missing - missing)} as missing; it says:\n"
                                     + run.result["dock_text"] + "\n" + explain(run))


@pytest.mark.skipif(not runner.wheelhouse().is_dir(),
                    reason=f"no wheelhouse at {runner.wheelhouse()} (set SEG_WHEELHOUSE, or let the Makefile build it)")
def test_plugin_installed_dependencies_label_and_process(tmp_path, plugin_zip):
    run = runner.run_desktop(tmp_path, plugin_zip, "installed")
    assert_labeled(run, 2)


@pytest.mark.skipif(runner.venv_site_packages() is None, reason="the project's .venv does not exist (make venv)")
def test_venv_labels_with_classic_sam_and_postgis_and_processes(tmp_path, plugin_zip, tiny_checkpoint):
    """With a PostgreSQL server (tools/start_postgis.sh) one label goes into a PostGIS table through
    QGIS's own postgres provider, beside the GeoPackage labels."""
    env = {"SEG_DRIVER_CHECKPOINT": tiny_checkpoint}
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
    assist = run.result["assist"] or {}
    assert (assist.get("features") or 0) >= 3 and assist["info"].startswith("Learned"), "the assistant in QGIS\n" + explain(run)
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
