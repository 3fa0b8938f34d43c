"""What Seg needs from Python, checked without importing it, and installed into a private folder.

QGIS-free (the GUI and the CLI both use it). Three steps, each safe on its own:

1. `check(private)`: for every entry of PINS, finds the module with `importlib.util.find_spec` and
   its version with `importlib.metadata`; nothing heavy (torch, cv2) is imported, so checking costs
   milliseconds and cannot crash QGIS.
2. `install(PINS..., target)`: runs `<python> -m pip install --target <target>` in a subprocess,
   with progress, a log file and cancellation. The target is a plugin-private folder keyed by the
   Python version and platform (`private_folder(base)` -> `<base>/seg_deps/py311-linux-x86_64`),
   never QGIS's own site-packages. pip's own `--target` staging means a failed install leaves the
   folder as it was. QGIS's numpy is pinned as a constraint, so nothing is built against another.
3. `activate(target)`: appends the folder to the END of sys.path, so whatever QGIS's Python already
   has (numpy, GDAL, shapely...) keeps winning and only missing modules come from the folder.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import os
import platform
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from .core.errors import Canceled, MissingDependency, SegError
from .core.progress import NullProgress, Progress


class InstallError(SegError, RuntimeError):
    """pip could not install the requested packages; the private folder is as it was."""


@dataclass(frozen=True)
class Requirement:
    """A module Seg imports. `pin` is what we ask pip for: a range from the oldest version Seg works
    with to the next major release, so that pip takes the newest release that has a wheel for this
    Python (3.11 to 3.14 and on); None: never installed by us, it must come with QGIS. `minimum` is
    the oldest version accepted when it is already there."""

    module: str
    distributions: Tuple[str, ...]
    pin: Optional[str]
    minimum: str
    group: str  # "core": the plugin's engine; "assist": the assistant; "onnx": SAM on ONNX Runtime; "sam": SAM on torch
    purpose: str


# The one requirements table; the development environment pins a version inside each range
# (requirements.txt, constraints.txt; a unit test keeps them in step).
PINS: Tuple[Requirement, ...] = (
    Requirement("numpy", ("numpy",), None, "1.21", "core", "arrays (comes with QGIS; never replaced)"),
    Requirement("affine", ("affine",), "affine>=2.3,<3", "2.3", "core", "pixel-to-map transforms"),
    Requirement("rasterio", ("rasterio",), "rasterio>=1.3,<2", "1.3", "core", "windowed raster reading"),
    Requirement("pyogrio", ("pyogrio",), "pyogrio>=0.7,<1", "0.7", "core", "vector export"),
    Requirement("shapely", ("shapely",), "shapely>=2.0,<3", "2.0", "core", "polygons"),
    # pyproj comes with QGIS and uses QGIS's PROJ; a pyproj wheel carries a second PROJ that aborts QGIS
    Requirement("pyproj", ("pyproj",), None, "3.3", "core", "coordinate systems (comes with QGIS)"),
    Requirement("cv2", ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless",
                        "opencv-contrib-python"), "opencv-python-headless>=4.8,<5", "4.8", "core",
                "mask cleanup and the classic backend"),
    Requirement("safetensors", ("safetensors",), "safetensors>=0.4,<1", "0.4", "core", "the embedding cache"),
    Requirement("lightgbm", ("lightgbm",), "lightgbm>=4.0,<5", "4.0", "assist", "the assistant's forest"),
    Requirement("scipy", ("scipy",), "scipy>=1.8,<2", "1.8", "assist", "the assistant's image features"),
    Requirement("onnxruntime", ("onnxruntime",), "onnxruntime>=1.17,<2", "1.17", "onnx",
                "SAM without torch (models exported with `seg models export-onnx`)"),
    # torchvision is built against one torch release: the pair is pinned (PyPI has it for Python 3.10 to
    # 3.14), since a range lets pip backtrack through gigabytes of CUDA wheels looking for a match.
    Requirement("torch", ("torch",), "torch==2.13.0", "2.0", "sam", "running SAM"),
    Requirement("torchvision", ("torchvision",), "torchvision==0.28.0", "0.15", "sam", "SAM's image transforms"),
    Requirement("segment_anything", ("segment-anything", "segment_anything"), "segment-anything>=1.0,<2", "1.0", "sam",
                "the SAM model code"),
)
GROUPS = ("core", "assist", "onnx", "sam")  # the order they are installed in; only core is indispensable
GROUP_NAMES = {"core": "the engine", "assist": "the assistant", "onnx": "SAM on ONNX Runtime", "sam": "SAM on torch"}


@dataclass(frozen=True)
class Status:
    """state: "ok", "missing", "too old" or "unknown version" (found, no metadata: accepted).
    location: "python" (QGIS's own Python), "private" (the private folder), or "" when missing."""

    requirement: Requirement
    state: str
    version: Optional[str]
    location: str

    @property
    def usable(self) -> bool:
        return self.state in ("ok", "unknown version")

    def describe(self) -> str:
        r = self.requirement
        where = {"python": "", "private": " (private folder)"}.get(self.location, "")
        if self.state == "missing":
            return f"{r.module}: missing, needed for {r.purpose}"
        if self.state == "too old":
            return f"{r.module}: {self.version}{where} is older than {r.minimum}, needed for {r.purpose}"
        return f"{r.module}: {self.version or 'version unknown'}{where}"


# ---------------------------------------------------------------- checking


def check(private: Optional[str] = None, requirements: Sequence[Requirement] = PINS) -> List[Status]:
    """The state of every requirement, looking in sys.path and then in `private` (if given)."""
    return [_check_one(r, private) for r in requirements]


def _check_one(req: Requirement, private: Optional[str]) -> Status:
    spec = _find_spec(req.module)
    location = "python"
    if spec is not None and private and _inside(spec.origin or _first(spec.submodule_search_locations), private):
        location = "private"
    if spec is None and private and os.path.isdir(private):
        spec = importlib.machinery.PathFinder.find_spec(req.module, [private])
        location = "private"
    if spec is None:
        return Status(req, "missing", None, "")
    paths = [private] if location == "private" else None
    version = _version_of(req.distributions, paths)
    if version is None:
        return Status(req, "unknown version", None, location)
    state = "ok" if version_tuple(version) >= version_tuple(req.minimum) else "too old"
    return Status(req, state, version, location)


def _find_spec(module: str):
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None


def _first(locations: Optional[Iterable[str]]) -> Optional[str]:
    return next(iter(locations), None) if locations else None


def _inside(path: Optional[str], folder: str) -> bool:
    if not path:
        return False
    folder = os.path.abspath(folder)
    return os.path.commonpath([os.path.abspath(path), folder]) == folder


def _version_of(distributions: Sequence[str], paths: Optional[List[str]]) -> Optional[str]:
    for name in distributions:
        try:
            if paths is None:
                return importlib.metadata.version(name)
            for dist in importlib.metadata.distributions(name=name, path=paths):
                return dist.version
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def version_tuple(version: str) -> Tuple[int, ...]:
    """'2.13.0+cpu' -> (2, 13, 0); '1.0rc1' -> (1, 0). Enough to compare against a minimum."""
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = re.match(r"\d+", piece)
        if not digits:
            break
        parts.append(int(digits.group()))
        if digits.end() != len(piece):
            break
    return tuple(parts)


def to_install(statuses: Sequence[Status], groups: Sequence[str] = ("core", "sam")) -> List[str]:
    """The pins for what is missing or too old in `groups` (requirements with no pin are skipped),
    fitted to the GEOS this process already runs."""
    return [fit_to_loaded_geos(s.requirement.pin, loaded_geos()) for s in statuses
            if not s.usable and s.requirement.group in groups and s.requirement.pin]


def loaded_geos() -> Optional[Tuple[int, ...]]:
    """(major, minor) of the GEOS already loaded into this process (QGIS's), else None.

    A shapely wheel's calls into its own GEOS resolve to that one first: the two must be of one
    release, or shapely crashes QGIS (shapely 2.2, built on GEOS 3.13, inside QGIS 3.22 on GEOS 3.11)."""
    import ctypes

    try:
        function = ctypes.CDLL(None).GEOSversion
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_char_p
    return version_tuple(function().decode("ascii", "replace").split("-")[0])[:2]


# The newest shapely releases whose wheels carry each GEOS (shapely 2.0 carries 3.11; 2.1 and later 3.13+).
SHAPELY_FOR_GEOS = (((3, 12), "shapely>=2.0,<2.1"),)


def fit_to_loaded_geos(pin: str, geos: Optional[Tuple[int, ...]]) -> str:
    """`pin`, or for shapely under an older loaded GEOS, the shapely range built on that GEOS."""
    if geos is None or not pin.startswith("shapely"):
        return pin
    return next((fitted for below, fitted in SHAPELY_FOR_GEOS if geos < below), pin)


def missing(groups: Sequence[str] = ("core",), private: Optional[str] = None) -> List[str]:
    """The modules of `groups` that are missing or too old: the one answer to "is X installed"."""
    return [s.requirement.module for s in check(private, [r for r in PINS if r.group in groups]) if not s.usable]


SUBJECTS = {"core": "Seg", "assist": "The assistant", "onnx": "SAM on ONNX Runtime", "sam": "SAM on torch"}
PIP_ADVICE = {"core": "install with: pip install seg-qgis-plugin", "assist": 'install with: pip install "seg-qgis-plugin[assist]"',
              "onnx": 'install with: pip install "seg-qgis-plugin[onnx]"', "sam": 'install with: pip install "seg-qgis-plugin[sam]"'}
QGIS_ADVICE = "press Install dependencies in the Seg dock (or Plugins > Seg), then restart QGIS"
_advice: Dict[str, str] = {}


def advise_from_qgis() -> None:
    """Inside QGIS every missing-package sentence ends with the Install dependencies button, not pip."""
    _advice["all"] = QGIS_ADVICE


def missing_sentence(groups: Sequence[str] = ("core",), private: Optional[str] = None) -> str:
    """The one sentence about what `groups` lack here ("" when nothing): the same in the dock, the
    message bar, Processing and the CLI; inside QGIS it points to Install dependencies, else to pip."""
    return sentence_for(groups, missing(groups, private))


def sentence_for(groups: Sequence[str], names: Sequence[str]) -> str:
    """missing_sentence's wording for modules `names` of `groups` ("" when there are none)."""
    if not names:
        return ""
    subject = SUBJECTS[groups[0]] if len(groups) == 1 else "Seg"
    advice = _advice.get("all") or " or ".join(dict.fromkeys(PIP_ADVICE[g] for g in groups))
    verb = "is" if len(names) == 1 else "are"
    return f"{subject} needs {_join(list(names))}, which {verb} not installed: {advice}."


def summary(statuses: Sequence[Status]) -> str:
    """One sentence: what is missing, or that everything is there."""
    bad = [s for s in statuses if not s.usable]
    if not bad:
        return "Everything Seg needs is installed."
    return "Missing or too old: " + ", ".join(s.requirement.module for s in bad) + "."


# ---------------------------------------------------------------- the private folder


def platform_tag() -> str:
    """'py311-linux-x86_64', 'py312-windows-amd64', 'py39-darwin-arm64': wheels differ along these."""
    machine = (platform.machine() or "unknown").lower()
    return f"py{sys.version_info[0]}{sys.version_info[1]}-{platform.system().lower() or sys.platform}-{machine}"


def private_folder(base: str) -> str:
    """Where Seg installs packages for this Python and platform, under `base` (in QGIS: the
    profile's python folder, so each profile and each QGIS Python version gets its own)."""
    return os.path.join(base, "seg_deps", platform_tag())


def activate(target: str) -> bool:
    """Put `target` at the end of sys.path (only if it exists); True if it was added now."""
    target = os.path.abspath(target)
    if not os.path.isdir(target) or target in sys.path:
        return False
    sys.path.append(target)
    importlib.invalidate_caches()
    return True


def deactivate(target: str) -> None:
    target = os.path.abspath(target)
    while target in sys.path:
        sys.path.remove(target)
    importlib.invalidate_caches()


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

    Only wheels are taken (a package is never built from source inside QGIS); what QGIS's Python
    already has is a constraint at its version (`host_constraints`), and a constraint the index
    cannot satisfy (a version only Debian has) is dropped and pip run again. pip_options go to pip
    as they are: `--no-index --find-links DIR` for a local wheel folder, `--index-url URL` for a
    mirror. torch comes from PyTorch's CPU index when that answers within seconds, else from the
    main index. Every pip output line goes to the log file (default `<target>/../install.log`) and
    to `on_line`; `progress` gets an estimate (pip reports no totals) and may cancel.
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
    with open(log_path, "a", encoding="utf-8") as log:
        for _ in range(4):
            constraints = _write_constraints(os.path.dirname(target), host, requirements)
            command = [python, "-m", "pip", "install", "--target", target, "--upgrade", "--no-input", "--only-binary", ":all:",
                       "--disable-pip-version-check", "--progress-bar", "off", "-c", constraints, *pip_options, *requirements]
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {subprocess.list2cmdline(command)}\n")
            log.flush()
            try:
                rc, lines = _run_pip(command, env, log, progress, on_line, timeout)
            finally:
                os.remove(constraints)
            impossible = _impossible_constraint(lines) if rc != 0 else None
            if impossible is None or impossible not in host:
                break
            log.write(f"=== {impossible}=={host.pop(impossible)} (QGIS's own) does not fit: trying again without it\n")
            newer.append(impossible)
    if rc != 0:
        raise InstallError(f"Installing {' '.join(requirements)} failed: {_reason(lines, rc)}; the log is {log_path}.")
    installed = next((ln.split("Successfully installed", 1)[1].split() for ln in reversed(lines)
                      if ln.startswith("Successfully installed")), [])
    copies = _drop_host_copies(target, {n: v for n, v in host_distributions(target).items() if n not in newer})
    if newer:
        _remember_newer(target, newer)
    installed = [name for name in installed if _normalise(name.rsplit("-", 1)[0]) not in copies]
    progress.set_progress(100.0)
    return InstallReport(tuple(installed), target, log_path)


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
            report = install(wanted, target, progress=part, **options)
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
                 if outcome.group == "sam" and not any(o.group == "onnx" and o.error for o in outcomes)
                 else " Press Install again later, or give a mirror or a wheel folder in pip options.")
    return text


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


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
    wants_torch = any(_normalise(re.split(r"[<>=!~\[; ]", r, 1)[0]) in ("torch", "torchvision") for r in requirements)
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


def host_distributions(exclude: Optional[str] = None) -> Dict[str, str]:
    """{normalised name: version} of every distribution this Python sees outside `exclude`."""
    found: Dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        where = str(getattr(dist, "_path", "") or "")
        if name and dist.version and not (exclude and _inside(where, exclude)):
            found.setdefault(_normalise(name), dist.version)
    return found


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# Packaging tools and the CA bundle are never held at the host's version: torch needs a newer
# setuptools than Debian 12's, and Debian's certifi carries versions PyPI never had.
UNPINNED = frozenset({"pip", "setuptools", "wheel", "certifi", "distribute", "pkg-resources"})


def host_constraints(requested: Sequence[str] = (), host: Optional[Dict[str, str]] = None) -> List[str]:
    """'name==version' for what QGIS's Python already has (numpy, attrs, ...), so what we install
    works with the copies that win on sys.path; what was asked to be replaced is left free. A Debian
    local version ('4.4.0+dfsg') is constrained by its public part, which the index can have."""
    free = {_normalise(re.split(r"[<>=!~\[; ]", r, 1)[0]) for r in requested} | UNPINNED
    host = host_distributions() if host is None else host
    return [f"{name}=={version.split('+')[0]}" for name, version in sorted(host.items())
            if name not in free and _PEP440.match(version) and any(version_tuple(version))]  # Debian's mpmath says 0.0.0


def _impossible_constraint(lines: Sequence[str]) -> Optional[str]:
    """The distribution whose host constraint pip could not satisfy, from its resolver's report."""
    for line in lines:
        found = re.search(r"The user requested \(constraint\) ([A-Za-z0-9_.\-]+)==", line)
        if found:
            return _normalise(found.group(1))
    for line in lines:
        found = re.search(r"No matching distribution found for ([A-Za-z0-9_.\-]+)==", line)
        if found:
            return _normalise(found.group(1))
    return None


def _write_constraints(folder: str, host: Dict[str, str], requested: Sequence[str]) -> str:
    path = os.path.join(folder, f"constraints-{os.getpid()}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in host_constraints(requested, host))
    return path


_PEP440 = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[\w.]+)?$")


PREFERRED_FILE = "seg-preferred.json"


def _remember_newer(target: str, names: Sequence[str]) -> None:
    """Record the top-level modules of `names` (kept in `target` because Seg's packages need them newer
    than QGIS's Python has them: sympy for torch on Debian 12) for `preferred_modules`."""
    modules = set(preferred_modules(target))
    for dist in importlib.metadata.distributions(path=[target]):
        if _normalise(dist.metadata["Name"] or "") in names:
            modules.update(_top_level_modules(dist))
    with open(os.path.join(target, PREFERRED_FILE), "w", encoding="utf-8") as f:
        json.dump(sorted(modules), f)


def _top_level_modules(dist) -> List[str]:
    """The importable top-level names a distribution installed, read from its RECORD."""
    names = set()
    for path in dist.files or []:
        top = path.parts[0]
        if len(path.parts) == 1 and top.endswith((".py", ".so", ".pyd")):
            names.add(top.split(".")[0])
        elif len(path.parts) > 1 and not top.endswith((".dist-info", ".data", ".libs")) and top not in ("bin", "__pycache__"):
            names.add(top)
    return sorted(names)


def preferred_modules(target: str) -> List[str]:
    """Modules that must come from `target` before QGIS's own copies (see install)."""
    try:
        with open(os.path.join(target, PREFERRED_FILE), encoding="utf-8") as f:
            names = json.load(f)
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
    except (OSError, ValueError):
        return []


def _drop_host_copies(target: str, host: Dict[str, str]) -> List[str]:
    """Remove from `target` the distributions QGIS's Python already has (pip --target installs every
    dependency again): never a second numpy, attrs or GDAL binding beside QGIS's own."""
    dropped = []
    for info in sorted(os.listdir(target)):
        name = _normalise(info[: -len(".dist-info")].rsplit("-", 1)[0]) if info.endswith(".dist-info") else ""
        record = os.path.join(target, info, "RECORD")
        if name not in host or not os.path.isfile(record):
            continue
        with open(record, encoding="utf-8") as f:
            for line in f:
                path = os.path.normpath(os.path.join(target, line.split(",", 1)[0]))
                if line.strip() and _inside(path, target) and os.path.isfile(path):
                    os.remove(path)
        dropped.append(name)
    for dirpath, _, _ in sorted(os.walk(target), key=lambda entry: len(entry[0]), reverse=True):
        if dirpath != target and not os.listdir(dirpath):
            os.rmdir(dirpath)
    return dropped


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


__all__ = ["PINS", "GROUPS", "GROUP_NAMES", "Requirement", "Status", "InstallError", "InstallReport", "GroupOutcome",
           "install_groups", "outcome_sentence", "describe_step", "check", "missing", "to_install", "summary",
           "host_distributions", "host_constraints",
           "platform_tag", "private_folder", "activate", "deactivate", "find_python", "install", "version_tuple"]
