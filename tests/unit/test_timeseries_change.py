"""seg change: exact areas, gains, losses and IoU against the generated series' truth, in a
projected and a geographic layer; tracks; the styled changes layer; bad input."""
import csv
import json

import pytest

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.errors import SegError
from seg_qgis_plugin.core.geo.vectorize import mask_to_geometry, reproject_geometry
from seg_qgis_plugin.core.outputs.vectors import write_labels
from seg_qgis_plugin.core.timeseries.change import change_report
from seg_qgis_plugin.core.timeseries.propagate import TRACK_FIELDS
from seg_qgis_plugin.demo.series import RESOLUTION, series_objects, write_series

PIXEL = RESOLUTION ** 2


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    """A series layer drawn from the truth (every object on every date it exists; the vanished
    pond `lost` on the third date with its old outline) and the expected rows per class."""
    folder = tmp_path_factory.mktemp("change")
    series = write_series(str(folder))
    labels = []
    for track, obj in enumerate(series.objects, start=1):
        last = None
        for k, d in enumerate(series.dates):
            if obj.masks[k] is not None:
                last = mask_to_geometry(obj.masks[k], series.transform)
                labels.append(Label(last, "EPSG:32633", dict(attributes(obj.class_name, {"date": d}, status="accepted"), track_id=track)))
            elif last is not None and k == 2:
                labels.append(Label(last, "EPSG:32633", dict(attributes(obj.class_name, {"date": d}, status="lost"), track_id=track)))
    path = write_labels(labels, str(folder / "truth.gpkg"), fields=TRACK_FIELDS)
    expected = {}
    for name in ("water", "building"):
        for k in range(3):
            a, b = series.union(name, k), series.union(name, k + 1)
            expected[(name, series.dates[k])] = dict(area_from=a.sum() * PIXEL, area_to=b.sum() * PIXEL, gained=(b & ~a).sum() * PIXEL,
                                                     lost=(a & ~b).sum() * PIXEL, iou=(a & b).sum() / (a | b).sum())
    return series, path, labels, expected


def test_change_areas_equal_the_truth_exactly(truth, tmp_path):
    series, path, _, expected = truth
    out = str(tmp_path / "change.json")
    assert main(["change", path, "--out", out, "--csv", str(tmp_path / "c.csv"), "--changes", str(tmp_path / "changes.gpkg"),
                 "--png", str(tmp_path / "c.png")]) == 0
    report = json.load(open(out))
    assert len(report["rows"]) == 6
    for row in report["rows"]:
        want = expected[(row["class"], row["date_from"])]
        for key in ("area_from", "area_to", "gained", "lost"):
            assert row[key] == pytest.approx(want[key], abs=1e-6), (row, key)
        assert row["iou"] == pytest.approx(want["iou"], abs=1e-9)
    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert [float(r["gained"]) for r in rows] == pytest.approx([r["gained"] for r in report["rows"]])
    assert open(tmp_path / "c.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_changes_layer_holds_gained_and_lost_parts_with_a_style(truth, tmp_path):
    import sqlite3

    import pyogrio
    from seg_qgis_plugin.core.outputs.vectors import read_labels

    _, path, _, expected = truth
    changes = str(tmp_path / "changes.gpkg")
    assert main(["change", path, "--out", str(tmp_path / "c.json"), "--changes", changes]) == 0
    parts = read_labels(changes, "changes")
    for (name, d0), want in expected.items():
        for kind in ("gained", "lost"):
            area = sum(p.geometry.area for p in parts if (p.attributes["class"], p.attributes["date_from"], p.attributes["change"]) == (name, d0, kind))
            assert area == pytest.approx(want[kind], abs=1e-6)
    assert {p.attributes["date"] for p in parts} <= {"2021-06-15", "2021-08-15", "2021-10-15"}
    with sqlite3.connect(changes) as db:
        (qml,) = db.execute("SELECT styleQML FROM layer_styles WHERE f_table_name = 'changes' AND useAsDefault = 1").fetchone()
    assert 'attr="change"' in qml and 'value="gained"' in qml and 'value="lost"' in qml
    assert pyogrio.read_info(changes, layer="changes")["features"] == len(parts)


def test_a_geographic_layer_is_measured_on_the_ellipsoid(truth):
    _, _, labels, expected = truth
    geographic = [Label(reproject_geometry(l.geometry, l.crs, "EPSG:4326"), "EPSG:4326", l.attributes) for l in labels]
    for row in change_report(geographic).rows:
        want = expected[(row["class"], row["date_from"])]
        # UTM areas are planar areas on a grid scaled by 0.9996 at the central meridian: 0.08 % smaller
        assert row["area_from"] == pytest.approx(want["area_from"] / 0.9996 ** 2, rel=2e-4)
        assert row["iou"] == pytest.approx(want["iou"], abs=2e-3)


def test_tracks_list_area_per_date_and_iou_with_their_previous_date(truth, tmp_path):
    series, path, _, _ = truth
    out = str(tmp_path / "t.json")
    assert main(["change", path, "--out", out, "--by", "track"]) == 0
    report = json.load(open(out))
    objects = series_objects()
    tracks = {t["track_id"]: t for t in report["tracks"]}
    shrinking = tracks[1]["dates"]
    areas = [o.sum() * PIXEL for o in objects[0].masks]
    assert [e["area"] for e in shrinking] == pytest.approx(areas)
    assert shrinking[0]["iou_previous"] is None
    assert shrinking[1]["iou_previous"] == pytest.approx(areas[1] / areas[0])  # nested ellipses
    vanished = tracks[4]["dates"]
    assert [(e["date"], e["status"], e["area"]) for e in vanished][2] == ("2021-08-15", "lost", 0.0)
    moving = [r for r in report["rows"] if r["track_id"] == 2]
    assert len(moving) == 3 and all(0.5 < r["iou"] < 0.8 for r in moving)


def test_bad_input_is_refused(truth, tmp_path):
    _, path, labels, _ = truth
    with pytest.raises(SegError, match="empty"):
        change_report([])
    with pytest.raises(SegError, match="no `date`"):
        change_report([Label(labels[0].geometry, labels[0].crs, {"class": "x"})])
    with pytest.raises(SegError, match="two dates"):
        change_report(labels[:1])
    out = str(tmp_path / "c.json")
    open(out, "w").write("{}")
    assert main(["change", path, "--out", out]) == 2 and open(out).read() == "{}"


def test_an_uncertain_object_is_not_lost_area_but_its_own_column():
    """Two ponds on the first date; on the second one is kept at half its area and the other is
    `uncertain` (the model could not confirm it): lost is only the kept pond's lost half, the
    uncertain pond's area has its own column, and `explained` says which share of the date is known."""
    from shapely.geometry import box

    def pond(geometry, when, status, track):
        return Label(geometry, "EPSG:32633", dict(attributes("water", {"date": when}, status=status), track_id=track))

    a, b = box(500000, 4649000, 500010, 4649010), box(500100, 4649000, 500120, 4649010)
    labels = [pond(a, "2021-04-15", "accepted", 1), pond(b, "2021-04-15", "accepted", 2),
              pond(box(500000, 4649000, 500005, 4649010), "2021-06-15", "kept", 1), pond(b, "2021-06-15", "uncertain", 2)]
    report = change_report(labels)
    (row,) = report.rows
    assert (row["area_from"], row["area_to"], row["lost"], row["uncertain"]) == pytest.approx((300.0, 50.0, 50.0, 200.0))
    assert row["explained"] == pytest.approx(50 / 250)
    assert "uncertain" in report.to_csv().splitlines()[0]
    assert {c.attributes["change"] for c in report.changes} == {"lost", "uncertain"}
