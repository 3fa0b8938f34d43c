"""The quality and time-series jobs run the same from the CLI (`seg ...`) and the Python API
(`seg_qgis_plugin.api.<job>`): on one input both write the same files, and the API's table or
layer holds what the CLI wrote. Inputs are generated: hand-made labels with one case per QA
finding, two annotators' layers, and the demo time series (classic backend)."""
import json
import os

import pytest
from shapely import wkb
from shapely.geometry import Polygon, box

import seg_qgis_plugin.api as seg
from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.quality.table import write_layer
from seg_qgis_plugin.core.timeseries.drift import DRIFT_FIELDS
from seg_qgis_plugin.demo.series import write_series

UTM = "EPSG:32633"
X, Y = 500000.0, 4650000.0
VOLATILE = {"created"}  # a propagated feature's creation time is the run's


def sq(x0, y0, x1, y1):
    return box(X + x0, Y + y0, X + x1, Y + y1)


def layer_rows(path):
    """Every feature of a layer as (geometry WKT, attributes), in fid order."""
    import pyogrio

    meta, _, geometries, fields = pyogrio.raw.read(path, layer=os.path.splitext(os.path.basename(path))[0])
    return [(shape(None if g is None else wkb.loads(bytes(g))),
             {name: _plain(column[k]) for name, column in zip(meta["fields"], fields) if name not in VOLATILE})
            for k, g in enumerate(geometries)]


def frame_rows(frame, columns):
    geometry = frame.geometry.name if hasattr(frame, "geometry") and hasattr(frame.geometry, "name") else "geometry"
    return [(shape(row[geometry]),
             {name: _plain(row[name]) for name in columns if name not in VOLATILE}) for _, row in frame.iterrows()]


def shape(geometry):
    """A geometry as comparable text: None when null or empty, a single part without its Multi."""
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


def _plain(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return write_series(str(tmp_path_factory.mktemp("parity_series")))


@pytest.fixture
def faulty(tmp_path):
    """1 and 2 overlap by 10 m2, 3 is a 0.3 m sliver, 4 duplicates 5, 6 has no class, 7 is a bowtie."""
    bowtie = Polygon([(X + 200, Y), (X + 210, Y + 10), (X + 210, Y), (X + 200, Y + 10)])
    geoms = [sq(0, 0, 10, 10), sq(9, 0, 19, 10), sq(40, 0, 60, 0.3), sq(80, 0, 90, 10), sq(80, 0, 90, 10), sq(120, 0, 130, 10), bowtie]
    path = str(tmp_path / "labels.gpkg")
    write_layer(path, geoms, {"class": ["building", "building", "road", "shed", "shed", None, "shed"],
                              "score": [0.5, 0.9, 0.8, 0.7, 0.6, 0.9, 0.9]}, UTM)
    return path


def test_qa_cli_and_api_find_and_write_the_same(faulty, tmp_path, capsys):
    cli = {k: str(tmp_path / f"cli_{k}{ext}") for k, ext in (("out", ".gpkg"), ("report", ".json"), ("fix", ".gpkg"))}
    api = {k: str(tmp_path / f"api_{k}{ext}") for k, ext in (("out", ".gpkg"), ("report", ".json"), ("fix", ".gpkg"))}
    assert main(["qa", faulty, "--out", cli["out"], "--report", cli["report"], "--fix", cli["fix"], "--fix-overlaps", "earlier",
                 "--gap-width", "0.5"]) == 1
    printed = capsys.readouterr().out
    table = seg.qa(faulty, out=api["out"], report=api["report"], fix=api["fix"], fix_overlaps="earlier", gap_width=0.5)
    assert "7 labels: 5 findings" in printed and "repaired copy with" in printed
    assert layer_rows(cli["out"]) == layer_rows(api["out"])
    assert layer_rows(cli["fix"]) == layer_rows(api["fix"])
    assert load(cli["report"]) == load(api["report"])
    assert frame_rows(table, ["kind", "fids", "detail", "value"]) == layer_rows(cli["out"])
    assert sorted(table["kind"]) == ["duplicate", "invalid", "missing_attribute", "overlap", "sliver"]
    assert table.attrs["outputs"]["out"] == api["out"] and table.attrs["summary"]["overlap"] == 1


def test_agreement_cli_and_api_give_the_same_figures(tmp_path, capsys):
    a, b = str(tmp_path / "a.gpkg"), str(tmp_path / "b.gpkg")
    write_layer(a, [sq(0, 0, 10, 10), sq(20, 0, 30, 10), sq(40, 0, 50, 10)], {"class": ["building", "building", "tree"]}, UTM)
    write_layer(b, [sq(1, 0, 11, 10), sq(25, 0, 35, 10), sq(40, 0, 50, 10), sq(60, 0, 70, 10)],
                {"class": ["building", "building", "tree", "building"]}, UTM)
    cli, api = (str(tmp_path / f"{who}.json") for who in ("cli", "api"))
    cli_u, api_u = (str(tmp_path / f"{who}_unmatched.gpkg") for who in ("cli", "api"))
    args = ["--by-class", "--resolution", "1", "--boundary-distance", "1", "--iou", "0.5"]
    assert main(["agreement", a, b, "--out", cli, "--unmatched", cli_u, *args]) == 0
    assert "2 of 3 (A) and 4 (B) matched at IoU >= 0.5" in capsys.readouterr().out
    rows = seg.agreement(a, b, out=api, unmatched=api_u, by_class=True, resolution=1.0, boundary_distance=1.0, iou=0.5)
    doc = load(cli)
    assert doc == load(api) == rows.attrs["summary"]
    assert layer_rows(cli_u) == layer_rows(api_u)
    overall = rows[rows["scope"] == "overall"].iloc[0]
    assert (overall["matched"], overall["f1"], overall["kappa"]) == (doc["matched"], doc["f1"], doc["kappa"])
    per_class = rows[rows["scope"] == "class"].set_index("class")
    assert set(per_class.index) == {"building", "tree"}
    assert per_class.loc["building", "kappa"] == doc["classes"]["building"]["kappa"]


def test_propagate_cli_and_api_track_the_same_objects(series, tmp_path, capsys):
    cli, api = str(tmp_path / "cli.gpkg"), str(tmp_path / "api.gpkg")
    assert main(["propagate", series.labels, *series.rasters, "--out", cli, "--backend", "classic", "--classes", "building",
                 "--tag", "season=summer"]) == 0
    assert "features over 4 dates: 4 kept, 0 lost, 0 uncertain, 0 outside" in capsys.readouterr().out
    frame = seg.propagate(series.labels, series.rasters, out=api, backend="classic", classes=["building"],
                          tags={"season": "summer"})
    assert layer_rows(cli) == layer_rows(api)
    assert frame_rows(frame, [c for c in frame.columns if c != "geometry"]) == layer_rows(cli)
    assert len(frame) == 6 and set(frame["status"]) == {"accepted", "kept"} and sorted(set(frame["track_id"])) == [1, 2]
    assert all(json.loads(t)["season"] == "summer" for t in frame.loc[frame["status"] == "kept", "tags"])


def test_change_cli_and_api_report_the_same_rows(series, tmp_path, capsys):
    cli = {k: str(tmp_path / f"cli{ext}") for k, ext in (("out", ".json"), ("csv", ".csv"), ("changes", ".gpkg"))}
    api = {k: str(tmp_path / f"api{ext}") for k, ext in (("out", ".json"), ("csv", ".csv"), ("changes", ".gpkg"))}
    assert main(["change", series.labels, "--out", cli["out"], "--csv", cli["csv"], "--changes", cli["changes"]]) == 0
    printed = capsys.readouterr().out
    rows = seg.change(series.labels, out=api["out"], csv=api["csv"], changes=api["changes"])
    report = load(cli["out"])
    assert report == load(api["out"]) and text(cli["csv"]) == text(api["csv"])
    assert layer_rows(cli["changes"]) == layer_rows(api["changes"])
    assert rows.to_dict("records") == [{k: (None if v != v else v) if isinstance(v, float) else v for k, v in r.items()}
                                       for r in report["rows"]]
    assert f"{len(report['rows'])} rows, {len(report['tracks'])} tracks -> {cli['out']}" in printed


def test_drift_cli_and_api_map_the_same_tiles(series, tmp_path, capsys):
    cli, api = str(tmp_path / "cli.gpkg"), str(tmp_path / "api.gpkg")
    assert main(["drift", *series.rasters, "--tile", "100", "--threshold", "0.2", "--out", cli]) == 0
    assert "48 tile records" in capsys.readouterr().out
    tiles = seg.drift(series.rasters, tile=100, threshold=0.2, out=api)
    assert layer_rows(cli) == layer_rows(api)
    assert frame_rows(tiles, [name for name, _, _ in DRIFT_FIELDS]) == layer_rows(cli)
    assert tiles.crs is not None and tiles.attrs["summary"]["ranking"] and os.path.exists(tiles.attrs["outputs"]["out"])
