"""The labeling schema: classes with stable integer codes, colours, a hierarchy and per-class fields.

An ontology file (JSON; YAML where PyYAML is importable) looks like

    {"classes": [
        {"name": "water", "code": 1, "color": "#1f78b4", "index": "ndwi"},
        {"name": "pond", "code": 11, "color": "#a6cee3", "parent": "water"},
        {"name": "building", "code": 2, "color": "#e31a1c",
         "attributes": {"roof": {"type": "str", "values": ["flat", "pitched"]}}}]}

A code is what a class raster, a training mask and a COCO category id hold for that class, in every
file, forever: 0 is background, codes are positive integers. `class_codes` is the one place in Seg
that turns class names into codes; every writer and reader of classes goes through it.
"""
from __future__ import annotations

import json
import numbers
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple


from ..outputs.atomic import write_text_atomic
from ..errors import OntologyError, SegWarning

ATTRIBUTE_TYPES = ("str", "int", "float", "bool")
INDEX_NAMES = ("ndwi", "ndvi")  # core.timeseries.spectral computes them
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_INTEGER = re.compile(r"^\s*[+]?0*([1-9][0-9]*)\s*$")


@dataclass(frozen=True)
class ClassAttribute:
    """A per-class field: a name, a type (str, int, float, bool) and, optionally, the allowed values."""
    name: str
    type: str = "str"
    values: Tuple[Any, ...] = ()


@dataclass(frozen=True)
class OntologyClass:
    """One class: `name`, its stable `code` (>= 1), a colour '#rrggbb' (a fixed palette colour of
    the code when None), an optional `parent` class name, per-class `attributes`, and the spectral
    `index` that shows it on imagery ("ndwi" for water, "ndvi" for vegetation; children inherit it),
    and `synonyms`: other words for it (a text prompt "pond" finds the class "water")."""
    name: str
    code: int
    color: Optional[str] = None
    parent: Optional[str] = None
    attributes: Tuple[ClassAttribute, ...] = field(default=())
    index: Optional[str] = None
    synonyms: Tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise OntologyError(f"Every class needs a non-empty name, not {self.name!r}.")
        if isinstance(self.code, bool) or not isinstance(self.code, numbers.Integral) or self.code < 1:
            raise OntologyError(f"The class {self.name!r} needs a positive integer code (0 is background), not {self.code!r}.")
        object.__setattr__(self, "code", int(self.code))
        color = default_color(self.code) if self.color in (None, "") else str(self.color)
        if not _COLOR.match(color):
            raise OntologyError(f"The colour of the class {self.name!r} must look like '#rrggbb', not {color!r}.")
        object.__setattr__(self, "color", color.lower())
        object.__setattr__(self, "attributes", tuple(self.attributes))
        object.__setattr__(self, "synonyms", tuple(str(s).strip() for s in self.synonyms if str(s).strip()))
        if self.index is not None and self.index not in INDEX_NAMES:
            raise OntologyError(f"The index of the class {self.name!r} must be one of {', '.join(INDEX_NAMES)}, not {self.index!r}.")

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"name": self.name, "code": self.code, "color": self.color}
        if self.parent:
            out["parent"] = self.parent
        if self.index:
            out["index"] = self.index
        if self.synonyms:
            out["synonyms"] = list(self.synonyms)
        if self.attributes:
            out["attributes"] = {a.name: ({"type": a.type, "values": list(a.values)} if a.values else {"type": a.type})
                                 for a in self.attributes}
        return out


class Ontology:
    """An ordered set of classes with unique names and unique codes; parents must be classes too."""

    def __init__(self, classes: Iterable[OntologyClass]):
        self.classes: Tuple[OntologyClass, ...] = tuple(classes)
        self._by_name: Dict[str, OntologyClass] = {}
        self._by_code: Dict[int, OntologyClass] = {}
        for c in self.classes:
            if c.name in self._by_name:
                raise OntologyError(f"The ontology names the class {c.name!r} twice.")
            if c.code in self._by_code:
                raise OntologyError(f"The classes {self._by_code[c.code].name!r} and {c.name!r} share the code {c.code}.")
            self._by_name[c.name] = c
            self._by_code[c.code] = c
        for c in self.classes:
            if c.parent is not None and c.parent not in self._by_name:
                raise OntologyError(f"The parent {c.parent!r} of the class {c.name!r} is not in the ontology.")
        _check_no_parent_cycle(self._by_name)

    @property
    def names(self) -> List[str]:
        """Class names in the file's order."""
        return [c.name for c in self.classes]

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self):
        return iter(self.classes)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ontology) and self.classes == other.classes

    def __repr__(self) -> str:
        return f"Ontology({', '.join(f'{c.name}={c.code}' for c in self.classes)})"

    def has_code(self, code: int) -> bool:
        return int(code) in self._by_code

    def get(self, name: str) -> Optional[OntologyClass]:
        return self._by_name.get(name)

    def code_of(self, name: str) -> int:
        """The code of a class name; one sentence when the name is not in the ontology."""
        c = self._by_name.get(str(name))
        if c is None:
            raise OntologyError(f"The class {name!r} is not in the ontology; add it there or allow missing classes (--add-missing).")
        return c.code

    def name_of(self, code: int) -> str:
        """The class name of a code; one sentence when no class has that code."""
        c = self._by_code.get(int(code))
        if c is None:
            raise OntologyError(f"No class of the ontology has the code {int(code)}.")
        return c.name

    def color_of(self, name: str) -> str:
        """'#rrggbb' of a class name."""
        c = self._by_name.get(str(name))
        if c is None:
            raise OntologyError(f"The class {name!r} is not in the ontology.")
        return c.color

    def index_of(self, name: str) -> Optional[str]:
        """The spectral index of a class, its own or its nearest parent's."""
        c = self._by_name.get(str(name))
        while c is not None:
            if c.index:
                return c.index
            c = self._by_name.get(c.parent) if c.parent else None
        return None

    def children_of(self, name: str) -> List[str]:
        return [c.name for c in self.classes if c.parent == name]

    def extended(self, names: Iterable[str]) -> "Ontology":
        """This ontology plus the missing `names` (sorted), coded after the highest code."""
        missing = sorted({str(n) for n in names} - set(self._by_name))
        top = max(self._by_code, default=0)
        return Ontology(list(self.classes) + [OntologyClass(n, top + i + 1) for i, n in enumerate(missing)])

    def to_dict(self) -> Dict[str, Any]:
        return {"classes": [c.to_dict() for c in self.classes]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any, where: str = "the ontology") -> "Ontology":
        """From {"classes": [...]} or a bare list of class records."""
        records = data.get("classes") if isinstance(data, Mapping) else data
        if not isinstance(records, list):
            raise OntologyError(f"{where} must hold a list of classes under 'classes'.")
        return cls(_class_from_record(r, where) for r in records)

    @classmethod
    def from_codes(cls, codes: Mapping[str, int]) -> "Ontology":
        """An ontology with default colours from a name -> code mapping."""
        return cls(OntologyClass(str(n), int(c)) for n, c in sorted(codes.items(), key=lambda kv: kv[1]))


def _check_no_parent_cycle(by_name: Mapping[str, OntologyClass]) -> None:
    """One sentence when a class is its own parent or parents lead back to a class."""
    for c in by_name.values():
        chain = [c.name]
        parent = c.parent
        while parent is not None:
            if parent in chain:
                loop = chain[chain.index(parent):] + [parent]
                if len(loop) == 2:
                    raise OntologyError(f"The class {c.name!r} is its own parent; a class cannot contain itself.")
                raise OntologyError(f"The parents of the classes form a cycle ({' -> '.join(map(repr, loop))}); "
                                    "a class cannot contain itself.")
            chain.append(parent)
            parent = by_name[parent].parent


_VALUE_TYPES = {"str": (str,), "int": (numbers.Integral,), "float": (numbers.Real,), "bool": (bool,)}


def _text_field(record: Mapping, key: str, where: str, optional: bool = True) -> Optional[str]:
    """record[key] as text: a string (a number is read as its digits); None when absent and optional."""
    value = record.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Integral)):
        raise OntologyError(f"The {key} of a class in {where} must be text, not {value!r}.")
    return str(value)


def _attribute_from_spec(spec: Any, owner: str, where: str) -> ClassAttribute:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or not spec["name"].strip():
        raise OntologyError(f"An attribute of the class {owner!r} in {where} has no name.")
    name = spec["name"]
    kind = spec.get("type", "str")
    if kind not in ATTRIBUTE_TYPES:
        raise OntologyError(f"The attribute {name!r} of the class {owner!r} has the type {kind!r}; "
                            f"use one of {', '.join(ATTRIBUTE_TYPES)}.")
    values = spec.get("values")
    if values is None:
        values = []
    if not isinstance(values, (list, tuple)):
        raise OntologyError(f"The values of the attribute {name!r} of the class {owner!r} in {where} must be a list, "
                            f"not {values!r}.")
    for v in values:
        if not isinstance(v, _VALUE_TYPES[kind]) or (kind in ("int", "float") and isinstance(v, bool)):
            raise OntologyError(f"The attribute {name!r} of the class {owner!r} is of type {kind}, but one of its "
                                f"values is {v!r}.")
    if len(set(values)) != len(values):
        raise OntologyError(f"The attribute {name!r} of the class {owner!r} lists a value twice.")
    return ClassAttribute(name, kind, tuple(values))


def _class_from_record(record: Any, where: str) -> OntologyClass:
    if not isinstance(record, Mapping) or "name" not in record or "code" not in record:
        raise OntologyError(f"Every class in {where} needs a 'name' and a 'code', not {record!r}.")
    name = _text_field(record, "name", where, optional=False)
    attrs = record.get("attributes") or {}
    if isinstance(attrs, Mapping):
        attrs = [dict(spec or {}, name=key) if isinstance(spec, Mapping) or spec is None else {"name": key, "values": spec}
                 for key, spec in attrs.items()]
    if not isinstance(attrs, list):
        raise OntologyError(f"The attributes of the class {name!r} in {where} must be a mapping or a list, not {attrs!r}.")
    parsed = [_attribute_from_spec(a, name, where) for a in attrs]
    if len({a.name for a in parsed}) != len(parsed):
        raise OntologyError(f"The class {name!r} in {where} names an attribute twice.")
    code = record["code"]
    if isinstance(code, str) and _INTEGER.match(code):
        code = int(code)
    color = record.get("color")
    if color is not None and not isinstance(color, str):
        raise OntologyError(f"The colour of the class {name!r} must look like '#rrggbb', not {color!r}.")
    index = _text_field(record, "index", where)
    synonyms = record.get("synonyms") or ()
    if isinstance(synonyms, str) or not all(isinstance(s, str) for s in synonyms):
        raise OntologyError(f"The synonyms of the class {name!r} in {where} must be a list of words, not {synonyms!r}.")
    return OntologyClass(name, code, color, _text_field(record, "parent", where), tuple(parsed), index.lower() if index else None,
                         tuple(synonyms))


def load_ontology(path: str) -> Ontology:
    """An ontology from a JSON file, or a YAML file (.yaml/.yml) when PyYAML is importable."""
    if not os.path.isfile(path):
        raise OntologyError(f"The ontology file {path} does not exist.")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OntologyError(f"{path} is not UTF-8 text (byte {exc.start + 1} is not); save it as UTF-8.") from None
    except OSError as exc:
        raise OntologyError(f"Cannot read the ontology file {path}: {exc.strerror or exc}.") from None
    if path.lower().endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise OntologyError(f"{path} is YAML but PyYAML is not installed; install it or use JSON.") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise OntologyError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}.") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OntologyError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}.") from None
    return Ontology.from_dict(data, where=path)


def save_ontology(ontology: Ontology, path: str) -> str:
    """Write `ontology` as JSON (YAML for .yaml/.yml when PyYAML is importable), atomically."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OntologyError(f"The folder {folder} does not exist.")
    if path.lower().endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise OntologyError(f"Cannot write YAML to {path}: PyYAML is not installed; use a .json name.") from None
        text = yaml.safe_dump(ontology.to_dict(), sort_keys=False, allow_unicode=True)
    else:
        text = ontology.to_json() + "\n"
    return write_text_atomic(path, text, "the ontology")


def integer_code(name: Any) -> Optional[int]:
    """The positive integer a class name spells ('3', 3, '07'), else None."""
    if isinstance(name, bool):
        return None
    if isinstance(name, numbers.Integral):
        return int(name) if name > 0 else None
    if isinstance(name, float) and name.is_integer():
        return int(name) if name > 0 else None
    m = _INTEGER.match(str(name))
    return int(m.group(1)) if m else None


def class_codes(names: Iterable[Any], ontology: Optional[Ontology] = None, add_missing: bool = False,
                where: str = "") -> Dict[str, int]:
    """Class name -> code for every name in `names` (None and '' are skipped), the one numbering in Seg.

    With an ontology: its codes; a name not in it is an error, or with `add_missing` it is coded
    after the ontology's highest code (sorted). Without: names that spell a positive integer keep
    that integer (so polygonize -> rasterize is exact); other names get the codes after the highest
    integer, in sorted order (1..N when there are no integer names), and a SegWarning says those
    codes hold for this file only (`where` names it).
    """
    unique = sorted({str(n) for n in names if n is not None and str(n) != ""})
    if ontology is not None:
        if add_missing:
            ontology = ontology.extended(unique)
        return {n: ontology.code_of(n) for n in unique}
    codes = {n: integer_code(n) for n in unique}
    numbered = [n for n, c in codes.items() if c is None]
    by_code: Dict[int, str] = {}
    for n, c in codes.items():
        if c is not None and c in by_code:  # '3' and '03'
            raise OntologyError(f"The class names {by_code[c]!r} and {n!r} both mean the code {c}; use one spelling.")
        if c is not None:
            by_code[c] = n
    top = max(by_code, default=0)
    for i, n in enumerate(numbered):
        codes[n] = top + i + 1
    if numbered:
        warnings.warn(f"Without an ontology (--classes), the codes of {', '.join(f'{n}={codes[n]}' for n in numbered[:6])}"
                      f"{' ...' if len(numbered) > 6 else ''} hold for {where or 'this file'} only.", SegWarning, stacklevel=2)
    return {n: int(c) for n, c in codes.items()}


def check_code_fits(code: int, dtype: Any) -> None:
    """One sentence when `code` does not fit the integer raster type `dtype` (0 stays background)."""
    import numpy as np

    info = np.iinfo(np.dtype(dtype))
    if not 0 < int(code) <= info.max:
        raise OntologyError(f"The class code {int(code)} does not fit a {np.dtype(dtype).name} raster "
                            f"(codes 1..{info.max}); use a wider type or smaller codes.")


def code_dtype(codes: Iterable[int]) -> str:
    """The smallest unsigned type ('uint8', 'uint16', 'uint32') that holds every code."""
    top = max(codes, default=0)
    for dtype, largest in (("uint8", 2 ** 8 - 1), ("uint16", 2 ** 16 - 1), ("uint32", 2 ** 32 - 1)):
        if top <= largest:
            return dtype
    check_code_fits(top, "uint32")
    return "uint32"


_PALETTE = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
            "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3",
            "#808000", "#ffd8b1", "#000075", "#808080")


def default_color(code: int) -> str:
    """A fixed colour for a code (the same in every file and session)."""
    return _PALETTE[(int(code) - 1) % len(_PALETTE)]


def ontology_or_codes(codes: Mapping[str, int], ontology: Optional[Ontology]) -> Ontology:
    """The ontology restricted to `codes`' classes, or one with default colours built from them."""
    if ontology is None:
        return Ontology.from_codes(codes)
    return Ontology([ontology.get(n) or OntologyClass(n, c) for n, c in sorted(codes.items(), key=lambda kv: kv[1])])


def names_to_codes_text(codes: Mapping[str, int]) -> str:
    """'1=water, 2=building' for messages and legends."""
    return ", ".join(f"{c}={n}" for n, c in sorted(codes.items(), key=lambda kv: kv[1]))


__all__ = ["ClassAttribute", "OntologyClass", "Ontology", "load_ontology", "save_ontology", "class_codes",
           "check_code_fits", "code_dtype", "default_color", "integer_code", "ontology_or_codes"]
