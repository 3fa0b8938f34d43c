"""Every numeric option of `seg` checked at parse time against core.ranges (the table the API and
Processing use too): NaN, infinity and values out of range are an argparse error (exit 2, one
line after the usage), and each option's help states its range."""
from __future__ import annotations

import argparse

from ..core.errors import SettingError
from ..core.ranges import RANGES, parse_number
from .options import non_negative

_PLAIN_NUMBER_TYPES = (int, float, non_negative)


def ranged(name: str, option: str):
    """An argparse type for the option `option` checked against RANGES[name]."""

    def parse(text: str):
        try:
            return parse_number(name, text, option)
        except SettingError:  # argparse names the option itself: "argument --simplify: must be ..."
            raise argparse.ArgumentTypeError(f"must be {RANGES[name].text()}, not {text}") from None

    parse.__name__ = f"number ({name})"
    return parse


def apply_ranges(parser: argparse.ArgumentParser) -> None:
    """Give every numeric option of `parser` and its subcommands its range from RANGES. A numeric
    option missing from the table is a programming error (KeyError), caught by the tests."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                apply_ranges(sub)
        elif action.type in _PLAIN_NUMBER_TYPES and action.option_strings:
            rule = RANGES[action.dest]
            action.type = ranged(action.dest, action.option_strings[-1])
            action.help = f"{action.help + '; ' if action.help else ''}{rule.text()}"
