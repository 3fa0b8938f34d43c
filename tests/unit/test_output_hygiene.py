"""What a run leaves on disk besides its outputs: every output file gets the mode of a new file
(umask respected, whatever writer made it), and staging left by a killed run is removed by the next
run writing to that folder."""
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
from shapely.geometry import box

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.errors import OutputError
from seg_qgis_plugin.core.outputs import staging
from seg_qgis_plugin.core.outputs.atomic import (TEMP_PREFIX, atomic_folder, atomic_path, remove_stale_staging,
                                                 write_json_atomic, write_text_atomic)
from seg_qgis_plugin.core.quality.table import write_layer

UTM = "EPSG:32633"


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def _labels(path, dx=0.0):
    geoms = [box(500000 + dx + 30 * k, 4650000, 500010 + dx + 30 * k, 4650010) for k in range(3)]
    geoms.append(box(500000, 4650000, 500010, 4650010))  # a duplicate: qa finds something to report and fix
    write_layer(str(path), geoms, {"class": ["a", "a", "b", "a"], "score": [0.9, 0.8, 0.7, 0.6]}, UTM)
    return str(path)


def _modes(folder, skip=()):
    return {name: oct(os.stat(os.path.join(folder, name)).st_mode & 0o777)
            for name in os.listdir(folder) if name not in skip}


def test_every_output_of_the_quality_commands_gets_the_mode_of_a_new_file(tmp_path, umask_027):
    (tmp_path / "in").mkdir()
    labels = _labels(tmp_path / "in" / "l.gpkg")
    other = _labels(tmp_path / "in" / "m.gpkg", dx=1.0)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["qa", labels, "--out", str(out / "f.gpkg"), "--report", str(out / "qa.json"), "--fix",
                 str(out / "fixed.gpkg"), "--html", str(out / "qa.html")]) == 1
    assert main(["agreement", labels, other, "--out", str(out / "ag.json"), "--unmatched", str(out / "u.gpkg"),
                 "--html", str(out / "ag.html")]) == 0
    modes = _modes(out)
    assert len(modes) == 7 and set(modes.values()) == {oct(0o640)}, modes


def test_the_atomic_writers_respect_the_umask(tmp_path, umask_027):
    write_text_atomic(str(tmp_path / "a.txt"), "x")
    write_json_atomic(str(tmp_path / "b.json"), {"a": 1})
    with atomic_path(str(tmp_path / "c.bin")) as tmp:
        open(tmp, "wb").close()
    with atomic_folder(str(tmp_path / "d")) as tmp:
        open(os.path.join(tmp, "e.txt"), "w").close()
    assert _modes(tmp_path) == {"a.txt": "0o640", "b.json": "0o640", "c.bin": "0o640", "d": "0o750"}
    assert oct(os.stat(tmp_path / "d" / "e.txt").st_mode & 0o777) == "0o640"


def test_json_never_holds_nan(tmp_path):
    with pytest.raises(OutputError, match=r"rows\[1\]\.iou is not a finite number"):
        write_json_atomic(str(tmp_path / "r.json"), {"rows": [{"iou": 1.0}, {"iou": float("nan")}]})
    assert os.listdir(tmp_path) == []


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_staging_of_dead_processes_is_removed_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.setattr(staging, "_CLEANED", set())
    host = staging._host_tag()
    dead, alive = _dead_pid(), os.getppid()
    names = {"dead_folder": f"{TEMP_PREFIX}{dead}-{host}-abc", "dead_file": f"{TEMP_PREFIX}{dead}-{host}-xyz.json",
             "alive": f"{TEMP_PREFIX}{alive}-{host}-abc", "other_host": f"{TEMP_PREFIX}{dead}-00000000-abc",
             "old_form": f"{TEMP_PREFIX}k2j3h4"}
    for key, name in names.items():
        if key == "dead_file":
            (tmp_path / name).write_text("{}")
        else:
            (tmp_path / name).mkdir()
            (tmp_path / name / "chip.png").write_bytes(b"x" * 1000)
    assert host != "00000000"
    write_text_atomic(str(tmp_path / "out.txt"), "x")
    left = set(os.listdir(tmp_path))
    assert left == {"out.txt", names["alive"], names["other_host"], names["old_form"]}
    assert remove_stale_staging(str(tmp_path)) == 0  # once per folder and process


@pytest.mark.parametrize("writer", ["atomic_path", "atomic_folder", "write_text_atomic", "qa"])
def test_a_sigkilled_run_leaves_staging_that_the_next_run_removes(tmp_path, writer):
    labels = _labels(tmp_path / "l.gpkg")
    out = tmp_path / "out"
    out.mkdir()
    body = {
        "atomic_path": "with atomic_path(sys.argv[1] + '/a.bin') as tmp:\n    open(tmp, 'wb').write(b'x' * 100000)\n    hold()",
        "atomic_folder": "with atomic_folder(sys.argv[1] + '/chips') as tmp:\n    open(tmp + '/c.png', 'wb').write(b'x')\n    hold()",
        "write_text_atomic": "os.replace = lambda *a: hold()\nwrite_text_atomic(sys.argv[1] + '/s.txt', 'x')",
        "qa": "os.replace = lambda *a: hold()\nfrom seg_qgis_plugin.cli.main import main\n"
              "main(['qa', sys.argv[2], '--out', sys.argv[1] + '/f.gpkg', '--report', sys.argv[1] + '/r.json'])",
    }[writer]
    script = textwrap.dedent("""\
        import os, sys, time
        from seg_qgis_plugin.core.outputs import staging
        from seg_qgis_plugin.core.outputs.atomic import atomic_path, atomic_folder, write_text_atomic
        def hold():
            print('ready', flush=True)
            time.sleep(60)
        """) + body + "\n"
    child = subprocess.Popen([sys.executable, "-c", script, str(out), labels], stdout=subprocess.PIPE, text=True)
    try:
        lines = iter(child.stdout.readline, "")
        assert any(line.strip() == "ready" for line in lines)  # (a command may print before it publishes)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert any(n.startswith(TEMP_PREFIX) for n in os.listdir(out))
    assert main(["qa", labels, "--out", str(out / "next.gpkg")]) == 1
    assert not [n for n in os.listdir(out) if n.startswith(TEMP_PREFIX)], os.listdir(out)


def test_staging_names_carry_the_process_and_host():
    prefix = staging._staging_prefix()
    assert prefix.startswith(f"{TEMP_PREFIX}{os.getpid()}-") and len(prefix.split("-")[-2]) == 8
    assert socket.gethostname()  # the host tag is a hash of it
