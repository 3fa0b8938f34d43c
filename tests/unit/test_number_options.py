"""Every numeric option of every `seg` command has a range (core.ranges) checked at parse time:
NaN, infinity and out-of-range values exit 2 before any work, and the help states the range. The
library entries the CLI, the API and Processing share refuse the same values; --cluster asks for no
more local workers than the machine holds."""
import argparse
import math

import pytest

from seg_qgis_plugin.cli.main import build_parser, main
from seg_qgis_plugin.core.errors import SettingError
from seg_qgis_plugin.core.ranges import RANGES, check_number
from seg_qgis_plugin.core.scale.cluster import max_local_workers, parse_cluster


def _numeric_options():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, p in sub.choices.items():
        for action in p._actions:
            if action.option_strings and action.dest in RANGES:
                yield command, action


OPTIONS = list(_numeric_options())


def test_every_numeric_option_is_ranged_and_says_so():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    plain = [(c, a.dest) for c, p in sub.choices.items() for a in p._actions if a.type in (int, float)]
    assert plain == []  # apply_ranges replaced them all
    assert len(OPTIONS) > 40
    for command, action in OPTIONS:
        assert action.type.__name__.startswith("number (") and RANGES[action.dest].text() in action.help


def _bad_values(rule):
    values = ["nan", "NaN", "inf", "-inf", "abc", ""]
    if rule.low is not None:
        values.append(repr(rule.low - 1))
        if rule.low_open:
            values.append(repr(rule.low))
    if rule.high is not None:
        values.append(repr(rule.high + 1))
    if rule.integer:
        values.append(repr((rule.low or 0) + 1.5))
    return values


@pytest.mark.parametrize("command, action", OPTIONS, ids=[f"{c} {a.option_strings[-1]}" for c, a in OPTIONS])
def test_bad_numbers_exit_2_at_parse_time(command, action, capsys, tmp_path):
    rule = RANGES[action.dest]
    for value in _bad_values(rule):
        with pytest.raises(SystemExit) as caught:
            build_parser().parse_args([command, f"{action.option_strings[-1]}={value}"])
        err = capsys.readouterr().err
        assert caught.value.code == 2 and "Traceback" not in err
        assert f"argument {'/'.join(action.option_strings)}" in err, err
    if action.default is not None:
        assert rule.fits(float(action.default)), (command, action.dest, action.default)


def test_nan_never_reaches_a_report(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["qa", str(tmp_path / "l.gpkg"), "--out", str(tmp_path / "f.gpkg"), "--gap-width", "nan",
              "--report", str(tmp_path / "r.json")])
    assert caught.value.code == 2
    assert list(tmp_path.iterdir()) == []


def test_the_library_entries_refuse_the_same_values():
    from seg_qgis_plugin.core.quality.agreement import AgreementOptions
    from seg_qgis_plugin.core.quality.qa import Tolerances
    from seg_qgis_plugin.core.timeseries.propagate import PropagateOptions

    for bad in (math.nan, math.inf, -1.0):
        with pytest.raises(SettingError, match="gap width must be"):
            Tolerances(gap_width=bad)
        with pytest.raises(SettingError, match="boundary distance must be"):
            AgreementOptions(boundary_distance=bad)
        with pytest.raises(SettingError, match="minimum score must be"):
            PropagateOptions(min_score=bad)
    with pytest.raises(SettingError, match="boundary distance must be"):
        AgreementOptions(boundary_distance=0.0)
    for name, rule in RANGES.items():
        with pytest.raises(SettingError):
            check_number(name, math.nan)
        with pytest.raises(SettingError):
            check_number(name, True)


def test_api_auto_refuses_bad_numbers(tmp_path):
    from seg_qgis_plugin import api

    class Stub:
        pass

    for kwargs in ({"min_score": math.nan}, {"points_per_side": 0}, {"min_stability": 2.0}):
        with pytest.raises(SettingError):
            api.Session.auto(Stub(), **kwargs)


def test_a_local_cluster_larger_than_the_machine_is_refused(capsys):
    most = max_local_workers()
    assert parse_cluster(f"local:{most}") == ("local", most)
    with pytest.raises(SettingError, match="more worker processes than this machine can hold"):
        parse_cluster(f"local:{most + 1}")
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["prelabel", "r.tif", "--auto", "--out", "o.gpkg", "--cluster", "local:100000"])
    assert caught.value.code == 2 and "at most local:" in capsys.readouterr().err
