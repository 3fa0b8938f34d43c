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
    def __init__(self):
        self.private_first = {}  # module -> Seg's folder: a newer copy Seg's packages need (sympy for torch)

    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in BLOCKED:
            raise ModuleNotFoundError(f"{name} is kept out of QGIS: it crashes the desktop.", name=name)
        if path is None and name in HOST_FIRST:
            return host_copy(name)
        if path is None and name in self.private_first:
            return importlib.machinery.PathFinder.find_spec(name, [self.private_first[name]])
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


def protect_qgis() -> "_QgisGuard":
    """Install the guard once, first on sys.meta_path; returns it."""
    guard = next((finder for finder in sys.meta_path if isinstance(finder, _QgisGuard)), None)
    if guard is None:
        guard = _QgisGuard()
        sys.meta_path.insert(0, guard)
    return guard


def prefer_private(folder: str) -> None:
    """Modules the installer kept in Seg's `folder` because QGIS's Python has them too old for Seg's
    packages (installer.preferred_modules) come from there first; the rest of the folder stays behind QGIS's."""
    from .. import installer

    guard = protect_qgis()
    for module in installer.preferred_modules(folder):
        if module not in sys.modules:
            guard.private_first[module] = folder


def proj_db_minor(folder: str) -> int:
    """The DATABASE.LAYOUT.VERSION.MINOR of `folder`/proj.db (-1 when there is none)."""
    import sqlite3

    path = os.path.join(folder, "proj.db")
    if not os.path.isfile(path):
        return -1
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT value FROM metadata WHERE key = 'DATABASE.LAYOUT.VERSION.MINOR'").fetchone()
        return int(row[0]) if row else -1
    except (sqlite3.Error, ValueError):
        return -1


def share_proj_data(private: str, qgis_folders=None) -> None:
    """One proj.db for every PROJ in the process: QGIS's, where it is newer than the wheels'.

    The GDAL inside the rasterio and pyogrio wheels resolves PROJ to the library QGIS loaded first,
    and a PROJ refuses a proj.db whose layout is older than it needs ("DATABASE.LAYOUT.VERSION.MINOR
    = 6 whereas a number >= 7 is expected" with QGIS 3.44's PROJ); it reads newer ones. pyogrio
    always takes its own copy first and rasterio takes PROJ_DATA first, so where QGIS's proj.db is
    newer, the copies in Seg's `private` folder (Seg's own, never another site-packages) are
    replaced by it and PROJ_DATA names QGIS's folder. A PROJ_DATA or PROJ_LIB the user set is left alone."""
    import shutil

    if os.environ.get("PROJ_DATA") or os.environ.get("PROJ_LIB"):
        return
    if qgis_folders is None:
        qgis_folders = [os.path.join(sys.prefix, "share", "proj"), "/usr/share/proj"]
        try:
            from qgis.core import QgsProjUtils

            qgis_folders = list(QgsProjUtils.searchPaths()) + qgis_folders
        except (ImportError, AttributeError):
            pass
    qgis = max(qgis_folders, key=proj_db_minor)
    newest = proj_db_minor(qgis)
    if newest < 0:
        return
    for package in ("rasterio", "pyogrio"):
        wheel = os.path.join(private, package, "proj_data")
        if 0 <= proj_db_minor(wheel) < newest:
            staged = os.path.join(wheel, f".proj.db.{os.getpid()}")
            shutil.copyfile(os.path.join(qgis, "proj.db"), staged)
            os.replace(staged, os.path.join(wheel, "proj.db"))
    os.environ["PROJ_DATA"] = qgis
