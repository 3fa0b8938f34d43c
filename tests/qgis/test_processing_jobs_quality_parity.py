"""seg:labelqa, seg:agreement, seg:propagatelabels, seg:changereport and seg:driftmap run the same
jobs as `seg qa`, `seg agreement`, `seg propagate`, `seg change` and `seg drift`: on one input the
files Processing writes hold the same features and figures as the CLI's. Inputs are generated:
labels with one case per QA finding, two annotators' layers, and the demo time series."""
import json
import os

import pytest
from shapely import wkb
from shapely.geometry import Polygon, box

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.quality.table import write_layer
from seg_qgis_plugin.demo.series import write_series

UTM = "EPSG:32633"
X, Y = 500000.0, 4650000.0
VOLATILE = {"created"}  # a propagated feature's creation time is the run's


def sq(x0, y0, x1, y1):
    return box(X + x0, Y + y0, X + x1, Y + y1)


def layer_rows(path, fields=None):
    """Every feature of a layer (its first data layer, or the file's namesake) as (geometry WKT,
    attributes), in fid order; fields: only these attributes."""
    import pyogrio

    path = str(path).split("|")[0]
    layers = [name for name, _ in pyogrio.list_layers(path) if name != "layer_styles"]
    meta, _, geometries, values = pyogrio.raw.read(path, layer=layers[0])
    names = [n for n in meta["fields"] if n not in VOLATILE and (fields is None or n in fields)]
    return [(shape(None if g is None else wkb.loads(bytes(g))),
             {n: _plain(values[list(meta["fields"]).index(n)][k]) for n in names}) for k, g in enumerate(geometries)]


def shape(geometry):
    if geometry is None or geometry.is_empty:
        return None
    parts = getattr(geometry, "geoms", None)
    return (parts[0] if parts is not None and len(parts) == 1 else geometry).normalize().wkt


def load(path):
    with open(path) as f:
        return json.load(f)


def text(path):
    with open(path) as f:
        return f.read()


def head(path):
    with open(path, "rb") as f:
        return f.read(4)


def _plain(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return write_series(str(tmp_path_factory.mktemp("parity_ts")))


def test_labelqa_writes_what_seg_qa_writes(run_algorithm, tmp_path):
    bowtie = Polygon([(X + 200, Y), (X + 210, Y + 10), (X + 210, Y), (X + 200, Y + 10)])
    labels = str(tmp_path / "labels.gpkg")
    write_layer(labels, [sq(0, 0, 10, 10), sq(9, 0, 19, 10), sq(40, 0, 60, 0.3), sq(80, 0, 90, 10), sq(80, 0, 90, 10),
                         sq(120, 0, 130, 10), bowtie],
                {"class": ["building", "building", "road", "shed", "shed", None, "shed"], "score": [0.5, 0.9, 0.8, 0.7, 0.6, 0.9, 0.9]},
                UTM)
    cli = {k: str(tmp_path / f"cli_{k}{ext}") for k, ext in (("out", ".gpkg"), ("report", ".json"), ("fix", ".gpkg"))}
    assert main(["qa", labels, "--out", cli["out"], "--report", cli["report"], "--fix", cli["fix"], "--fix-overlaps", "earlier",
                 "--overlap-scope", "class"]) == 1
    out, fixed, report = (str(tmp_path / n) for n in ("alg_out.gpkg", "alg_fixed.gpkg", "alg_report.json"))
    result = run_algorithm("seg:labelqa", {"INPUT": labels, "OUTPUT": out, "FIXED": fixed, "REPORT": report, "FIX_RULE": 1,
                                           "OVERLAP_SCOPE": 1})
    assert layer_rows(result["OUTPUT"]) == layer_rows(cli["out"]) and result["FINDINGS"] == len(layer_rows(cli["out"])) == 5
    assert load(report) == load(cli["report"])
    assert layer_rows(result["FIXED"], ("class", "score")) == layer_rows(cli["fix"], ("class", "score"))


def test_agreement_gives_what_seg_agreement_gives(run_algorithm, tmp_path):
    a, b = str(tmp_path / "a.gpkg"), str(tmp_path / "b.gpkg")
    write_layer(a, [sq(0, 0, 10, 10), sq(20, 0, 30, 10), sq(40, 0, 50, 10)], {"class": ["building", "building", "tree"]}, UTM)
    write_layer(b, [sq(1, 0, 11, 10), sq(25, 0, 35, 10), sq(40, 0, 50, 10), sq(60, 0, 70, 10)],
                {"class": ["building", "building", "tree", "building"]}, UTM)
    cli, cli_u = str(tmp_path / "cli.json"), str(tmp_path / "cli_u.gpkg")
    assert main(["agreement", a, b, "--out", cli, "--unmatched", cli_u, "--by-class", "--resolution", "1",
                 "--boundary-distance", "1", "--iou", "0.3"]) == 0
    result = run_algorithm("seg:agreement", {"A": a, "B": b, "BY_CLASS": True, "RESOLUTION": 1.0, "BOUNDARY_DISTANCE": 1.0, "IOU": 0.3,
                                             "OUTPUT": str(tmp_path / "alg.json"), "UNMATCHED": str(tmp_path / "alg_u.gpkg")})
    assert load(result["OUTPUT"]) == load(cli) == json.loads(result["METRICS"])
    assert layer_rows(result["UNMATCHED"]) == layer_rows(cli_u)


def test_propagatelabels_tracks_what_seg_propagate_tracks(run_algorithm, series, tmp_path):
    cli = str(tmp_path / "cli.gpkg")
    assert main(["propagate", series.labels, *series.rasters, "--out", cli, "--backend", "classic", "--classes", "building",
                 "--tag", "season=summer", "--simplify", "0.5"]) == 0
    result = run_algorithm("seg:propagatelabels", {"INPUT": series.labels, "RASTERS": list(series.rasters), "CLASSES": "building",
                                                   "TAGS": "season=summer", "SIMPLIFY": 0.5, "BACKEND": 0,
                                                   "OUTPUT": str(tmp_path / "alg.gpkg")})
    rows = layer_rows(cli)
    assert layer_rows(result["OUTPUT"]) == rows and (result["FOUND"], result["LOST"], result["OUTSIDE"]) == (4, 0, 0)
    assert len(rows) == 6 and all(json.loads(r["tags"])["season"] == "summer" for _, r in rows if r["status"] == "kept")


def test_changereport_reports_what_seg_change_reports(run_algorithm, series, tmp_path):
    tracked = str(tmp_path / "tracked.gpkg")
    assert main(["propagate", series.labels, *series.rasters, "--out", tracked, "--backend", "classic", "--classes", "building"]) == 0
    cli = {k: str(tmp_path / f"cli{ext}") for k, ext in (("out", ".json"), ("csv", ".csv"), ("changes", ".gpkg"), ("png", ".png"))}
    assert main(["change", tracked, "--by", "track", "--out", cli["out"], "--csv", cli["csv"], "--changes", cli["changes"],
                 "--png", cli["png"]]) == 0
    alg = {k: str(tmp_path / f"alg{ext}") for k, ext in (("out", ".json"), ("csv", ".csv"), ("changes", ".gpkg"), ("png", ".png"))}
    result = run_algorithm("seg:changereport", {"INPUT": tracked, "BY": 1, "REPORT": alg["out"], "CSV": alg["csv"],
                                                "CHANGES": alg["changes"], "PNG": alg["png"]})
    report = load(cli["out"])
    assert load(result["REPORT"]) == report and result["ROWS"] == len(report["rows"]) > 0
    assert text(result["CSV"]) == text(cli["csv"])
    assert layer_rows(result["CHANGES"]) == layer_rows(cli["changes"])
    assert head(result["PNG"]) == b"\x89PNG"


def test_driftmap_maps_what_seg_drift_maps(run_algorithm, series, tmp_path):
    import pyogrio

    cli = str(tmp_path / "cli.gpkg")
    assert main(["drift", *series.rasters, "--tile", "100", "--threshold", "0.2", "--bands", "3,2,1", "--stretch", "0,255",
                 "--out", cli]) == 0
    result = run_algorithm("seg:driftmap", {"RASTERS": list(series.rasters), "TILE": 100, "THRESHOLD": 0.2, "BANDS": "3,2,1",
                                            "STRETCH": "0,255", "OUTPUT": str(tmp_path / "alg.gpkg")})
    rows = layer_rows(cli)
    assert layer_rows(result["OUTPUT"]) == rows and len(rows) == 48
    assert json.loads(result["SUMMARY"]) == json.loads(pyogrio.read_info(cli)["layer_metadata"]["seg_drift_summary"])
    assert result["FLAGGED"] == sum(r["flagged"] for _, r in rows)
    assert not os.path.exists(str(tmp_path / "alg.png"))
