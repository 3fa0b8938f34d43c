"""The real QGIS desktop for tests: `qgis` under Xvfb, a fresh profile, the plugin from the built zip,
driven from inside by driver.py (`qgis --code`). Loaded by path from test_desktop.py; holds no tests.

    zip_path = build_plugin_zip(folder)                 # tools/build_plugin.py, once per session
    run = run_desktop(work, zip_path, "venv", {"SEG_DRIVER_CHECKPOINT": checkpoint})
    run.result, run.log, run.alive                      # driver's result.json, QGIS's output, still running?

Environment kinds, all started with `env -i` (nothing of the caller's environment leaks in):
- "stock": QGIS's own Python only, as a new user has it;
- "venv": the project's .venv site-packages on PYTHONPATH;
The host's QGIS 3.22, or (root=) a chroot of Debian trixie (QGIS 3.40) or sid (QGIS 3.44) made by
tools/qgis_chroot.sh: QGIS runs there with /proc and /dev mounted for the run, on the host's Xvfb.
The dock's own installer is driven from inside (driver.py's "install" scenario), then QGIS restarts
on the same profile.
"""
from __future__ import annotations

import glob
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("driver.py")
SYSTEM_PYTHON = "/usr/bin/python3"
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
RESULT_TIMEOUT = 360.0  # the driver's own waits add up to less
ENV_KINDS = ("stock", "venv")


@dataclass
class DesktopRun:
    result: Dict  # what driver.py wrote ({} if it wrote nothing)
    log: str  # QGIS's stdout and stderr
    alive: bool  # QGIS was still running after the driver finished
    returncode: Optional[int]  # QGIS's exit status when it ended by itself, else None
    seconds: float  # from starting QGIS to the driver's last word
    profiles: Optional[Path] = None  # the --profiles-path it ran on (a restart reuses it)


def missing_tools() -> List[str]:
    return [name for name in ("qgis", "Xvfb", SYSTEM_PYTHON) if shutil.which(name) is None]


def venv_site_packages() -> Optional[str]:
    found = sorted(glob.glob(str(ROOT / ".venv" / "lib" / "python3*" / "site-packages")))
    return found[0] if found else None


def build_plugin_zip(folder: Path) -> Path:
    """The installable plugin zip, built by tools/build_plugin.py into `folder`."""
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "build_plugin.py"), "--out", str(folder)],
                          capture_output=True, text=True, timeout=300)
    zips = sorted(Path(folder).glob("*.zip"))
    if done.returncode != 0 or len(zips) != 1:
        raise RuntimeError(f"building the plugin failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return zips[0]


def make_profile(work: Path, plugin_zip: Path) -> Path:
    """A fresh QGIS profile folder tree under `work` with the plugin unzipped and enabled; returns
    the --profiles-path (the profile itself is <it>/profiles/default)."""
    profiles = work / "profiles"
    profile = profiles / "profiles" / "default"
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True)
    (profile / "QGIS").mkdir()
    with zipfile.ZipFile(plugin_zip) as archive:
        archive.extractall(plugins)
    (profile / "QGIS" / "QGIS3.ini").write_text(
        "[PythonPlugins]\nseg_qgis_plugin=true\nprocessing=true\n[qgis]\nshowTips=false\ncheckVersion=false\n")
    return profiles


def run_desktop(work: Path, plugin_zip: Path, env_kind: str, extra_env: Optional[Dict[str, str]] = None,
                timeout: float = RESULT_TIMEOUT, root: Optional[Path] = None, profiles: Optional[Path] = None) -> DesktopRun:
    """Start QGIS on a fresh profile in `work` (or on `profiles`, a profile an earlier run left) with
    driver.py, wait for its final result (at most `timeout` s), then close QGIS (always).
    root: a chroot holding another QGIS (tools/qgis_chroot.sh); `work` must then lie inside it."""
    if env_kind not in ENV_KINDS:
        raise ValueError(f"env_kind must be one of {ENV_KINDS}, not {env_kind!r}")
    inner = (lambda path: "/" + os.path.relpath(path, root)) if root else str
    work, home, runtime = Path(work), Path(work) / "home", Path(work) / "runtime"
    home.mkdir()
    runtime.mkdir(mode=0o700)
    profiles = profiles or make_profile(work, plugin_zip)
    driver = work / DRIVER.name
    shutil.copy(DRIVER, driver)
    out = work / "result.json"
    env = {"HOME": inner(home), "PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": inner(runtime), "LANG": "C.UTF-8",
           "SEG_DRIVER_OUT": inner(out), **PIP_ENV, **(extra_env or {})}
    if env_kind == "venv":
        env["PYTHONPATH"] = venv_site_packages() or ""
    log_path = work / "qgis.log"
    command = ["qgis", "--profiles-path", inner(profiles), "--nologo", "--noversioncheck", "--code", inner(driver)]
    with mounted(root), xvfb() as display, open(log_path, "wb") as log:
        env["DISPLAY"] = display
        started = time.monotonic()
        qgis = subprocess.Popen(([CHROOT, str(root)] if root else []) + command, env=env, cwd=work,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            result = wait_for_result(qgis, out, timeout)
            seconds = time.monotonic() - started
            time.sleep(2)  # a crash right after the last step counts
            alive = qgis.poll() is None
            returncode = qgis.returncode
        finally:
            stop(qgis)
    return DesktopRun(result, log_path.read_text(errors="replace"), alive, returncode, seconds, profiles)


# pip as on a user's machine: the real index, no machine-wide pip configuration (this machine's points at
# local wheel folders), and a download cache kept between runs.
PIP_ENV = {"PIP_CONFIG_FILE": os.devnull, "PIP_CACHE_DIR": "/var/cache/seg/pip"}


@contextmanager
def mounted(root: Optional[Path]):
    """/proc and /dev inside the chroot `root` for as long as QGIS runs there (nothing for the host)."""
    done = []
    try:
        for source in ([] if root is None else ["/proc", "/dev"]):
            target = os.path.join(root, source.lstrip("/"))
            subprocess.run(["mount", "--rbind", source, target], check=True, capture_output=True)
            done.append(target)
        yield
    finally:
        for target in reversed(done):
            subprocess.run(["umount", "-R", "-l", target], capture_output=True)


def chroot_root(suite: str) -> Optional[Path]:
    """The finished chroot of Debian `suite` (tools/qgis_chroot.sh), or None."""
    root = Path(os.environ.get("SEG_CHROOTS", "/var/cache/seg/chroots")) / suite
    return root if (root / ".seg-ready").is_file() else None


def chroot_work(root: Path, name: str) -> Path:
    """A fresh folder inside the chroot for one run."""
    return Path(tempfile.mkdtemp(prefix=f"seg-{name}-", dir=Path(root) / "tmp"))


def wait_for_result(process: subprocess.Popen, out: Path, timeout: float) -> Dict:
    """The driver's result once it says done, or whatever it last wrote when QGIS ends or time runs out."""
    deadline = time.monotonic() + timeout
    result: Dict = {}
    while time.monotonic() < deadline:
        if out.exists():
            result = json.loads(out.read_text())
            if result.get("done"):
                break
        if process.poll() is not None:
            break
        time.sleep(0.5)
    return result


@contextmanager
def xvfb():
    """An Xvfb server on a display number it picks itself (-displayfd), so runs never clash; yields ":N".
    Xvfb writes the number and then a newline, and dies if the pipe is closed in between."""
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(write)
    try:
        answer, deadline = b"", time.monotonic() + 30
        while not answer.endswith(b"\n") and time.monotonic() < deadline and server.poll() is None:
            if select.select([read], [], [], 0.5)[0]:
                answer += os.read(read, 64)
        if not answer.endswith(b"\n"):
            raise RuntimeError(f"Xvfb did not start (exit status {server.poll()})")
        yield ":" + answer.decode().strip()
    finally:
        stop(server)
        os.close(read)


def stop(process: subprocess.Popen) -> None:
    """End a process started with start_new_session=True and everything in its process group."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
