"""What Seg needs from Python, checked without importing it, and installed into a private folder.

QGIS-free and stdlib-only (the engine, the GUI and the CLI all use it; `seg_qgis_plugin.deps` is this
same module under its older name). Three steps, each safe on its own:

1. `check(private)`: for every entry of PINS, finds the module with `importlib.util.find_spec` and
   its version with `importlib.metadata`; nothing heavy (torch, cv2) is imported, so checking costs
   milliseconds and cannot crash QGIS.
2. `install_groups(...)` / `install(...)` (seg_qgis_plugin.installer):
   runs `<python> -m pip install --target <target>` in a subprocess, with progress, a log file and
   cancellation. The target is a plugin-private folder keyed by the Python version and platform
   (`private_folder(base)` -> `<base>/seg_deps/py311-linux-x86_64`), never QGIS's own
   site-packages. pip's own `--target` staging means a failed install leaves the folder as it was.
3. `activate(target)`: appends the folder to the END of sys.path, so whatever QGIS's Python already
   has (numpy, GDAL, shapely...) keeps winning and only missing modules come from the folder.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import platform
import re
import sys
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .errors import SegError


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
    # SAM 2.1: Meta's package (source only: the installer builds it with SAM2_BUILD_CUDA=0, pure Python) and its two helpers
    Requirement("sam2", ("sam2",), "sam2>=1.1,<2", "1.1", "sam2", "the SAM 2.1 model code"),
    Requirement("hydra", ("hydra-core",), "hydra-core>=1.3.2,<2", "1.3", "sam2", "SAM 2's model configurations"),
    Requirement("iopath", ("iopath",), "iopath>=0.1.10,<1", "0.1.10", "sam2", "SAM 2's file access"),
)
GROUPS = ("core", "assist", "onnx", "sam", "sam2")  # the order they are installed in; only core is indispensable
GROUP_NAMES = {"core": "the engine", "assist": "the assistant", "onnx": "SAM on ONNX Runtime", "sam": "SAM on torch",
               "sam2": "SAM 2.1 on torch"}


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


SUBJECTS = {"core": "Seg", "assist": "The assistant", "onnx": "SAM on ONNX Runtime", "sam": "SAM on torch",
            "sam2": "SAM 2.1 on torch"}
PIP_ADVICE = {"core": "install with: pip install seg-qgis-plugin", "assist": 'install with: pip install "seg-qgis-plugin[assist]"',
              "onnx": 'install with: pip install "seg-qgis-plugin[onnx]"', "sam": 'install with: pip install "seg-qgis-plugin[sam]"',
              "sam2": 'install with: SAM2_BUILD_CUDA=0 pip install "seg-qgis-plugin[sam2]"'}
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


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


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


__all__ = ["PINS", "GROUPS", "GROUP_NAMES", "Requirement", "Status", "InstallError", "check", "missing", "to_install",
           "summary", "missing_sentence", "sentence_for", "advise_from_qgis", "loaded_geos", "fit_to_loaded_geos",
           "platform_tag", "private_folder", "activate", "deactivate", "version_tuple"]
