"""House rules a machine can check: the engine stays QGIS-free, is layered without import cycles,
imports heavy modules lazily, and every third-party import is a declared dependency."""
import ast
import os
import re
import subprocess
import sys
import tomllib

import seg_qgis_plugin

PACKAGE = os.path.dirname(seg_qgis_plugin.__file__)
ROOT = os.path.dirname(PACKAGE)
QGIS_OR_QT = ("qgis", "PyQt5", "PyQt6", "processing")
MAX_LINES = 400
MAX_PARAMETERS = 8

# import name -> distribution, where they differ
DISTRIBUTION_OF = {"cv2": "opencv-python-headless", "segment_anything": "segment-anything", "skimage": "scikit-image",
                   "yaml": "pyyaml", "osgeo": "gdal", "sklearn": "scikit-learn", "psycopg2": "psycopg2-binary"}


def _modules():
    """(dotted module name, path) for every module of the package, processing/ included."""
    roots = [(PACKAGE, "seg_qgis_plugin"), (os.path.join(ROOT, "processing"), "seg_qgis_plugin.processing")]
    for folder, prefix in roots:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if d != "__pycache__" and not (folder == PACKAGE and d == "processing")]
            for name in filenames:
                if name.endswith(".py"):
                    parts = os.path.relpath(os.path.join(dirpath, name), folder)[:-3].split(os.sep)
                    parts = parts[:-1] if parts[-1] == "__init__" else parts
                    yield ".".join([prefix, *parts]), os.path.join(dirpath, name)


def _imports(module, path):
    """Absolute names of everything `path` imports, at module level or inside functions."""
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
                yield name
                yield from (f"{name}.{a.name}" for a in node.names)
            else:
                yield node.module


MODULES = dict(_modules())


def test_core_never_imports_qgis_or_qt():
    offenders = [f"{m}: {name}" for m, path in MODULES.items() if m.startswith("seg_qgis_plugin.core")
                 for name in _imports(m, path) if name.split(".")[0] in QGIS_OR_QT]
    assert offenders == []


def test_modules_stay_small():
    big = {m: n for m, path in MODULES.items() if (n := sum(1 for _ in open(path))) > MAX_LINES}
    assert big == {}


def test_no_function_takes_more_than_eight_parameters():
    """Long loose parameter lists are what request values and options dataclasses replace."""
    long = []
    for m, path in MODULES.items():
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs] + [x.arg for x in (a.vararg, a.kwarg) if x]
                count = len([n for n in names if n not in ("self", "cls")])
                if count > MAX_PARAMETERS:
                    long.append(f"{m}.{node.name}: {count}")
    assert long == []


def test_the_engine_imports_nothing_above_itself():
    above = [f"{m}: {name}" for m, path in MODULES.items() if m.startswith("seg_qgis_plugin.core")
             for name in _imports(m, path)
             if name.startswith("seg_qgis_plugin.") and not name.startswith("seg_qgis_plugin.core")]
    assert above == []


def test_every_job_is_a_request_and_one_entry_reachable_from_the_api():
    import dataclasses
    import inspect

    import seg_qgis_plugin.api as api
    from seg_qgis_plugin.core.jobs import JOBS, job

    for name in JOBS:
        module = job(name)
        assert dataclasses.is_dataclass(module.Request) and module.Request.__dataclass_params__.frozen, name
        assert module.RETURNS in ("labels", "rows", "path"), name
        assert list(inspect.signature(module.run).parameters) == ["request", "progress", "sink"], name
        if name != "segment":  # Session.segment is the interactive form
            assert inspect.signature(getattr(api, name)) == inspect.signature(module.Request), name


def test_no_import_cycles():
    graph = {m: {name for name in _imports(m, path) if name in MODULES and name != m} for m, path in MODULES.items()}
    # a package's __init__ importing its own modules is how a public surface is made, not a cycle
    for m in graph:
        graph[m] = {t for t in graph[m] if not (m.startswith(t + ".") and MODULES[t].endswith("__init__.py"))}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def _declared():
    project = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))["project"]
    requirements = project["dependencies"] + [r for extra in project.get("optional-dependencies", {}).values() for r in extra]
    return {re.split(r"[<>=!~\[; ]", r, 1)[0].lower().replace("_", "-") for r in requirements}


def test_every_third_party_import_is_declared():
    stdlib = set(sys.stdlib_module_names)
    declared = _declared()
    undeclared = set()
    for m, path in MODULES.items():
        if m.startswith(("seg_qgis_plugin.gui", "seg_qgis_plugin.qgis_adapters", "seg_qgis_plugin.processing")):
            continue  # these run inside QGIS, which provides qgis and PyQt
        for name in _imports(m, path):
            top = name.split(".")[0]
            if top in stdlib or top == "seg_qgis_plugin" or top in QGIS_OR_QT or top == "__future__":
                continue
            if DISTRIBUTION_OF.get(top, top).lower().replace("_", "-") not in declared:
                undeclared.add(f"{m}: {top}")
    assert undeclared == set()


def test_engine_and_cli_load_without_heavy_modules():
    code = ("import sys, seg_qgis_plugin.core.engine.labeling, seg_qgis_plugin.core.engine.segmenter, seg_qgis_plugin.cli; "
            "print(sorted(m for m in ('torch', 'segment_anything', 'qgis', 'PyQt5') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_our_processing_package_is_not_top_level_processing():
    code = "import importlib.util; print(importlib.util.find_spec('processing') is None or 'seg' not in importlib.util.find_spec('processing').origin)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout.strip()
    assert out == "True"


def test_every_package_is_installed_by_pyproject():
    project = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))
    listed = set(project["tool"]["setuptools"]["packages"])
    packages = {m for m, path in MODULES.items() if path.endswith("__init__.py")}
    assert packages - listed == set()
