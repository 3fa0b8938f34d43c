"""Agreement between two label layers on a case worked out by hand (figures in the comments), the
unmatched layer, kappa on a raster's grid, reprojection, and the `seg agreement` command."""
import json
import os

import numpy as np
import pyogrio
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely import affinity
from shapely.geometry import box

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.errors import SettingError
from seg_qgis_plugin.core.quality.agreement import AgreementOptions, boundary_iou, compare, match_objects
from seg_qgis_plugin.core.quality.table import LabelTable, read_table, to_crs, write_layer

UTM = "EPSG:32633"
X, Y = 500000.0, 4650000.0


def at(g):
    return affinity.translate(g, X, Y)


def layer(path, rows, crs=UTM):
    write_layer(str(path), [at(g) for g, _, _ in rows], {"class": [c for _, c, _ in rows], "score": [s for _, _, s in rows]}, crs)
    return str(path)


# A: a1 [0,10]x[0,10] building, a2 [20,30] building, a3 [40,50] tree
A = [(box(0, 0, 10, 10), "building", 0.9), (box(20, 0, 30, 10), "building", 0.9), (box(40, 0, 50, 10), "tree", 0.9)]
# B: b1 overlaps a1 by 90 (IoU 90/110 = 9/11), b2 overlaps a2 by 50 (IoU 1/3: no match), b3 = a3, b4 extra
B = [(box(1, 0, 11, 10), "building", 0.8), (box(25, 0, 35, 10), "building", 0.4), (box(40, 0, 50, 10), "tree", 0.7),
     (box(60, 0, 70, 10), "building", 0.3)]


def tables(tmp_path):
    return read_table(layer(tmp_path / "a.gpkg", A)), read_table(layer(tmp_path / "b.gpkg", B))


def test_overall_figures_computed_by_hand(tmp_path):
    a, b = tables(tmp_path)
    s = compare(a, b, AgreementOptions(resolution=1.0, boundary_distance=1.0)).summary
    assert (s["objects_a"], s["objects_b"], s["matched"]) == (3, 4, 2)
    assert s["precision"] == pytest.approx(0.5) and s["recall"] == pytest.approx(2 / 3, abs=1e-6)
    assert s["f1"] == pytest.approx(4 / 7, abs=1e-6)
    assert s["mean_iou"] == pytest.approx((9 / 11 + 1) / 2, abs=1e-6)
    # unions 300 and 400 m2, intersection 90 + 50 + 100
    assert s["dice"] == pytest.approx(480 / 700, abs=1e-6)
    # 70 x 10 grid of 1 m: both 240, neither 240, A only 60, B only 160: po 24/35, pe 24/49
    assert s["kappa"] == pytest.approx(2352 / 6125, abs=1e-6)
    # a1/b1 with 1 m bands: each band 36 m2, shared 2 x 9 -> 18 / 54; a3/b3 identical -> 1
    assert s["boundary_iou"] == pytest.approx((1 / 3 + 1) / 2, abs=1e-6)
    assert s["grid"] == {"resolution": 1.0, "width": 70, "height": 10}
    assert "classes" not in s


def test_per_class_figures_and_multiclass_kappa(tmp_path):
    a, b = tables(tmp_path)
    s = compare(a, b, AgreementOptions(by_class=True, resolution=1.0, boundary_distance=1.0)).summary
    # confusion over (none, building, tree): po 480/700, pe (400*300 + 200*300 + 100*100) / 700^2
    assert s["kappa"] == pytest.approx(73 / 150, abs=1e-6)
    building, tree = s["classes"]["building"], s["classes"]["tree"]
    assert (building["objects_a"], building["objects_b"], building["matched"]) == (2, 3, 1)
    assert building["precision"] == pytest.approx(1 / 3, abs=1e-6) and building["recall"] == pytest.approx(0.5)
    assert building["f1"] == pytest.approx(0.4) and building["mean_iou"] == pytest.approx(9 / 11, abs=1e-6)
    assert building["dice"] == pytest.approx(280 / 500) and building["kappa"] == pytest.approx(38 / 115, abs=1e-6)
    assert tree == {"objects_a": 1, "objects_b": 1, "matched": 1, "precision": 1.0, "recall": 1.0, "f1": 1.0, "mean_iou": 1.0,
                    "dice": 1.0, "boundary_iou": 1.0, "kappa": 1.0}


def test_threshold_and_one_to_one_matching():
    ma = np.array([box(0, 0, 10, 10), box(0, 0, 10, 10)], dtype=object)
    mb = np.array([box(0, 0, 10, 10)], dtype=object)
    m = match_objects(ma, mb, 0.5)
    assert m.a.tolist() == [0] and m.b.tolist() == [0] and m.best_a.tolist() == [1.0, 1.0]
    shifted = np.array([box(5, 0, 15, 10)], dtype=object)  # IoU 50 / 150
    assert len(match_objects(ma[:1], shifted, 0.5).a) == 0
    assert match_objects(ma[:1], shifted, 0.3).iou.tolist() == pytest.approx([1 / 3])
    assert boundary_iou(ma[:1], np.array([box(1, 0, 11, 10)], dtype=object), 1.0).tolist() == pytest.approx([1 / 3])


def test_kappa_on_a_rasters_grid_and_b_in_another_crs(tmp_path):
    a_path = layer(tmp_path / "a.gpkg", A)
    b_utm = read_table(layer(tmp_path / "b_utm.gpkg", B))
    b_geo = write_layer(str(tmp_path / "b.gpkg"), to_crs(b_utm.geometries, UTM, "EPSG:4326"), b_utm.columns, "EPSG:4326")
    like = str(tmp_path / "like.tif")
    with rasterio.open(like, "w", driver="GTiff", width=70, height=10, count=1, dtype="uint8", crs=UTM,
                       transform=from_origin(X, Y + 10, 1.0, 1.0)) as ds:
        ds.write(np.zeros((1, 10, 70), np.uint8))
    s = compare(read_table(a_path), read_table(b_geo), AgreementOptions(like=like, boundary_distance=1.0)).summary
    assert s["matched"] == 2 and s["mean_iou"] == pytest.approx((9 / 11 + 1) / 2, abs=1e-5)
    assert s["kappa"] == pytest.approx(2352 / 6125, abs=1e-6)
    assert s["grid"] == {"like": like, "width": 70, "height": 10}


def test_empty_side_gives_undefined_figures_not_errors(tmp_path):
    a, _ = tables(tmp_path)
    none = LabelTable(np.empty(0, dtype=object), np.zeros(0, np.int64), UTM, {"class": [], "score": []})
    s = compare(a, none, AgreementOptions(resolution=1.0)).summary
    assert (s["matched"], s["precision"], s["recall"], s["f1"], s["mean_iou"]) == (0, None, 0.0, None, None)
    with pytest.raises(SettingError):
        AgreementOptions(iou_threshold=0)


def test_seg_agreement_command(tmp_path):
    a, b = layer(tmp_path / "a.gpkg", A), layer(tmp_path / "b.gpkg", B)
    out, unmatched, html = (str(tmp_path / n) for n in ("agreement.json", "u.gpkg", "agreement.html"))
    assert main(["agreement", a, b, "--out", out, "--by-class", "--resolution", "1", "--unmatched", unmatched, "--html", html,
                 "--boundary-distance", "1"]) == 0
    doc = json.load(open(out))
    assert doc["matched"] == 2 and doc["kappa"] == pytest.approx(73 / 150, abs=1e-6) and set(doc["classes"]) == {"building", "tree"}
    meta, _, geometry, fields = pyogrio.raw.read(unmatched)
    rows = sorted(zip(fields[0], fields[1], fields[3]))
    assert [(side, fid) for side, fid, _ in rows] == [("a", 2), ("b", 2), ("b", 4)]
    assert [iou for _, _, iou in rows] == pytest.approx([1 / 3, 1 / 3, 0.0], abs=1e-6)
    page = open(html).read()
    assert "data:image/png;base64," in page and "boundary_iou" in page
    assert main(["agreement", a, b, "--out", out]) == 2  # exists
    assert main(["agreement", a, str(tmp_path / "nope.gpkg"), "--out", str(tmp_path / "x.json")]) == 2
    assert not os.path.exists(tmp_path / "x.json")
