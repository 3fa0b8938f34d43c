"""Every numeric parameter of every Seg algorithm takes its range from core.ranges (the table the
CLI uses) and refuses NaN, infinity and values outside it in one sentence, before any work: nothing
is written and every input stays byte-identical. A SCHEDULER asking for more local workers than
the machine holds is refused with the CLI's sentence and limit. The parameters come from each
algorithm's own definitions, so a new numeric parameter is covered without editing this test."""
import hashlib
import math
import os

import pytest
from shapely.geometry import box

CRS = "EPSG:32633"


@pytest.fixture
def inputs(tmp_path, vector_factory):
    from seg_qgis_plugin.demo.scene import write_scene

    folder = tmp_path / "in"
    folder.mkdir()
    paths = {"raster": str(folder / "ortho.tif"), "raster2": str(folder / "ortho2.tif")}
    write_scene(paths["raster"], 64, 64)
    write_scene(paths["raster2"], 64, 64, seed=1)
    labels = vector_factory("labels", [box(500000, 4649990, 500005, 4649995)], CRS, geometry_type="Polygon",
                            **{"class": ["pond"], "date": ["2020-01-01"]})
    paths["source"] = str(folder / "labels.gpkg")
    os.replace(labels, paths["source"])
    return paths


def fingerprint(folder):
    """sha256 of every input file (GDAL's own .aux.xml sidecars, which QGIS may leave, aside)."""
    return {name: hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(folder)) if not name.endswith(".aux.xml")}


def valid_parameters(alg, inputs, out):
    """Parameters naming an input for every layer and file input, a fresh path for every destination."""
    params = {}
    for d in alg.parameterDefinitions():
        kind = d.type()
        if d.isDestination():
            params[d.name()] = str(out / (d.name().lower() + {"rasterDestination": ".tif", "fileDestination": ".json"}.get(kind, "")))
            if kind in ("sink", "vectorDestination"):
                params[d.name()] += ".gpkg"
        elif kind in ("raster", "source", "vector", "layer"):
            params[d.name()] = inputs["source" if kind in ("source", "vector") else "raster"]
        elif kind == "multilayer":
            params[d.name()] = [inputs["raster"], inputs["raster2"]]
        elif kind == "file" and d.behavior() == d.Behavior.File and not d.flags() & d.Flag.FlagOptional:
            params[d.name()] = os.path.join(os.path.dirname(inputs["raster"]), f"{d.name().lower()}.{d.extension() or 'pth'}")
            open(params[d.name()], "a").close()
    return params


def bad_values(definition):
    """NaN, infinity and values just outside the table's range for one numeric parameter."""
    from seg_qgis_plugin.processing.algorithms.parameter_ranges import ZERO_MEANS_AUTO, table_rule

    rule = table_rule(definition.name())
    values = [math.nan, math.inf, -math.inf, "nan"]
    if rule.low is not None:
        if definition.name() in ZERO_MEANS_AUTO:  # 0 means automatic there
            values.append(min(rule.low, 0) - 1)
        else:
            values.append(rule.low if rule.low_open else rule.low - 1)
    if rule.high is not None:
        values.append(rule.high + 1)
    if rule.integer:
        values.append((rule.low or 0) + 1.5)
    return values


def numeric_parameters(provider):
    from qgis.core import QgsProcessingParameterNumber

    for alg in sorted(provider.algorithms(), key=lambda a: a.id()):
        for d in alg.parameterDefinitions():
            if isinstance(d, QgsProcessingParameterNumber):
                yield alg, d


def test_every_numeric_parameter_takes_its_range_from_the_table(processing_registered):
    from seg_qgis_plugin.processing.algorithms.parameter_ranges import LARGEST_INT, ZERO_MEANS_AUTO, table_rule

    seen = 0
    for alg, d in numeric_parameters(processing_registered):
        rule = table_rule(d.name())
        assert rule is not None, f"{alg.id()} {d.name()} has no range in core.ranges.RANGES"
        assert d.minimum() == (0.0 if d.name() in ZERO_MEANS_AUTO else rule.low), (alg.id(), d.name())
        if rule.high is not None:
            assert d.maximum() == min(rule.high, LARGEST_INT), (alg.id(), d.name())
        seen += 1
    assert seen >= 30


def test_nan_infinity_and_out_of_range_are_refused_before_any_work(processing_registered, run_algorithm, inputs, tmp_path):
    from qgis.core import QgsProcessingException

    out = tmp_path / "out"
    out.mkdir()
    cases = [(alg, d, valid_parameters(alg, inputs, out)) for alg, d in numeric_parameters(processing_registered)]
    before = fingerprint(tmp_path / "in")
    tried = set()
    for alg, d, params in cases:
        for value in bad_values(d):
            what = f"{alg.id()} {d.name()} = {value!r}"
            with pytest.raises(QgsProcessingException) as refused:
                run_algorithm(alg.id(), {**params, d.name(): value})
            message = str(refused.value)
            assert d.name() in message and "Traceback" not in message, (what, message)
            assert os.listdir(out) == [], what
            assert fingerprint(tmp_path / "in") == before, what
        tried.add(alg.id())
    assert {"seg:agreement", "seg:assist", "seg:driftmap", "seg:exporttrainingdata", "seg:labelqa", "seg:prelabel",
            "seg:propagatelabels", "seg:ranktiles", "seg:tileraster", "seg:encoderaster"} <= tried


def test_zero_stays_automatic_where_the_description_says_so(run_algorithm, inputs, tmp_path):
    result = run_algorithm("seg:agreement", {"A": inputs["source"], "B": inputs["source"], "RESOLUTION": 0, "BOUNDARY_DISTANCE": 0,
                                             "OUTPUT": str(tmp_path / "a.json")})
    assert os.path.exists(result["OUTPUT"])


def test_a_scheduler_the_machine_cannot_hold_is_refused_with_the_cli_limit(processing_registered, run_algorithm, inputs, tmp_path):
    from qgis.core import QgsProcessingException

    from seg_qgis_plugin.core.scale.cluster import max_local_workers

    out = tmp_path / "out"
    out.mkdir()
    for alg in processing_registered.algorithms():
        if alg.parameterDefinition("SCHEDULER") is None:
            continue
        params = valid_parameters(alg, inputs, out)
        for spec, expected in ((f"local:{max_local_workers() + 1}", f"at most local:{max_local_workers()}"),
                               ("local:100000", "more worker processes than this machine can hold"),
                               ("somewhere", "takes local:N")):
            with pytest.raises(QgsProcessingException, match=expected):
                run_algorithm(alg.id(), {**params, "SCHEDULER": spec})
            assert os.listdir(out) == [], (alg.id(), spec)
