"""QGIS 4 (Qt 6) readiness: the idioms QGIS's "Plugin migration to be compatible with Qt5 and Qt6"
guide lists, found in our sources by reading them (ast) and resolving names in this QGIS's bindings.

An unscoped enum (`Qt.AlignLeft`, `QgsWkbTypes.Polygon`) works in PyQt5 and fails in PyQt6; here it
is recognised as an attribute of an imported Qt or QGIS class whose value is an enum member, not an
enum type (`Qt.AlignmentFlag.AlignLeft` is scoped and passes)."""
import ast
import configparser
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = sorted(p for folder in ("seg_qgis_plugin", "processing") for p in (ROOT / folder).rglob("*.py"))
MOVED_TO_QTGUI = {"QAction", "QActionGroup", "QShortcut", "QUndoCommand", "QUndoGroup", "QUndoStack", "QFileSystemModel"}
GONE_IN_QT6 = {"QRegExp", "QRegExpValidator", "QDesktopWidget", "QGLWidget", "QMatrix", "QStringRef", "qApp", "QtWebKit",
               "QtWebKitWidgets", "QSound", "QTextCodec", "QDirModel"}
COMPAT = ROOT / "seg_qgis_plugin" / "gui" / "qt_compat.py"
BINDINGS = ("qgis.PyQt.", "qgis.core", "qgis.gui")


def shown(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT)) if ROOT in path.parents else path.name


def imported_classes(tree):
    """{local name: (module, name)} for names imported from Qt or QGIS bindings."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(BINDINGS):
            for alias in node.names:
                names[alias.asname or alias.name] = (node.module, alias.name)
    return names


def is_enum_member(value) -> bool:
    kind = type(value)
    return type(kind).__name__ in ("enumtype", "EnumType", "EnumMeta") and not isinstance(value, type)


def findings(path: pathlib.Path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    where = lambda node: f"{shown(path)}:{node.lineno}"  # noqa: E731
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for module in modules:
                if module.split(".")[0] in ("PyQt5", "PyQt6", "PySide2", "PySide6"):
                    yield f"{where(node)}: imports {module} directly; use qgis.PyQt"
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("QtWidgets") and path != COMPAT:
                for alias in node.names:
                    if alias.name in MOVED_TO_QTGUI:
                        yield f"{where(node)}: {alias.name} is in QtGui in Qt 6; import it from gui/qt_compat.py"
            for alias in getattr(node, "names", []):
                if alias.name.split(".")[-1] in GONE_IN_QT6:
                    yield f"{where(node)}: {alias.name} does not exist in Qt 6"
        elif isinstance(node, ast.Attribute):
            if node.attr in ("exec_", "print_"):
                yield f"{where(node)}: {node.attr}() is gone in PyQt6; call {node.attr[:-1]}()"
            if isinstance(node.value, ast.Name) and node.value.id == "QVariant":
                yield f"{where(node)}: QVariant.{node.attr} does not exist in PyQt6; use QMetaType (qgis_adapters/sinks.new_field)"
        elif isinstance(node, ast.Name) and node.id in GONE_IN_QT6:
            yield f"{where(node)}: {node.id} does not exist in Qt 6"


def unscoped_enums(path: pathlib.Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    classes = imported_classes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in classes:
            module, name = classes[node.value.id]
            owner = getattr(importlib.import_module(module), name, None)
            if owner is not None and is_enum_member(getattr(owner, node.attr, None)):
                enum = type(getattr(owner, node.attr)).__name__
                yield f"{shown(path)}:{node.lineno}: {node.value.id}.{node.attr} is unscoped; write {node.value.id}.{enum}.{node.attr}"


def test_no_qt5_only_idioms():
    found = [line for path in SOURCES for line in findings(path)]
    assert not found, "Qt 5-only idioms (QGIS 4 runs Qt 6):\n" + "\n".join(found)


def test_enums_are_scoped():
    pytest.importorskip("qgis.core", reason="resolving enums needs QGIS's Python bindings")
    found = [line for path in SOURCES for line in unscoped_enums(path)]
    assert not found, "unscoped enums fail under PyQt6:\n" + "\n".join(found)


def test_the_checks_catch_what_they_look_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from qgis.PyQt.QtWidgets import QAction, QDialog\nfrom qgis.PyQt.QtCore import Qt, QVariant\n"
                      "QDialog().exec_()\nkind = QVariant.String\nalign = Qt.AlignLeft\nscoped = Qt.AlignmentFlag.AlignLeft\n")
    found = "\n".join(findings(sample))
    assert "QAction is in QtGui" in found and "exec_()" in found and "QVariant.String" in found
    pytest.importorskip("qgis.core", reason="resolving enums needs QGIS's Python bindings")
    assert "Qt.AlignLeft is unscoped; write Qt.AlignmentFlag.AlignLeft" in [line.split(": ", 1)[1] for line in unscoped_enums(sample)]


def test_metadata_declares_qgis_4():
    meta = configparser.ConfigParser()
    meta.read(ROOT / "metadata.txt")
    assert meta["general"]["supportsQt6"] == "True"
    assert meta["general"]["qgisMaximumVersion"] == "4.99"
