"""The one table of numeric options and their ranges, shared by the CLI (argparse types, checked
at parse time), the Python API (keyword arguments) and Processing (parameter minimum/maximum).

Every value must be a finite number (NaN and infinity are refused everywhere: JSON cannot hold
them and no tolerance means anything at NaN) inside its range; integers must be whole.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Optional

from .errors import SettingError


@dataclass(frozen=True)
class Range:
    """low..high (None: unbounded), `low_open`: low itself excluded; `integer`: whole numbers."""
    low: Optional[float] = 0.0
    high: Optional[float] = None
    low_open: bool = False
    integer: bool = False

    def text(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        if self.high is None:
            return f"{kind} {'above' if self.low_open else 'of at least'} {self.low:g}"
        return f"{kind} {'above ' + format(self.low, 'g') + ' and up to' if self.low_open else 'from ' + format(self.low, 'g') + ' to'} {self.high:g}"

    def fits(self, value: float) -> bool:
        if not math.isfinite(value) or (self.integer and not float(value).is_integer()):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


_FRACTION = Range(0.0, 1.0)
_SIZE = Range(0.0)  # tolerances, areas, distances in map units or metres
_POSITIVE = Range(0.0, low_open=True)

RANGES = {
    "block_size": Range(1, integer=True),
    "block_tiles": Range(1, 100_000, integer=True),
    "boundary_distance": _POSITIVE,
    "fill_holes": _SIZE,
    "gap_width": _SIZE,
    "gsd": _POSITIVE,
    "hole_area": _SIZE,
    "iou": Range(0.0, 1.0, low_open=True),
    "min_area": _SIZE,
    "min_labeled": _FRACTION,
    "min_score": _FRACTION,
    "min_stability": _FRACTION,
    "outlier_z": _POSITIVE,
    "overlap": Range(0, integer=True),
    "overlap_area": _SIZE,
    "points_per_side": Range(1, 1024, integer=True),
    "resolution": _POSITIVE,
    "scale": Range(1, 1024, integer=True),
    "seed": Range(0, 2 ** 32 - 1, integer=True),
    "simplify": _SIZE,
    "sliver_compactness": _FRACTION,
    "sliver_width": _SIZE,
    "smooth": Range(0.0, 100.0),
    "snap": _SIZE,
    "threads": Range(0, 1024, integer=True),
    "threshold": _FRACTION,
    "tile": Range(1, 16384, integer=True),
    "top": Range(1, integer=True),
}


def check_number(name: str, value, option: str = "") -> float:
    """`value` when it is a finite number in RANGES[name]; SettingError in one sentence naming
    `option` (default: the name) otherwise. None passes (an option not given)."""
    if value is None:
        return value
    rule = RANGES[name]
    what = option or name
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not rule.fits(float(value)):
        raise SettingError(f"{what} must be {rule.text()}, not {value!r}.")
    return int(value) if rule.integer else float(value)


def checked_numbers(fn):
    """Decorate an API function: its arguments named in RANGES are checked (check_number) first."""
    import functools
    import inspect

    signature = inspect.signature(fn)
    names = [n for n in signature.parameters if n in RANGES]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        for name in names:
            if name in bound.arguments:
                check_number(name, bound.arguments[name])
        return fn(*args, **kwargs)

    return wrapper


def parse_number(name: str, text: str, option: str = ""):
    """The number `text` spells, checked as check_number does (for argparse types and forms)."""
    rule = RANGES[name]
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise SettingError(f"{option or name} must be {rule.text()}, not {text!r}.") from None
    return check_number(name, value, option)


__all__ = ["Range", "RANGES", "check_number", "checked_numbers", "parse_number"]
