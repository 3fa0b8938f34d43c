"""Checks of a LightGBM text model before LightGBM sees it.

LightGBM trusts its model text: a truncated or edited one (a tree cut short, a child index out of
range, a wrong `tree_sizes`) can crash the whole process (SIGSEGV) instead of raising. So Seg
records the sha256 of the text when it saves a model and refuses a text that no longer matches,
and checks the structure of every text (also of models saved before the checksum existed): the
header against the class list and the feature recipe, the tree sections against `tree_sizes`, and
in each tree the array lengths, feature indices and child links. Only what Seg trains is accepted:
numerical splits (no categorical features), no linear trees.

Every problem is a ValueError with a short reason; load_model turns it into one sentence.
"""
from __future__ import annotations

import hashlib
import math
import re
from typing import Dict, List

_NODE_ARRAYS = ("split_feature", "split_gain", "threshold", "decision_type", "left_child", "right_child",
                "internal_value", "internal_weight", "internal_count")
_LEAF_ARRAYS = ("leaf_value", "leaf_weight", "leaf_count")
_KEY = re.compile(r"^[A-Za-z_]+$")
_TREE_KEYS = ("num_leaves", "num_cat", "is_linear", "shrinkage")


def text_sha256(text: str) -> str:
    """sha256 (hex) of a model text as Seg records it (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_model_text(text: str, n_classes: int, n_features: int) -> None:
    """Raise ValueError when `text` is not a whole LightGBM tree model for `n_classes` classes
    (binary for 2) over `n_features` features."""
    if not isinstance(text, str) or not text.startswith("tree\n"):
        raise ValueError("the forest is not a LightGBM text model")
    start = text.find("\nTree=0\n")
    end = text.find("end of trees")
    if start < 0 or end < start:
        raise ValueError("the forest's trees are missing or cut short")
    header = _key_values(text[:start].splitlines()[1:])
    if not header.get("version", "").startswith("v"):
        raise ValueError("the forest has no version")
    num_class = _integer(header, "num_class")
    expected = 1 if n_classes == 2 else n_classes
    if num_class != expected or _integer(header, "num_tree_per_iteration") != expected:
        raise ValueError(f"the forest predicts {num_class} class score(s) but the model lists {n_classes} classes")
    objective = header.get("objective", "").split(" ")[0]
    if objective != ("binary" if n_classes == 2 else "multiclass"):
        raise ValueError(f"the forest's objective {objective!r} does not fit {n_classes} classes")
    if _integer(header, "max_feature_idx") + 1 != n_features or len(header.get("feature_names", "").split()) != n_features:
        raise ValueError(f"the forest reads {_integer(header, 'max_feature_idx') + 1} features but the recipe makes {n_features}")
    sizes = [_parse_int(v, "tree_sizes") for v in header.get("tree_sizes", "").split()]
    if not sizes or len(sizes) % num_class or min(sizes) <= 0:
        raise ValueError("the forest's tree_sizes are missing or wrong")
    trees = text[start + 1:end]
    if sum(sizes) != len(trees.encode("utf-8")):
        raise ValueError("the forest's trees do not add up to its tree_sizes (cut short or edited)")
    data, offset = trees.encode("utf-8"), 0
    for i, size in enumerate(sizes):
        block = data[offset:offset + size].decode("utf-8", errors="replace")
        offset += size
        if not block.startswith(f"Tree={i}\n"):
            raise ValueError(f"tree {i} does not start where tree_sizes says")
        _check_tree(block.splitlines()[1:], i, n_features)


def _check_tree(lines: List[str], index: int, n_features: int) -> None:
    tree = _key_values(lines)
    leaves = _integer(tree, "num_leaves", f"tree {index}")
    if leaves < 1:
        raise ValueError(f"tree {index} has no leaves")
    needed = _TREE_KEYS + ("leaf_value",) + (_LEAF_ARRAYS + _NODE_ARRAYS if leaves > 1 else ())
    missing = [key for key in needed if key not in tree]
    if missing:
        raise ValueError(f"tree {index} has no {missing[0]}")
    if tree["num_cat"] != "0" or tree["is_linear"] != "0":
        raise ValueError(f"tree {index} uses categorical splits or linear leaves, which Seg never trains")
    arrays: Dict[str, List[float]] = {}
    for name in (_LEAF_ARRAYS + _NODE_ARRAYS if leaves > 1 else ("leaf_value",)):
        values = [_parse_number(v, f"tree {index} {name}") for v in tree[name].split()]
        if len(values) != (leaves if name in _LEAF_ARRAYS else leaves - 1):
            raise ValueError(f"tree {index} has {len(values)} {name} values for {leaves} leaves")
        arrays[name] = values
    _parse_number(tree["shrinkage"], f"tree {index} shrinkage")
    if leaves == 1:
        return
    if any(not v.is_integer() or not 0 <= v < n_features for v in arrays["split_feature"]):
        raise ValueError(f"tree {index} splits on a feature the recipe does not make")
    if any(not v.is_integer() or not 0 <= v < 16 or int(v) & 1 for v in arrays["decision_type"]):
        raise ValueError(f"tree {index} has a decision type Seg never trains")
    children = arrays["left_child"] + arrays["right_child"]
    if any(not v.is_integer() for v in children):
        raise ValueError(f"tree {index} has a child that is not a node number")
    # each internal node but the root (1 .. leaves-2) and each leaf (-1 .. -leaves) is a child exactly once
    if sorted(int(v) for v in children) != list(range(-leaves, 0)) + list(range(1, leaves - 1)):
        raise ValueError(f"tree {index} has broken child links")


def _key_values(lines: List[str]) -> Dict[str, str]:
    """key=value lines up to the first blank one (the section's end); the header's flags are
    skipped, any other line is damage."""
    out: Dict[str, str] = {}
    ended = False  # LightGBM ends a section at its first blank line
    for line in lines:
        if ended and line:
            raise ValueError(f"the forest holds a line {line[:20]!r} after the end of its section")
        ended = ended or not line
        key, sep, value = line.partition("=")
        if not sep and line not in ("", "average_output", "linear_tree"):
            raise ValueError(f"the forest holds a line {line[:20]!r} that is not key=value")
        if sep and not _KEY.match(key):
            raise ValueError(f"the forest holds a line {line[:20]!r} that is not key=value")
        if sep:
            if key.strip() in out:
                raise ValueError(f"the forest names {key.strip()!r} twice in one section")
            out[key.strip()] = value.strip()
    return out


def _integer(values: Dict[str, str], key: str, where: str = "the forest") -> int:
    if key not in values:
        raise ValueError(f"{where} has no {key}")
    return _parse_int(values[key], f"{where} {key}")


def _parse_int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what} is not a whole number") from None


def _parse_number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} holds {text[:20]!r}, not a number") from None
    if math.isnan(value):
        raise ValueError(f"{what} holds NaN")
    return value
