"""seg:labelqa and seg:agreement through processing.run, outputs read back from disk."""
import json

import pytest
from shapely.geometry import box

X, Y = 500000.0, 4650000.0
CRS = "EPSG:32633"


def sq(x0, y0, x1, y1):
    return box(X + x0, Y + y0, X + x1, Y + y1)


@pytest.fixture
def faulty(vector_factory):
    """fids 1..6: 1 and 2 overlap by 10 m2 (2 has the higher score), 3 is a 0.3 m thin sliver,
    4 duplicates 5, 6 has no class."""
    geoms = [sq(0, 0, 10, 10), sq(9, 0, 19, 10), sq(40, 0, 60, 0.3), sq(80, 0, 90, 10), sq(80, 0, 90, 10), sq(120, 0, 130, 10)]
    return vector_factory("labels", geoms, CRS, geometry_type="Polygon", **{
        "class": ["building", "building", "road", "shed", "shed", ""], "score": [0.5, 0.9, 0.8, 0.7, 0.6, 0.9]})


def test_provider_lists_both(processing_registered):
    ids = {a.id() for a in processing_registered.algorithms()}
    assert {"seg:labelqa", "seg:agreement"} <= ids


def test_labelqa_writes_findings_fixed_copy_and_reports(run_algorithm, read_vector, faulty, tmp_path):
    from seg_qgis_plugin.qgis_adapters.geometry import to_shapely

    out, fixed, rep, html = (str(tmp_path / n) for n in ("findings.gpkg", "fixed.gpkg", "qa.json", "qa.html"))
    result = run_algorithm("seg:labelqa", {"INPUT": faulty, "OUTPUT": out, "FIXED": fixed, "REPORT": rep, "HTML": html, "FIX_RULE": 0})
    assert result["FINDINGS"] == 4
    assert json.loads(result["COUNTS"]) == {"invalid": 0, "empty": 0, "duplicate": 1, "overlap": 1, "sliver": 1, "gap": 0, "hole": 0,
                                            "area_outlier": 0, "missing_attribute": 1}
    layer, features = read_vector(result["OUTPUT"])
    assert layer.crs().authid() == CRS
    got = sorted((f["kind"], f["fids"]) for f in features)
    assert got == [("duplicate", "4,5"), ("missing_attribute", "6"), ("overlap", "1,2"), ("sliver", "3")]
    overlap = next(f for f in features if f["kind"] == "overlap")
    assert to_shapely(overlap.geometry()).equals(sq(9, 0, 10, 10)) and overlap["value"] == pytest.approx(10.0)
    doc = json.load(open(rep))
    assert [f["fids"] for f in doc["findings"]] == [[4, 5], [1, 2], [3], [6]]
    _, repaired = read_vector(result["FIXED"])
    shapes = {f.id(): to_shapely(f.geometry()) for f in repaired}
    assert sorted(shapes) == [1, 2, 4, 6]
    assert shapes[1].equals(sq(0, 0, 9, 10)) and shapes[2].equals(sq(9, 0, 19, 10))  # the higher score keeps the overlap
    assert "data:image/png;base64," in open(html).read()


def test_labelqa_finds_nothing_on_clean_labels(run_algorithm, vector_factory, tmp_path):
    clean = vector_factory("clean", [sq(0, 0, 10, 10), sq(20, 0, 30, 12)], CRS, geometry_type="Polygon", **{"class": ["a", "b"]})
    result = run_algorithm("seg:labelqa", {"INPUT": clean, "OUTPUT": str(tmp_path / "f.gpkg")})
    assert result["FINDINGS"] == 0


def test_agreement_figures_and_unmatched_layer(run_algorithm, read_vector, vector_factory, tmp_path):
    a = vector_factory("a", [sq(0, 0, 10, 10), sq(20, 0, 30, 10), sq(40, 0, 50, 10)], CRS, geometry_type="Polygon",
                       **{"class": ["building", "building", "tree"]})
    b = vector_factory("b", [sq(1, 0, 11, 10), sq(25, 0, 35, 10), sq(40, 0, 50, 10), sq(60, 0, 70, 10)], CRS, geometry_type="Polygon",
                       **{"class": ["building", "building", "tree", "building"]})
    out, unmatched = str(tmp_path / "agreement.json"), str(tmp_path / "u.gpkg")
    result = run_algorithm("seg:agreement", {"A": a, "B": b, "BY_CLASS": True, "RESOLUTION": 1.0, "BOUNDARY_DISTANCE": 1.0,
                                             "OUTPUT": out, "UNMATCHED": unmatched})
    doc = json.load(open(result["OUTPUT"]))
    assert doc == json.loads(result["METRICS"])
    assert (doc["matched"], doc["precision"], doc["f1"]) == (2, 0.5, pytest.approx(4 / 7, abs=1e-6))
    assert doc["mean_iou"] == pytest.approx((9 / 11 + 1) / 2, abs=1e-6) and doc["dice"] == pytest.approx(480 / 700, abs=1e-6)
    assert doc["kappa"] == pytest.approx(73 / 150, abs=1e-6) and doc["boundary_iou"] == pytest.approx(2 / 3, abs=1e-6)
    assert doc["classes"]["building"]["kappa"] == pytest.approx(38 / 115, abs=1e-6)
    _, features = read_vector(result["UNMATCHED"])
    assert sorted((f["side"], f["source_fid"]) for f in features) == [("a", 2), ("b", 2), ("b", 4)]
