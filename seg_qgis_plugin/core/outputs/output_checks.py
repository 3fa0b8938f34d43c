"""The one check every run makes before any work: its outputs can be written, none of them names
an input (by any path), and no two of them name the same file.

"The same file" covers symlinks, relative and absolute paths, `..`, case on case-insensitive file
systems (os.path.samefile when both exist), and the layer forms GDAL and QGIS give a file:
`path|layername=x`, `path?table=x`, `GPKG:path:table`, `ogr:dbname='path' table=...`. A GeoPackage
layer is the whole file here: writing any layer of it rewrites the file an input is read from.
A folder output may neither be an input nor hold one. Database targets (PostGIS) and memory
layers are not files and are left to their writers.

    check_outputs({"--out": args.out, "--csv": args.csv}, {"labels": args.labels})
"""
from __future__ import annotations

import os
import re
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import OutputError

Paths = Union[None, str, os.PathLike, Sequence[Union[None, str, os.PathLike]]]

_NOT_FILES = ("postgresql://", "postgres://", "PG:", "memory:", "TEMPORARY_OUTPUT", "http://", "https://", "/vsimem/")


def file_of(target) -> Optional[str]:
    """The file a path, a layer URI or a data source string names (absolute), or None when it
    names no file (a database, a memory layer, nothing)."""
    if target is None:
        return None
    text = os.fspath(target).strip() if isinstance(target, (str, os.PathLike)) else str(target).strip()
    if not text or text.startswith(_NOT_FILES):
        return None
    if text.startswith("ogr:"):
        found = re.search(r"dbname='((?:[^']|'')*)'", text) or re.search(r"dbname=(\S+)", text)
        return file_of(found.group(1).replace("''", "'")) if found else None
    if text.startswith("GPKG:"):
        text = text[len("GPKG:"):].rsplit(":", 1)[0] if text.count(":") > 1 else text[len("GPKG:"):]
    text = text.split("|", 1)[0]
    if "?" in text and "=" in text.split("?", 1)[1] and not os.path.exists(text):
        text = text.split("?", 1)[0]
    return os.path.abspath(os.path.expanduser(text))


def same_file(a: str, b: str) -> bool:
    """Whether two absolute paths name one file or folder (by any path); see the module doc."""
    if os.path.exists(a) and os.path.exists(b):
        try:
            return os.path.samefile(a, b)
        except OSError:
            pass
    return _key(a) == _key(b)


def check_outputs(outputs: Mapping[str, Paths], inputs: Mapping[str, Paths] = None, folders: Iterable[str] = ()) -> None:
    """Refuse, with one sentence (OutputError), outputs that cannot be written or that name an
    input or each other. outputs, inputs: name (a flag, a parameter) -> path, layer URI, a list of
    them, or None; folders: the names in `outputs` that are folders (a folder output may not hold
    an input or another output). Outputs that already exist are the writers' affair (overwrite,
    append, a new GeoPackage layer)."""
    folder_names = set(folders)
    outs = _named(outputs)
    ins = _named(inputs or {})
    for name, path in outs:
        for in_name, in_path in ins:
            if same_file(path, in_path):
                shown = in_name if in_path == path else f"{in_name} ({in_path})"
                raise OutputError(f"The output {name} ({path}) is the input {shown}; give it another file: "
                                  f"Seg never writes over an input.")
            if name in folder_names and _inside(in_path, path):
                raise OutputError(f"The output folder {name} ({path}) holds the input {in_name} ({in_path}); choose "
                                  f"another folder: Seg never writes over an input.")
    for i, (name, path) in enumerate(outs):
        for other, other_path in outs[i + 1:]:
            if same_file(path, other_path) or _key(path).casefold() == _key(other_path).casefold():
                raise OutputError(f"The outputs {name} and {other} name the same file ({path}); give each output its own file.")
            for outer, outer_path, inner, inner_path in ((name, path, other, other_path), (other, other_path, name, path)):
                if outer in folder_names and _inside(inner_path, outer_path):
                    raise OutputError(f"The output {inner} ({inner_path}) lies in the output folder {outer}; "
                                      f"give it a place outside that folder.")
    for name, path in outs:
        _check_writable(name, path, name in folder_names)


def _named(mapping: Mapping[str, Paths]) -> List[Tuple[str, str]]:
    named = []
    for name, value in mapping.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            path = file_of(item)
            if path is not None:
                named.append((name, path))
    return named


def _check_writable(name: str, path: str, folder_output: bool) -> None:
    """A file's folder must exist; a folder output is made with its missing parents."""
    if folder_output and os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"The output folder {name} ({path}) is a file; give a folder.")
    if os.path.isdir(path) and not folder_output:
        raise OutputError(f"The output {name} ({path}) is a folder; give a file name.")
    folder = os.path.dirname(path)
    while folder_output and not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise OutputError(f"The folder {folder} of the output {name} does not exist.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"The folder {folder} of the output {name} is not writable.")


def _inside(path: str, folder: str) -> bool:
    key, outer = _key(path), _key(folder)
    return key == outer or key.startswith(outer.rstrip(os.sep) + os.sep)


def _key(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


__all__ = ["check_outputs", "file_of", "same_file"]
