"""Label classes with colours and free tags, kept in the QGIS project.

The class list travels with the .qgs/.qgz file (QgsProject.writeEntry under the "seg" scope), so a
team that shares a project shares its classes and colours. Tags are typed as `key=value` pairs
separated by ";" or new lines (date=2024-06-01; sensor=UAV; annotator=ana). A new project starts
without classes: the user adds them or loads an ontology, so no label is saved under a class
nobody chose.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Dict, List, Sequence

from ..core.errors import PromptError

SCOPE = "seg"
CLASSES_KEY = "classes"
TAGS_KEY = "tags"


@dataclass(frozen=True)
class LabelClass:
    """A class name and its colour as "#rrggbb"."""

    name: str
    color: str


def classes_to_json(classes: Sequence[LabelClass]) -> str:
    return json.dumps([{"name": c.name, "color": c.color} for c in classes])


def classes_from_json(text: str) -> List[LabelClass]:
    """Classes from the project entry; an empty or unreadable entry gives none."""
    try:
        items = json.loads(text) if text else []
        classes = [LabelClass(str(i["name"]), str(i.get("color", "#ff00ff"))) for i in items if str(i.get("name", "")).strip()]
    except (ValueError, TypeError, KeyError, AttributeError):
        classes = []
    return classes


def save_classes(project, classes: Sequence[LabelClass]) -> None:
    """Store the class list in `project` (a QgsProject); saved with the project file."""
    project.writeEntry(SCOPE, CLASSES_KEY, classes_to_json(classes))


def load_classes(project, fallback: str = "") -> List[LabelClass]:
    """The project's classes; where the project has none, `fallback` (JSON, e.g. the list the user
    had last time), else none."""
    text, _found = project.readEntry(SCOPE, CLASSES_KEY, "")
    return classes_from_json(text or fallback)


def save_tags_text(project, text: str) -> None:
    project.writeEntry(SCOPE, TAGS_KEY, text)


def load_tags_text(project, fallback: str = "") -> str:
    """The project's tags text; where the project has none, `fallback`."""
    text, found = project.readEntry(SCOPE, TAGS_KEY, "")
    return text if found and text else fallback


def parse_tags_text(text: str) -> Dict[str, str]:
    """"date=2024-06-01; sensor=UAV" -> {"date": "2024-06-01", "sensor": "UAV"}. Raises
    PromptError naming the first item that is not KEY=VALUE (the same rule as `seg --tag`; parsed
    here without the core's prompt module, which needs numpy and affine)."""
    tags = {}
    for item in (item.strip() for line in text.splitlines() for item in line.split(";")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PromptError(f"Cannot read the tag {item!r}; write KEY=VALUE, e.g. season=summer.")
        tags[key.strip()] = value.strip()
    return tags
