"""seg propagate on a generated series with known truth (objects shrink, move, vanish, appear; haze
on one date) and on the real NAIP 2009/2015/2020 series; bad input writes nothing."""
import json
import os

import numpy as np
import pytest
from rasterio.features import rasterize

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.outputs.vectors import read_labels
from seg_qgis_plugin.demo.series import SIZE, truth_by_name, write_series


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The generated series and its propagation by `seg propagate` (classic backend), read back."""
    folder = tmp_path_factory.mktemp("series")
    series = write_series(str(folder))
    out = str(folder / "series_out.gpkg")
    assert main(["propagate", series.labels, *series.rasters, "--out", out, "--backend", "classic"]) == 0
    return series, out, read_labels(out)


def iou(geometry, mask, transform):
    got = rasterize([geometry], out_shape=(SIZE, SIZE), transform=transform).astype(bool)
    return (got & mask).sum() / (got | mask).sum()


def test_every_object_found_on_every_date_with_iou_at_least_0_9(generated):
    series, _, labels = generated
    truth = truth_by_name(series)
    found = [lab for lab in labels if lab.attributes["status"] == "kept"]
    ious = {(json.loads(lab.attributes["tags"])["name"], lab.attributes["date"]):
            iou(lab.geometry, truth[json.loads(lab.attributes["tags"])["name"]].masks[series.dates.index(lab.attributes["date"])], series.transform)
            for lab in found}
    expected = {(o.name, d) for o in series.objects for k, d in enumerate(series.dates) if o.masks[k] is not None and k > o.first_date()}
    assert set(ious) == expected  # the hazy date included: no false losses
    assert min(ious.values()) >= 0.9, ious


def test_the_vanished_pond_is_lost_with_its_last_outline(generated):
    series, _, labels = generated
    lost = [lab for lab in labels if lab.attributes["status"] == "lost"]
    assert sorted(lab.attributes["date"] for lab in lost) == ["2021-08-15", "2021-10-15"]
    assert {json.loads(lab.attributes["tags"])["name"] for lab in lost} == {"vanishing pond"}
    pond = [lab for lab in labels if json.loads(lab.attributes["tags"])["name"] == "vanishing pond"]
    last_found = [lab for lab in pond if lab.attributes["date"] == "2021-06-15"][0]
    assert all(lab.geometry.equals(last_found.geometry) for lab in lost)


def test_one_layer_holds_the_series_with_tracks_dates_and_provenance(generated):
    series, out, labels = generated
    import pyogrio

    assert "track_id" in pyogrio.read_info(out)["fields"]
    assert len(labels) == 4 * 4 - 1 + 3  # four objects from the first date on 4 dates, one new one on 2
    by_track = {}
    for lab in labels:
        by_track.setdefault(lab.attributes["track_id"], set()).add(json.loads(lab.attributes["tags"])["name"])
    assert sorted(len(names) for names in by_track.values()) == [1] * 5  # one object per track
    starts = [lab for lab in labels if lab.attributes["status"] == "accepted"]
    assert sorted(lab.attributes["date"] for lab in starts) == ["2021-04-15"] * 4 + ["2021-08-15"]
    found = [lab for lab in labels if lab.attributes["status"] == "kept"]
    assert all(lab.attributes["model"] == "classic-grabcut" and lab.attributes["source"].startswith("series_") for lab in found)
    assert all(lab.attributes["source"] == f"series_{lab.attributes['date'].replace('-', '')}.tif" for lab in found)


def test_an_object_off_a_raster_is_outside(tmp_path):
    import rasterio
    from rasterio.windows import Window

    series = write_series(str(tmp_path))
    with rasterio.open(series.rasters[1]) as src:  # the left half only: the moving pond (east) is off it
        profile = dict(src.profile, width=SIZE // 2, transform=src.window_transform(Window(0, 0, SIZE // 2, SIZE)))
        data = src.read(window=Window(0, 0, SIZE // 2, SIZE))
    half = str(tmp_path / "half_20210615.tif")
    with rasterio.open(half, "w", **profile) as dst:
        dst.write(data)
    out = str(tmp_path / "out.gpkg")
    assert main(["propagate", series.labels, series.rasters[0], half, "--out", out, "--classes", "water"]) == 0
    status = {(json.loads(lab.attributes["tags"])["name"], lab.attributes["date"]): lab.attributes["status"] for lab in read_labels(out)}
    assert status[("moving pond", "2021-06-15")] == "outside"
    assert status[("vanishing pond", "2021-06-15")] == "outside"
    assert status[("shrinking pond", "2021-06-15")] == "kept"
    assert all(name in ("shrinking pond", "moving pond", "vanishing pond") for name, _ in status)


def test_bad_input_gets_one_sentence_and_writes_nothing(tmp_path, raster_factory, capsys):
    from seg_qgis_plugin.core.engine.labels import Label, attributes
    from seg_qgis_plugin.core.outputs.vectors import write_labels
    from shapely.geometry import box

    series = write_series(str(tmp_path))
    out = str(tmp_path / "out.gpkg")

    def fails(args, words):
        assert main(["propagate", *args, "--out", out]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1 and not os.path.exists(out)

    far = raster_factory(np.ones((3, 20, 20), np.uint8), name="far_20220101.tif",
                         transform=__import__("rasterio").transform.from_origin(100000, 100000, 1, 1))
    fails([series.labels, series.rasters[1], far], "does not overlap the labels")
    fails([series.labels, series.rasters[1], series.rasters[1]], "same date")
    undated = write_labels([Label(box(500010, 4649900, 500020, 4649910), "EPSG:32633", attributes("pond"))], str(tmp_path / "undated.gpkg"))
    fails([undated, series.rasters[1]], "no date")
    assert main(["propagate", undated, series.rasters[1], "--start-date", "2021-04-15", "--out", out, "--backend", "classic"]) == 0
    os.remove(out)
    empty = write_labels([], str(tmp_path / "empty.gpkg"), crs="EPSG:32633")
    fails([empty, series.rasters[1]], "empty")


def test_real_naip_tracks_water_through_dates_of_different_radiometry(shared, tmp_path):
    """Start: the three largest water bodies of 2009 (NDWI > 0.1, the README's rough reference);
    every track has a feature on 2015 and 2020, a kept outline overlaps that date's own NDWI water
    well (IoU >= 0.5), and no pond is `lost` on a date where NDWI shows its outline as water."""
    import rasterio
    from seg_qgis_plugin.core.engine.labels import Label, attributes
    from seg_qgis_plugin.core.geo.vectorize import mask_to_geometry
    from seg_qgis_plugin.core.timeseries.dates import dated_series
    from seg_qgis_plugin.core.timeseries.propagate import propagate
    import cv2

    folder = shared("naip_prairie_timeseries")
    series = dated_series([os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".tif")])

    def water(path):
        with rasterio.open(path) as src:
            g, nir = src.read(2).astype(float), src.read(4).astype(float)
            return ((g - nir) / np.maximum(g + nir, 1) > 0.1), src.transform, src.crs.to_wkt()

    mask, transform, crs = water(series[0].path)
    count, comp, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    biggest = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:3] + 1
    starts = [Label(mask_to_geometry(comp == i, transform), crs, attributes("water", {"date": series[0].iso})) for i in biggest]
    result = propagate(starts, series, __import__("seg_qgis_plugin.core.engine.labeling", fromlist=["x"]).open_backend(backend="classic"))
    tracks = {}
    for lab in result.labels:
        tracks.setdefault(lab.attributes["track_id"], []).append(lab)
    assert len(tracks) == 3 and all(sorted(l.attributes["date"] for l in labs) == [s.iso for s in series] for labs in tracks.values())
    checked = 0
    for lab in result.labels:
        if lab.attributes["status"] != "kept":
            continue
        k = [s.iso for s in series].index(lab.attributes["date"])
        reference, t, _ = water(series[k].path)
        got = rasterize([lab.geometry], out_shape=reference.shape, transform=t).astype(bool)
        near = rasterize([lab.geometry.buffer(50)], out_shape=reference.shape, transform=t).astype(bool)
        ref = reference & near
        assert (got & ref).sum() / (got | ref).sum() >= 0.5, lab.attributes
        checked += 1
    assert checked >= 4  # most tracks are found on both later dates
    for lab in result.labels:
        if lab.attributes["date"] == series[0].iso:
            continue
        reference, t, _ = water(series[[s.iso for s in series].index(lab.attributes["date"])].path)
        outline = rasterize([lab.geometry], out_shape=reference.shape, transform=t).astype(bool)
        if (reference & outline).sum() >= 0.5 * outline.sum():
            assert lab.attributes["status"] != "lost", lab.attributes
        assert lab.attributes["reason"] and (lab.attributes["similarity"] is None or 0 <= lab.attributes["similarity"] <= 1)


def test_sam_propagates_through_the_real_model_path_with_the_outline_as_mask_prompt(tmp_path, tiny_checkpoint, monkeypatch):
    """Random weights say nothing about quality; this checks the SAM path end to end: every track gets a
    status on every date, and each SAM decode on a start tile carried the previous outline."""
    from seg_qgis_plugin.core.models.sam import SamBackend

    masks = []
    decode = SamBackend.decode
    monkeypatch.setattr(SamBackend, "decode", lambda self, e, p, m=None: masks.append(p.mask_input) or decode(self, e, p, m))
    series = write_series(str(tmp_path))
    out = str(tmp_path / "sam.gpkg")
    assert main(["propagate", series.labels, *series.rasters, "--out", out, "--checkpoint", tiny_checkpoint,
                 "--tile", "256", "--overlap", "64"]) == 0
    labels = read_labels(out)
    tracks = {lab.attributes["track_id"] for lab in labels}
    assert {lab.attributes["status"] for lab in labels} <= {"accepted", "kept", "lost", "uncertain", "outside"}
    assert len(labels) >= len(tracks) * 2 and masks and all(m is None or m.shape == (1, 256, 256) for m in masks)
    assert any(m is not None for m in masks)


@pytest.mark.parametrize("kind", ["fields", "forest", "urban"])
def test_on_textured_backgrounds_a_dried_pond_is_lost_and_haze_loses_nothing(tmp_path, kind):
    """The textured series (haze on the second date, a brighter fourth date): the pond that dries
    into a field of three crop colours is `lost` from that date on (the field patch the model finds
    there is not taken for water), and every pond present on a date is not lost there."""
    from seg_qgis_plugin.core.engine.labeling import open_backend
    from seg_qgis_plugin.core.timeseries.dates import dated_series
    from seg_qgis_plugin.core.timeseries.propagate import propagate
    from seg_qgis_plugin.demo.textured_series import DATES, DRIED, write_textured_series

    series = write_textured_series(str(tmp_path), kind)
    truth = truth_by_name(series)
    result = propagate(read_labels(series.labels), dated_series(series.rasters), open_backend(backend="classic"))
    for lab in result.labels:
        name, when = json.loads(lab.attributes["tags"])["name"], lab.attributes["date"]
        present = truth[name].masks[DATES.index(when)] is not None
        if name == "drying pond" and DATES.index(when) >= DRIED:
            assert lab.attributes["status"] == "lost", lab.attributes
        elif present:
            assert lab.attributes["status"] != "lost", lab.attributes
