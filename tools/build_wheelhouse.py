"""Download the wheels the plugin's installer needs into a folder, for the Python QGIS runs.

    /usr/bin/python3 tools/build_wheelhouse.py .wheelhouse

The desktop tests install the plugin's dependencies from this folder with no network, exactly as
the dock's Install dependencies button does with one: the core and ONNX Runtime pins of `deps.PINS`, and their
dependencies at the versions QGIS's Python already has (`deps.host_constraints`).
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from seg_qgis_plugin import deps  # noqa: E402  (stdlib-only: safe in QGIS's Python)


def main(folder: str) -> int:
    pins = [r.pin for r in deps.PINS if r.pin and r.group in ("core", "onnx")]  # what the dock's button installs without torch
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(deps.host_constraints(pins)) + "\n")
    try:
        return subprocess.call([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
                                "--disable-pip-version-check", "-d", folder, "-c", f.name, *pins, *sys.argv[2:]])
    finally:
        os.remove(f.name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
