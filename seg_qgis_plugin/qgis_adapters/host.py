"""Keeping QGIS alive beside Seg's packages.

QGIS has loaded its own PROJ, GDAL, GEOS and Qt before any plugin runs. Two imports are known to
kill it: a pyproj wheel (it carries PROJ 9.4 beside QGIS's PROJ and aborts with std::bad_alloc),
and triton (torch's CUDA build imports it from torchvision.ops; it segfaults the desktop).
`protect_qgis()` runs once at plugin load, before anything imports them:
- pyproj always comes from the copy built on the system's PROJ (the one QGIS itself ships),
  even when a wheel with its own `pyproj.libs` stands earlier on sys.path;
- triton cannot be imported: torch treats it as absent and runs on the CPU without it.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

HOST_FIRST = ("pyproj",)
BLOCKED = ("triton",)


class _QgisGuard(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in BLOCKED:
            raise ModuleNotFoundError(f"{name} is kept out of QGIS: it crashes the desktop.", name=name)
        if path is None and name in HOST_FIRST:
            return host_copy(name)
        return None


def host_copy(name: str):
    """The spec of the first `name` on sys.path that does not bundle its own libraries (a wheel
    repaired by auditwheel keeps them in `<name>.libs` beside the package), or None."""
    for entry in sys.path:
        folder = entry or os.getcwd()
        if not os.path.isdir(folder) or os.path.isdir(os.path.join(folder, f"{name}.libs")):
            continue
        spec = importlib.machinery.PathFinder.find_spec(name, [folder])
        if spec is not None:
            return spec
    return None


def protect_qgis() -> None:
    """Install the guard once, first on sys.meta_path."""
    if not any(isinstance(finder, _QgisGuard) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QgisGuard())
