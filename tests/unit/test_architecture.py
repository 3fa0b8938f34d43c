"""House rules a machine can check: the engine stays QGIS-free and imports heavy modules lazily."""
import ast
import os
import subprocess
import sys

import seg_qgis_plugin

PACKAGE = os.path.dirname(seg_qgis_plugin.__file__)


def test_core_never_imports_qgis_or_qt():
    offenders = []
    core = os.path.join(PACKAGE, "core")
    for name in sorted(os.listdir(core)):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(core, name)).read())
        for node in ast.walk(tree):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{name}: {m}" for m in modules if m.split(".")[0] in ("qgis", "PyQt5", "PyQt6", "processing")]
    assert offenders == []


def test_engine_and_cli_load_without_heavy_modules():
    code = ("import sys, seg_qgis_plugin.core.jobs, seg_qgis_plugin.core.segmenter, seg_qgis_plugin.cli; "
            "print(sorted(m for m in ('torch', 'segment_anything', 'qgis', 'PyQt5') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_our_processing_package_is_not_top_level_processing():
    code = "import importlib.util; print(importlib.util.find_spec('processing') is None or 'seg' not in importlib.util.find_spec('processing').origin)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout.strip()
    assert out == "True"
