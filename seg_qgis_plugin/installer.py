"""Installing what Seg needs into its private folder with pip (the checking half is seg_qgis_plugin.core.dependencies).

QGIS-free and stdlib-only, so it runs inside QGIS's Python before any of Seg's packages exist.
`install_groups` installs one group at a time (deps.GROUPS), `install` one pip run: wheels only
(and three pure-Python source packages of SAM 2.1's), held to what QGIS's Python already has
(seg_qgis_plugin.host_packages), torch from PyTorch's CPU index when it answers, pip's lines logged
and turned into steps (`describe_step`), cancel and a timeout honoured.
"""
from __future__ import annotations

import os
import platform
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .core.dependencies import GROUP_NAMES, GROUPS, PINS, InstallError, Status, _join, _normalise, to_install
from .core.errors import Canceled, MissingDependency
from .core.progress import NullProgress, Progress
from .host_packages import (PREFERRED_FILE, UNPINNED, drop_host_copies, host_constraints, host_distributions,  # noqa: F401
                            impossible_constraint, preferred_modules, remember_newer, requirement_name, write_constraints)


# ---------------------------------------------------------------- finding a python to run pip


_PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)?)?w?(\.exe)?$", re.IGNORECASE)
_checked: Dict[str, bool] = {}


def find_python() -> str:
    """A Python executable of this interpreter's version to run pip with.

    Inside QGIS `sys.executable` is often QGIS itself ("qgis", "qgis-bin.exe"), which must never be
    run with `-m pip`. Candidates: sys.executable when it is a python, sys._base_executable, the
    interpreter next to sys.exec_prefix (OSGeo4W, the macOS bundle), then python3.X / python3 on PATH.
    Each must report the same major.minor version.
    """
    major, minor = sys.version_info[:2]
    names = ["python.exe", "python3.exe"] if os.name == "nt" else [f"python{major}.{minor}", "python3", "python"]
    candidates = []
    if _PYTHON_NAME.match(os.path.basename(sys.executable or "")):
        candidates.append(sys.executable)
    candidates.append(getattr(sys, "_base_executable", None))
    for prefix in dict.fromkeys([sys.exec_prefix, sys.base_exec_prefix]):
        for name in names:
            candidates += [os.path.join(prefix, name), os.path.join(prefix, "bin", name)]
    candidates += [shutil.which(f"python{major}.{minor}"), shutil.which("python3"), shutil.which("python")]
    for candidate in dict.fromkeys(c for c in candidates if c):
        if os.name == "nt" and os.path.basename(candidate).lower() == "pythonw.exe":
            candidate = os.path.join(os.path.dirname(candidate), "python.exe")
        if os.path.isfile(candidate) and _runs_this_version(candidate):
            return candidate
    raise MissingDependency(f"No Python {major}.{minor} executable was found next to QGIS to run pip with; "
                            f"install the packages by hand: pip install {' '.join(r.pin for r in PINS if r.pin)}.")


def _runs_this_version(python: str) -> bool:
    if python not in _checked:
        code = "import sys; print('%d.%d' % sys.version_info[:2])"
        try:
            out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60,
                                 **_no_window()).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        _checked[python] = out == "%d.%d" % sys.version_info[:2]
    return _checked[python]


def _no_window() -> dict:
    return {"creationflags": 0x08000000} if os.name == "nt" else {}  # CREATE_NO_WINDOW: no console flash


# ---------------------------------------------------------------- installing


@dataclass(frozen=True)
class InstallReport:
    installed: Tuple[str, ...]  # "name-version" as pip reports them
    target: str
    log_path: str


def install(requirements: Sequence[str], target: str, python: Optional[str] = None, log_path: Optional[str] = None,
            progress: Optional[Progress] = None, on_line: Optional[Callable[[str], None]] = None,
            pip_options: Sequence[str] = (), timeout: Optional[float] = None) -> InstallReport:
    """Install pip `requirements` (e.g. to_install(check(...))) into `target` with pip --target.

    Only wheels are taken (but see SOURCE_BUILD); what QGIS's Python already has is a constraint at
    its version (`host_constraints`), and a constraint the index cannot satisfy (a version only
    Debian has) is dropped and pip run again. pip_options go to pip as they are: `--no-index
    --find-links DIR` for a local wheel folder, `--index-url URL` for a mirror; with
    --no-build-isolation, a setuptools wheel is put on pip's path for the builds. torch comes from
    PyTorch's CPU index when that answers within seconds, else from the main index. Every pip
    output line goes to the log file (default `<target>/../install.log`) and to `on_line`;
    `progress` gets an estimate (pip reports no totals) and may cancel.
    Raises InstallError with pip's own reason and the log path, or Canceled.
    """
    requirements = list(requirements)
    if not requirements:
        raise InstallError("There is nothing to install: every requirement is already present.")
    progress = progress or NullProgress()
    python = python or find_python()
    target = os.path.abspath(target)
    log_path = log_path or os.path.join(os.path.dirname(target), "install.log")
    os.makedirs(target, exist_ok=True)
    host = host_distributions(target)
    pip_options = [*pip_options, *_torch_index(requirements, pip_options, on_line)]
    env = dict(os.environ, PIP_NO_INPUT="1", PYTHONIOENCODING="utf-8")
    newer: List[str] = []  # what Seg's packages need newer than QGIS's Python has
    building = "--no-build-isolation" in pip_options
    with open(log_path, "a", encoding="utf-8") as log, _build_tools(building, python, target, env, log, pip_options, progress, timeout) as tools:
        if tools:
            env.update(PYTHONPATH=os.pathsep.join(filter(None, (tools, env.get("PYTHONPATH")))), SAM2_BUILD_CUDA="0")
        for _ in range(4):
            constraints = write_constraints(os.path.dirname(target), host, requirements)
            command = [python, "-m", "pip", "install", "--target", target, "--upgrade", "--no-input", "--only-binary", ":all:",
                       "--disable-pip-version-check", "--progress-bar", "off", "-c", constraints, *pip_options, *requirements]
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {subprocess.list2cmdline(command)}\n")
            log.flush()
            try:
                rc, lines = _run_pip(command, env, log, progress, on_line, timeout)
            finally:
                os.remove(constraints)
            impossible = impossible_constraint(lines) if rc != 0 else None
            if impossible is None or impossible not in host:
                break
            log.write(f"=== {impossible}=={host.pop(impossible)} (QGIS's own) does not fit: trying again without it\n")
            newer.append(impossible)
    if rc != 0:
        raise InstallError(f"Installing {' '.join(requirements)} failed: {_reason(lines, rc)}; the log is {log_path}.")
    installed = next((ln.split("Successfully installed", 1)[1].split() for ln in reversed(lines)
                      if ln.startswith("Successfully installed")), [])
    # only this run's packages: one an earlier run kept newer than QGIS's (sympy for torch) stays
    ours = {_normalise(name.rsplit("-", 1)[0]) for name in installed}
    copies = drop_host_copies(target, {n: v for n, v in host_distributions(target).items() if n in ours and n not in newer})
    if newer:
        remember_newer(target, newer)
    installed = [name for name in installed if _normalise(name.rsplit("-", 1)[0]) not in copies]
    progress.set_progress(100.0)
    return InstallReport(tuple(installed), target, log_path)


# Pure-Python packages that PyPI has as source only: SAM 2.1's (Meta's sam2, whose optional CUDA
# extension SAM2_BUILD_CUDA=0 leaves out) and two of its helpers' dependencies, built here with a
# setuptools wheel and no compiler.
PURE_SOURCE = ("sam2", "iopath", "antlr4-python3-runtime")
SOURCE_BUILD = ("--no-binary", ",".join(PURE_SOURCE), "--no-build-isolation")
# QGIS's own Python may have no setuptools (QGIS 3.40 and 3.44 on Debian have none); from 70.1 it
# builds wheels without the wheel package
BUILD_TOOLS = "setuptools>=70.1"


@contextmanager
def _build_tools(needed: bool, python: str, target: str, env: dict, log, pip_options: Sequence[str],
                 progress: Progress, timeout: Optional[float]) -> Iterator[str]:
    """A folder holding setuptools from a wheel, for building without pip's build isolation (which
    would download sam2's declared build requirement, torch, once more); "" when not needed.
    Removed afterwards."""
    if not needed:
        yield ""
        return
    folder = tempfile.mkdtemp(prefix="build-tools-", dir=os.path.dirname(target))
    try:
        command = [python, "-m", "pip", "install", "--target", folder, "--no-input", "--only-binary", ":all:",
                   "--disable-pip-version-check", "--progress-bar", "off", *pip_options, BUILD_TOOLS]
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {subprocess.list2cmdline(command)}\n")
        rc, lines = _run_pip(command, env, log, progress, None, timeout)
        if rc != 0:
            raise InstallError(f"Installing {BUILD_TOOLS}, which builds SAM 2.1's packages, failed: {_reason(lines, rc)}; "
                               f"the log is {log.name}.")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _install_group(group: str, wanted: Sequence[str], target: str, **options) -> InstallReport:
    """One group's pip runs. sam2 goes in without its dependencies, after its helpers: it asks for
    a newer numpy than QGIS may have, and for torch, which the SAM group installs."""
    if group != "sam2":
        return install(wanted, target, **options)
    sam2 = [w for w in wanted if requirement_name(w) == "sam2"]
    helpers = [w for w in wanted if w not in sam2]
    pip_options = [*options.pop("pip_options", ()), *SOURCE_BUILD]
    reports = [install(part, target, pip_options=[*pip_options, *(["--no-deps"] if part is sam2 else [])], **options)
               for part in (helpers, sam2) if part]
    return InstallReport(tuple(name for r in reports for name in r.installed), target, reports[-1].log_path)


@dataclass(frozen=True)
class GroupOutcome:
    """One group's install: what was asked, what pip installed, and its error sentence ("" when it worked)."""

    group: str
    requirements: Tuple[str, ...]
    installed: Tuple[str, ...]
    error: str = ""


def install_groups(statuses: Sequence[Status], groups: Sequence[str], target: str,
                   progress: Optional[Progress] = None, **options) -> List[GroupOutcome]:
    """Install what is missing of `groups`, one pip run per group in GROUPS order, so that a group
    pip cannot install (no wheel yet for this Python, a download that fails) never blocks the
    others. The core group failing raises InstallError; the others are reported in the outcomes.
    `options` go to `install` (python, pip_options, on_line, log_path, timeout)."""
    progress = progress or NullProgress()
    plan = [(g, to_install(statuses, (g,))) for g in GROUPS if g in groups]
    plan = [(g, wanted) for g, wanted in plan if wanted]
    outcomes = []
    for index, (group, wanted) in enumerate(plan):
        part = _Part(progress, 100.0 * index / len(plan), 100.0 * (index + 1) / len(plan))
        try:
            report = _install_group(group, wanted, target, progress=part, **options)
        except InstallError as exc:
            if group == "core":
                raise
            outcomes.append(GroupOutcome(group, tuple(wanted), (), str(exc)))
            continue
        outcomes.append(GroupOutcome(group, tuple(wanted), report.installed))
    return outcomes


def outcome_sentence(outcomes: Sequence[GroupOutcome]) -> str:
    """What the installer says at the end: what works now, and for a group that failed, what to do."""
    done = [GROUP_NAMES[o.group] for o in outcomes if not o.error]
    failed = [o for o in outcomes if o.error]
    text = f"Installed {_join(done)}." if done else "Nothing new was installed."
    for outcome in failed:
        text += f" {GROUP_NAMES[outcome.group][0].upper()}{GROUP_NAMES[outcome.group][1:]} could not be installed ({outcome.error})"
        text += (" SAM still works from an exported ONNX model; press Install again later or give a mirror in pip options."
                 if outcome.group in ("sam", "sam2") and not any(o.group == "onnx" and o.error for o in outcomes)
                 else " Press Install again later, or give a mirror or a wheel folder in pip options.")
    return text


class _Part:
    """A slice [low, high] of a parent progress."""

    def __init__(self, parent: Progress, low: float, high: float):
        self.parent, self.low, self.high = parent, low, high

    def set_progress(self, percent: float) -> None:
        self.parent.set_progress(self.low + (self.high - self.low) * percent / 100.0)

    def is_canceled(self) -> bool:
        return self.parent.is_canceled()


# PyPI's Linux and Windows torch is the CUDA build (gigabytes, and it brings triton, which host.py keeps out of QGIS).
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
PROBE_SECONDS = 4.0


def _torch_index(requirements: Sequence[str], pip_options: Sequence[str], on_line=None) -> List[str]:
    wants_torch = any(requirement_name(r) in ("torch", "torchvision") for r in requirements)
    if not wants_torch or "--no-index" in pip_options or "--index-url" in pip_options or platform.system() == "Darwin":
        return []
    if _answers(CPU_TORCH_INDEX + "/torch/"):
        return ["--extra-index-url", CPU_TORCH_INDEX]
    if on_line is not None:
        on_line(f"PyTorch's CPU index ({CPU_TORCH_INDEX}) does not answer: torch comes from the main index "
                "(on Linux and Windows that is the larger CUDA build, about 3 GB).")
    return []


def _answers(url: str, seconds: float = PROBE_SECONDS) -> bool:
    """True when `url` answers an HTTP HEAD within `seconds` (an extra index pip would otherwise retry for minutes)."""
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=seconds):
            return True
    except Exception:  # noqa: BLE001 (DNS, TLS, proxy, HTTP errors all mean: do not use it)
        return False


def describe_step(line: str) -> Optional[str]:
    """pip's 'Downloading torch-2.13.0-cp311-...whl (526.6 MB)' as 'Downloading torch 2.13.0 (526.6 MB)';
    None for lines that are not a step worth showing."""
    match = re.match(r"\s*Downloading (?:\S*/)?([A-Za-z0-9_.]+?)-([0-9][^-]*)(?:-\S*)?\.(?:whl|tar\.gz|zip)\S*\s*(\(.*\))?", line)
    if match:
        name, version, size = match.groups()
        return f"Downloading {name.replace('_', '-')} {version}" + (f" {size}" if size else "")
    if line.startswith("Collecting "):
        return "Resolving " + line[len("Collecting "):].split(" (")[0].strip()
    if line.startswith("Installing collected packages"):
        return "Unpacking the downloaded packages"
    return None


def _run_pip(command, env, log, progress: Progress, on_line, timeout) -> Tuple[int, List[str]]:
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, text=True, encoding="utf-8", errors="replace", bufsize=1, **_no_window())
    except OSError as exc:
        raise InstallError(f"Cannot start {command[0]} to run pip ({exc.strerror or exc}).") from exc
    lines: "queue.Queue[Optional[str]]" = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    seen: List[str] = []
    percent, started, finished = 2.0, time.monotonic(), False
    progress.set_progress(percent)
    while not finished:
        canceled = progress.is_canceled()
        if canceled or (timeout is not None and time.monotonic() - started > timeout):
            _stop(proc)
            log.write("=== canceled\n" if canceled else "=== timed out\n")
            if canceled:
                raise Canceled(f"Installing was canceled; the log is {log.name}.")
            raise InstallError(f"Installing took longer than {timeout:g} s and was stopped; the log is {log.name}.")
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        if line is None:
            finished = True
            continue
        line = line.rstrip()
        seen.append(line)
        log.write(line + "\n")
        log.flush()
        if on_line is not None:
            on_line(line)
        percent = _estimate(line, percent)
        progress.set_progress(percent)
    rc = proc.wait()
    log.write(f"=== exit status {rc}\n")
    return rc, seen


def _pump(stream, lines: "queue.Queue[Optional[str]]") -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _estimate(line: str, percent: float) -> float:
    """pip prints no totals: each package found moves 20% of the way to 70%; installing is 85%."""
    if line.startswith(("Collecting", "Processing", "Downloading", "Looking in")):
        return percent + (70.0 - percent) * 0.2
    if line.startswith("Installing collected packages"):
        return max(percent, 85.0)
    return percent


def _reason(lines: Sequence[str], rc: int) -> str:
    errors = [ln[len("ERROR:"):].strip() for ln in lines if ln.startswith("ERROR:")]
    for line in reversed(lines):
        if "No module named pip" in line:
            return "this Python has no pip (on Debian/Ubuntu: apt install python3-pip)"
        if "NewConnectionError" in line or "Temporary failure in name resolution" in line or "ProxyError" in line:
            return "the package index cannot be reached (check the internet connection, or give a proxy or mirror in pip options)"
        if "No space left on device" in line:
            return "the disk is full"
        found = re.search(r"requirement (\S+) \(from versions: none\)", line)
        if found:
            return (f"pip found no {found.group(1)} for Python {sys.version_info[0]}.{sys.version_info[1]} on the index "
                    "(it could not be reached, or has no build for this Python and platform)")
    if errors:
        return errors[-1].rstrip(".")
    tail = next((ln.strip() for ln in reversed(lines) if ln.strip()), "")
    return tail.rstrip(".") or f"pip exited with status {rc}"


__all__ = ["InstallReport", "GroupOutcome", "install", "install_groups", "outcome_sentence", "describe_step",
           "host_distributions", "host_constraints", "preferred_modules", "find_python", "CPU_TORCH_INDEX",
           "PROBE_SECONDS"]
