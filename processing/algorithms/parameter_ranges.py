"""Numeric parameters take their ranges from core.ranges, the table the CLI and the API use, and
are checked before any work: NaN, infinity, a value outside the range or a fraction for a whole
number is refused in one sentence. A SCHEDULER this machine cannot run (core.scale.cluster) is
refused the same way.

A parameter is found in the table by its name in lower case, or through TABLE_NAMES; for those in
ZERO_MEANS_AUTO, 0 means "automatic" (as the parameter's description says) besides the range.
"""
from __future__ import annotations

import math
from typing import Optional

from qgis.core import QgsProcessingException, QgsProcessingParameterNumber

from ...core.ranges import RANGES, Range

TABLE_NAMES = {"MIN_FRACTION": "min_labeled"}
ZERO_MEANS_AUTO = {"GSD", "RESOLUTION", "BOUNDARY_DISTANCE", "BLOCK_SIZE"}
LARGEST_INT = 2 ** 31 - 1  # what parameterAsInt can hold


def table_rule(name: str) -> Optional[Range]:
    """The range core.ranges gives the parameter `name`, or None when the table lacks it."""
    return RANGES.get(TABLE_NAMES.get(name, name.lower()))


def apply_range(definition) -> None:
    """Give a QgsProcessingParameterNumber the minimum and maximum of its table range."""
    rule = table_rule(definition.name())
    if rule is None:
        return
    if rule.low is not None:
        definition.setMinimum(0.0 if definition.name() in ZERO_MEANS_AUTO else rule.low)
    if definition.dataType() == QgsProcessingParameterNumber.Type.Integer:
        definition.setMaximum(LARGEST_INT if rule.high is None else min(rule.high, LARGEST_INT))
    elif rule.high is not None:
        definition.setMaximum(rule.high)


def check_numbers(alg, parameters, context) -> None:
    """Refuse, with one sentence (QgsProcessingException), a numeric parameter outside its range."""
    for definition in alg.parameterDefinitions():
        if not isinstance(definition, QgsProcessingParameterNumber):
            continue
        name = definition.name()
        if parameters.get(name) is None:
            continue  # the default, which is in range
        value = alg.parameterAsDouble(parameters, name, context)
        if not _fits(definition, value):
            raise QgsProcessingException(f"{definition.description()} ({name}) must be {_range_text(definition)}, "
                                         f"not {parameters.get(name)!r}.")


def check_scheduler(alg, parameters, context) -> None:
    """Refuse a SCHEDULER that is neither local:N this machine can hold nor tcp://HOST:PORT."""
    if alg.parameterDefinition("SCHEDULER") is None:
        return
    spec = alg.parameterAsString(parameters, "SCHEDULER", context).strip()
    if spec:
        from ...core.errors import SettingError
        from ...core.scale.cluster import parse_cluster

        try:
            parse_cluster(spec, option="SCHEDULER")
        except SettingError as exc:
            raise QgsProcessingException(str(exc)) from exc


def _fits(definition, value: float) -> bool:
    if not math.isfinite(value):
        return False
    name = definition.name()
    if value == 0 and name in ZERO_MEANS_AUTO:
        return True
    integer = definition.dataType() == QgsProcessingParameterNumber.Type.Integer
    if integer and not float(value).is_integer():
        return False
    rule = table_rule(name)
    if rule is not None and not rule.fits(value):
        return False
    return definition.minimum() <= value <= definition.maximum()


def _range_text(definition) -> str:
    rule = table_rule(definition.name())
    integer = definition.dataType() == QgsProcessingParameterNumber.Type.Integer
    if rule is None:
        return f"a {'whole ' if integer else ''}number from {definition.minimum():g} to {definition.maximum():g}"
    text = rule.text()
    if integer and (rule.high is None or rule.high > LARGEST_INT):
        text = f"{text}{' and' if rule.high is None else ','} up to {LARGEST_INT}"
    return text + (" (or 0: automatic)" if definition.name() in ZERO_MEANS_AUTO else "")
