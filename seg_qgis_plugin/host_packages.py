"""What QGIS's Python already has, as the installer sees it (stdlib-only, like seg_qgis_plugin.installer).

pip --target installs every dependency again: the installer holds what it installs to the host's
versions (`host_constraints`), drops a constraint the index cannot satisfy (`impossible_constraint`),
removes the second copies pip put in the private folder (`drop_host_copies`) and remembers the few
modules that must come from there first (`preferred_modules`).
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
from typing import Dict, List, Optional, Sequence

from .core.dependencies import _inside, _normalise, version_tuple


def host_distributions(exclude: Optional[str] = None) -> Dict[str, str]:
    """{normalised name: version} of every distribution this Python sees outside `exclude`."""
    found: Dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        where = str(getattr(dist, "_path", "") or "")
        if name and dist.version and not (exclude and _inside(where, exclude)):
            found.setdefault(_normalise(name), dist.version)
    return found


# Packaging tools and the CA bundle are never held at the host's version: torch needs a newer
# setuptools than Debian 12's, and Debian's certifi carries versions PyPI never had.
UNPINNED = frozenset({"pip", "setuptools", "wheel", "certifi", "distribute", "pkg-resources"})
_PEP440 = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[\w.]+)?$")


def requirement_name(requirement: str) -> str:
    """The normalised project name of a pip requirement: 'torch' for 'torch==2.13.0'."""
    return _normalise(re.split(r"[<>=!~\[; ]", requirement, 1)[0])


def host_constraints(requested: Sequence[str] = (), host: Optional[Dict[str, str]] = None) -> List[str]:
    """'name==version' for what QGIS's Python already has (numpy, attrs, ...), so what we install
    works with the copies that win on sys.path; what was asked to be replaced is left free. A Debian
    local version ('4.4.0+dfsg') is constrained by its public part, which the index can have."""
    free = {requirement_name(r) for r in requested} | UNPINNED
    host = host_distributions() if host is None else host
    return [f"{name}=={version.split('+')[0]}" for name, version in sorted(host.items())
            if name not in free and _PEP440.match(version) and any(version_tuple(version))]  # Debian's mpmath says 0.0.0


def impossible_constraint(lines: Sequence[str]) -> Optional[str]:
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


def write_constraints(folder: str, host: Dict[str, str], requested: Sequence[str]) -> str:
    """A pip constraints file in `folder` holding `host_constraints`; the caller removes it."""
    path = os.path.join(folder, f"constraints-{os.getpid()}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in host_constraints(requested, host))
    return path


PREFERRED_FILE = "seg-preferred.json"


def remember_newer(target: str, names: Sequence[str]) -> None:
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
    """Modules that must come from `target` before QGIS's own copies (see installer.install)."""
    try:
        with open(os.path.join(target, PREFERRED_FILE), encoding="utf-8") as f:
            names = json.load(f)
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
    except (OSError, ValueError):
        return []


def drop_host_copies(target: str, host: Dict[str, str]) -> List[str]:
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


__all__ = ["requirement_name", "host_distributions", "host_constraints", "impossible_constraint", "write_constraints", "remember_newer",
           "preferred_modules", "drop_host_copies", "UNPINNED", "PREFERRED_FILE"]
