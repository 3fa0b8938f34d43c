"""Build the installable QGIS plugin zip: dist/seg_qgis_plugin-<version>.zip.

    python tools/build_plugin.py --out dist

The zip has one root folder, `seg_qgis_plugin/`, holding the package, the root `metadata.txt`
(the one source of truth; its version must equal pyproject.toml's), the `processing/` folder placed
at `seg_qgis_plugin/processing` (where pyproject's package-dir mapping puts it for pip), the icon,
and LICENSE when there is one. No tests, caches or compiled files. Entries are sorted and dated
from SOURCE_DATE_EPOCH (or 1980-01-01), so the same sources give the same bytes.

Tests reuse `build_zip(out_dir)`, `build_plugin_dir(dest)` and `metadata_problems(...)`.
"""
from __future__ import annotations

import argparse
import configparser
import fnmatch
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import zipfile
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "seg_qgis_plugin"
QGIS_MINIMUM = "3.22"  # the version the QGIS tests run on (Debian 12)
QGIS_MAXIMUM = "4.99"
REQUIRED = ("name", "description", "about", "version", "qgisMinimumVersion", "qgisMaximumVersion",
            "hasProcessingProvider", "tags", "homepage", "tracker", "repository", "icon", "changelog", "author", "email")
SKIP_DIRS = ("__pycache__", "tests", "test", ".*", "*.egg-info", "build", "dist")
SKIP_FILES = ("*.pyc", "*.pyo", "*~", "*.orig", "*.rej", ".*", "*.gpkg-wal", "*.gpkg-shm", "*.qgs~")


class BuildError(Exception):
    """The plugin cannot be built; the message says what to fix."""


def pyproject_version(root: str = ROOT) -> str:
    try:
        with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise BuildError(f"Cannot read {os.path.join(root, 'pyproject.toml')} ({exc.strerror}).") from exc
    project = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = re.search(r'^version\s*=\s*["\']([^"\']+)["\']', project.group(1) if project else "", re.M)
    if not found:
        raise BuildError("pyproject.toml has no [project] version.")
    return found.group(1)


def read_metadata(path: str) -> Dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep QGIS's camelCase keys
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except (OSError, configparser.Error) as exc:
        raise BuildError(f"{path} cannot be read as plugin metadata ({str(exc).splitlines()[0]}).") from exc
    if not parser.has_section("general"):
        raise BuildError(f"{path} has no [general] section.")
    return dict(parser["general"])


def metadata_problems(meta: Dict[str, str], version: str, package_dir: str) -> List[str]:
    """Every way `meta` falls short of a publishable plugin, one sentence each (empty: fine)."""
    problems = [f"metadata.txt lacks {key}." for key in REQUIRED if not meta.get(key, "").strip()]
    expected = {"version": version, "qgisMinimumVersion": QGIS_MINIMUM, "qgisMaximumVersion": QGIS_MAXIMUM,
                "hasProcessingProvider": "yes"}
    for key, value in expected.items():
        if meta.get(key, "").strip() and meta[key].strip() != value:
            source = "pyproject.toml's version" if key == "version" else "what Seg is tested with"
            problems.append(f"metadata.txt says {key}={meta[key].strip()}, but {source} is {value}.")
    icon = meta.get("icon", "").strip()
    if icon and not os.path.isfile(os.path.join(package_dir, icon)):
        problems.append(f"metadata.txt names icon={icon}, which is not in {os.path.basename(package_dir)}/.")
    for key in ("homepage", "tracker", "repository"):
        if meta.get(key, "").strip() and not meta[key].strip().startswith(("https://", "http://")):
            problems.append(f"metadata.txt's {key} is not a web address.")
    return problems


def _ignore(folder: str, names: List[str]) -> List[str]:
    skipped = []
    for name in names:
        is_dir = os.path.isdir(os.path.join(folder, name))
        patterns = SKIP_DIRS if is_dir else SKIP_FILES
        if any(fnmatch.fnmatch(name, p) for p in patterns):
            skipped.append(name)
    return skipped


def build_plugin_dir(dest: str, root: str = ROOT) -> str:
    """Assemble the plugin folder at `dest/seg_qgis_plugin`; returns its path. Checks metadata first."""
    package_dir = os.path.join(root, PACKAGE)
    version = pyproject_version(root)
    meta = read_metadata(os.path.join(root, "metadata.txt"))
    problems = metadata_problems(meta, version, package_dir)
    if problems:
        raise BuildError(" ".join(problems))
    if os.path.exists(os.path.join(package_dir, "processing")):
        raise BuildError(f"{PACKAGE}/processing exists in the sources; the Processing package lives only in processing/.")
    out = os.path.join(dest, PACKAGE)
    if os.path.exists(out):
        raise BuildError(f"{out} already exists; build into an empty folder.")
    shutil.copytree(package_dir, out, ignore=_ignore)
    shutil.copytree(os.path.join(root, "processing"), os.path.join(out, "processing"), ignore=_ignore)
    shutil.copy2(os.path.join(root, "metadata.txt"), os.path.join(out, "metadata.txt"))
    for name in ("LICENSE", "LICENSE.txt", "LICENSE.md"):
        if os.path.isfile(os.path.join(root, name)):
            shutil.copy2(os.path.join(root, name), os.path.join(out, name))
    return out


def build_zip(out_dir: str, root: str = ROOT) -> str:
    """Build `out_dir/seg_qgis_plugin-<version>.zip` (written atomically); returns its path."""
    version = pyproject_version(root)
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, f"{PACKAGE}-{version}.zip")
    stamp = time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")))[:6]
    with tempfile.TemporaryDirectory(prefix="seg-plugin-") as staging:
        plugin = build_plugin_dir(staging, root)
        fd, partial = tempfile.mkstemp(prefix=".seg-plugin-", suffix=".zip", dir=out_dir)
        os.close(fd)
        try:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
                for path in sorted(_files(plugin)):
                    name = os.path.relpath(path, staging).replace(os.sep, "/")
                    info = zipfile.ZipInfo(name, date_time=stamp)
                    info.external_attr = (stat.S_IFREG | 0o644) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with open(path, "rb") as f:
                        zf.writestr(info, f.read())
            os.chmod(partial, 0o644)  # mkstemp makes it private
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    return target


def _files(folder: str):
    for base, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            yield os.path.join(base, name)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Seg QGIS plugin zip.")
    parser.add_argument("--out", default="dist", help="output folder (default: dist)")
    parser.add_argument("--root", default=ROOT, help="source checkout (default: the one holding this script)")
    args = parser.parse_args(argv)
    try:
        path = build_zip(args.out, args.root)
    except BuildError as exc:
        print(f"build_plugin: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
