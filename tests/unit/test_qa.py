"""Label QA on hand-made layers: every finding kind with the figure worked out by hand, nothing
found on clean labels, repairs written to a new file, and the `seg qa` command's exit codes."""
import json
import math
import os

import numpy as np
import pyogrio
import pytest
from shapely import wkt
from shapely.geometry import Polygon, box

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.quality.qa import KINDS, Tolerances, check_labels, report
from seg_qgis_plugin.core.quality.qa_fix import fix_labels
from seg_qgis_plugin.core.quality.table import read_table, write_layer

UTM = "EPSG:32633"
X, Y = 500000.0, 4650000.0


def at(geometry, dx=X, dy=Y):
    from shapely import affinity

    return None if geometry is None else affinity.translate(geometry, dx, dy)


def write(path, rows, crs=UTM):
    """rows: (geometry or None, class, score); written as a GeoPackage with fids 1..n."""
    write_layer(str(path), [r[0] for r in rows], {"class": [r[1] for r in rows], "score": [r[2] for r in rows]}, crs)
    return str(path)


def clean_rows():
    """Six buildings and two ponds, all apart by more than 1 m, compact, without holes."""
    sizes = [(10, 10), (11, 10), (9, 10), (10, 12), (12, 10), (10, 10)]
    rows = [(at(box(30 * k, 0, 30 * k + w, h)), "building", 0.9) for k, (w, h) in enumerate(sizes)]
    rows += [(at(Polygon([(0, 100), (20, 100), (25, 115), (5, 118)])), "pond", 0.8), (at(box(40, 100, 60, 120)), "pond", 0.7)]
    return rows


def bad_rows():
    """One case per kind; comments give the figure expected."""
    return [
        (at(wkt.loads("POLYGON ((0 0, 10 10, 10 0, 0 10, 0 0))")), "building", 0.9),        # 1 invalid (bowtie)
        (None, "building", 0.9),                                                            # 2 empty (null)
        (at(box(0, 50, 10, 60)), "building", 0.9),                                          # 3 duplicate of 4
        (at(Polygon([(10, 60), (10, 50), (0, 50), (0, 60)])), "building", 0.5),              # 4 same square, other start/orientation
        (at(box(100, 0, 110, 10)), "building", 0.9),                                        # 5 overlaps 6 by 1 x 10 = 10 m2
        (at(box(109, 0, 119, 10)), "building", 0.5),                                        # 6
        (at(box(150, 0, 160, 10)), "building", 0.9),                                        # 7 overlaps 8 by 0.0005 x 10: under 0.01
        (at(box(159.9995, 0, 170, 10)), "building", 0.9),                                   # 8
        (at(box(200, 0, 220, 0.4)), "road", 0.9),                                           # 9 sliver: 0.4 m thin
        (at(box(200, 20, 300, 21)), "road", 0.9),                                           # 10 sliver: 4 pi 100 / 202^2 = 0.0308
        (at(box(400, 0, 410, 10)), "shed", 0.9),                                            # 11 gap of 0.4 x 10 with 12
        (at(box(410.4, 0, 420.4, 10)), "shed", 0.9),                                        # 12
        (at(box(450, 0, 460, 10)), "shed", 0.9),                                            # 13 touches 14: no gap
        (at(box(460, 0, 470, 10)), "shed", 0.9),                                            # 14
        (at(Polygon(box(500, 0, 520, 20).exterior.coords,
                    [box(505, 5, 505.5, 5.5).exterior.coords, box(510, 10, 515, 15).exterior.coords])), "field", 0.9),  # 15 hole 0.25 m2
        *[(at(box(600 + 50 * k, 0, 600 + 50 * k + w, h)), "tree", 0.9)                      # 16-21: 40 x 40 is an outlier
          for k, (w, h) in enumerate([(4, 4), (4, 5), (5, 5), (4, 4), (4, 5), (40, 40)])],
        (at(box(0, 300, 10, 310)), None, 0.9),                                              # 22 class null
        (at(box(20, 300, 30, 310)), " ", 0.9),                                              # 23 class blank
    ]


def test_clean_labels_have_no_finding(tmp_path):
    table = read_table(write(tmp_path / "clean.gpkg", clean_rows()))
    assert check_labels(table) == []


def test_every_kind_is_found_with_the_figures_worked_out_by_hand(tmp_path):
    table = read_table(write(tmp_path / "bad.gpkg", bad_rows()))
    assert list(table.fids) == list(range(1, 24))
    findings = check_labels(table)
    by_kind = {kind: [f for f in findings if f.kind == kind] for kind in KINDS}
    assert {k: [f.fids for f in v] for k, v in by_kind.items()} == {
        "invalid": [(1,)], "empty": [(2,)], "duplicate": [(3, 4)], "overlap": [(5, 6)], "sliver": [(9,), (10,)],
        "gap": [(11, 12)], "hole": [(15,)], "area_outlier": [(21,)], "missing_attribute": [(22,), (23,)]}
    assert "Self-intersection" in by_kind["invalid"][0].detail
    assert by_kind["empty"][0].geometry is None
    overlap = by_kind["overlap"][0]
    assert overlap.value == pytest.approx(10.0) and overlap.geometry.equals(at(box(109, 0, 110, 10)))
    assert by_kind["sliver"][0].detail == "thinner than 0.5 m"
    assert by_kind["sliver"][1].value == pytest.approx(4 * math.pi * 100 / 202 ** 2)
    # the closing with a 1 m disc fills the 0.4 x 10 strip except two shallow caps at its ends
    gap = by_kind["gap"][0]
    assert 3.95 < gap.value <= 4.0 and gap.geometry.difference(at(box(410, 0, 410.4, 10))).area < 1e-6
    assert by_kind["hole"][0].value == pytest.approx(0.25)
    # ln areas 16, 20, 25, 16, 20, 1600: median ln 20, MAD ln 1.25 -> z = 0.6745 ln 80 / ln 1.25
    assert by_kind["area_outlier"][0].value == pytest.approx(0.6745 * math.log(80) / math.log(1.25))
    doc = report(findings, table)
    assert doc["counts"] == {"invalid": 1, "empty": 1, "duplicate": 1, "overlap": 1, "sliver": 2, "gap": 1, "hole": 1,
                             "area_outlier": 1, "missing_attribute": 2}
    assert doc["findings"][0] == {"kind": "invalid", "fids": [1], "detail": by_kind["invalid"][0].detail, "value": 0.0}


def test_tolerances_change_what_is_found(tmp_path):
    table = read_table(write(tmp_path / "bad.gpkg", bad_rows()))
    loose = Tolerances(overlap_area=0.001, gap_width=0.3, sliver_compactness=0.01, sliver_width=0.3, hole_area=0.2, outlier_z=20)
    kinds = {}
    for f in check_labels(table, loose):
        kinds.setdefault(f.kind, []).append(f.fids)
    assert kinds["overlap"] == [(5, 6), (7, 8)]
    assert "gap" not in kinds and "sliver" not in kinds and "hole" not in kinds and "area_outlier" not in kinds
    within_class = check_labels(table, Tolerances(overlap_scope="class"))
    assert [f.fids for f in within_class if f.kind == "overlap"] == [(5, 6)]


def test_overlap_scope_class_ignores_other_classes(tmp_path):
    rows = [(at(box(0, 0, 10, 10)), "building", 0.9), (at(box(5, 0, 15, 10)), "tree", 0.9), (at(box(8, 0, 18, 10)), "building", 0.9)]
    table = read_table(write(tmp_path / "mixed.gpkg", rows))
    assert [(f.fids, f.value) for f in check_labels(table) if f.kind == "overlap"] == [((1, 2), 50.0), ((1, 3), 20.0), ((2, 3), 70.0)]
    assert [(f.fids, f.value) for f in check_labels(table, Tolerances(overlap_scope="class")) if f.kind == "overlap"] == [((1, 3), 20.0)]


def test_geographic_layers_are_measured_in_metres(tmp_path):
    # two 10 m squares (UTM 33N, lat 42) overlapping by 1 m x 10 m, written in degrees
    from pyproj import Transformer

    to_geo = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    import shapely

    def geo(g):
        return shapely.transform(shapely.segmentize(g, 1.0), lambda xy: np.column_stack(to_geo.transform(xy[:, 0], xy[:, 1])))

    rows = [(geo(box(X, Y, X + 10, Y + 10)), "b", 0.9), (geo(box(X + 9, Y, X + 19, Y + 10)), "b", 0.9),
            (geo(box(X + 19.4, Y, X + 29.4, Y + 10)), "b", 0.9)]
    table = read_table(write(tmp_path / "geo.gpkg", rows, crs="EPSG:4326"))
    findings = check_labels(table)
    assert [f.kind for f in findings] == ["overlap", "gap"]
    assert findings[0].value == pytest.approx(10.0, rel=2e-3)
    assert 3.9 < findings[1].value < 4.0


def test_fix_writes_a_repaired_copy_by_rule(tmp_path):
    path = write(tmp_path / "bad.gpkg", bad_rows())
    before = open(path, "rb").read()
    table = read_table(path)
    fixed, done = fix_labels(table, check_labels(table), rule="score")
    assert done == {"made_valid": 1, "dropped_empty": 1, "dropped_duplicate": 1, "trimmed": 1, "merged": 0, "dropped_sliver": 2}
    geoms = dict(zip(fixed.fids.tolist(), fixed.geometries))
    assert set(geoms) == set(range(1, 24)) - {2, 4, 9, 10}
    assert geoms[1].area == pytest.approx(50.0) and geoms[1].is_valid  # the bowtie's two triangles
    assert geoms[6].equals(at(box(110, 0, 119, 10)))  # the lower score gives way
    earlier, _ = fix_labels(table, check_labels(table), rule="earlier")
    assert dict(zip(earlier.fids.tolist(), earlier.geometries))[6].equals(at(box(110, 0, 119, 10)))
    out = str(tmp_path / "fixed.gpkg")
    write_layer(out, fixed.geometries, fixed.columns, fixed.crs)
    again = check_labels(read_table(out))
    assert {f.kind for f in again} == {"gap", "hole", "area_outlier", "missing_attribute"}
    assert open(path, "rb").read() == before


def test_fix_rules_score_and_merge(tmp_path):
    rows = [(at(box(0, 0, 10, 10)), "building", 0.5), (at(box(5, 0, 15, 10)), "building", 0.9), (at(box(14, 0, 24, 10)), "tree", 0.7)]
    table = read_table(write(tmp_path / "o.gpkg", rows))
    findings = check_labels(table)
    by_score, _ = fix_labels(table, findings, rule="score")
    g = dict(zip(by_score.fids.tolist(), by_score.geometries))
    assert g[2].equals(at(box(5, 0, 15, 10))) and g[1].equals(at(box(0, 0, 5, 10))) and g[3].equals(at(box(15, 0, 24, 10)))
    merged, done = fix_labels(table, findings, rule="merge")
    g = dict(zip(merged.fids.tolist(), merged.geometries))
    assert done["merged"] == 1 and sorted(g) == [2, 3]  # the better scored building keeps its fid and attributes
    assert g[2].equals(at(box(0, 0, 15, 10))) and g[3].equals(at(box(15, 0, 24, 10)))


def test_seg_qa_command_exit_codes_and_outputs(tmp_path, capsys):
    clean = write(tmp_path / "clean.gpkg", clean_rows())
    assert main(["qa", clean, "--out", str(tmp_path / "f0.gpkg"), "--report", str(tmp_path / "q0.json")]) == 0
    bad = write(tmp_path / "bad.gpkg", bad_rows())
    out, rep, fixed, html = (str(tmp_path / n) for n in ("f.gpkg", "q.json", "fixed.gpkg", "qa.html"))
    assert main(["qa", bad, "--out", out, "--report", rep, "--fix", fixed, "--html", html]) == 1
    doc = json.load(open(rep))
    assert doc["counts"]["overlap"] == 1 and sum(doc["counts"].values()) == len(doc["findings"]) == 11
    meta, _, geometry, fields = pyogrio.raw.read(out)
    assert meta["fields"].tolist() == ["kind", "fids", "detail", "value"]
    assert list(fields[0]).count("sliver") == 2 and "5,6" in list(fields[1])
    assert pyogrio.read_info(out)["crs"] == UTM
    assert len(read_table(fixed)) == 19
    page = open(html).read()
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page and "overlap" in page
    assert main(["qa", bad, "--out", out, "--report", rep]) == 2  # outputs exist: refused, nothing changed
    assert "already exists" in capsys.readouterr().err
    assert main(["qa", str(tmp_path / "missing.gpkg"), "--out", str(tmp_path / "x.gpkg")]) == 2
    assert [f for f in os.listdir(tmp_path) if f.startswith(".seg")] == []


def test_html_report_cuts_thumbnails_of_the_worst_cases_from_the_raster(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    from seg_qgis_plugin.core.quality.report_html import qa_html

    raster = str(tmp_path / "ortho.tif")
    data = np.random.default_rng(0).integers(0, 255, (3, 400, 1000)).astype(np.uint8)
    with rasterio.open(raster, "w", driver="GTiff", width=1000, height=400, count=3, dtype="uint8", crs=UTM,
                       transform=from_origin(X - 50, Y + 350, 1.0, 1.0)) as ds:
        ds.write(data)
    table = read_table(write(tmp_path / "bad.gpkg", bad_rows()))
    findings = check_labels(table)
    page = open(qa_html(report(findings, table), table, findings, str(tmp_path / "qa.html"), raster)).read()
    # every finding with a geometry lies on the raster: 12 thumbnails at most, one per finding here (the empty one has none)
    assert page.count("<figure>") == 10 and page.count("data:image/png;base64,") == 11
    assert "overlap 5,6: overlap of 10 m2" in page
