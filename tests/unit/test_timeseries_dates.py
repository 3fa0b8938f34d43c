"""Dates of rasters (metadata, file name, user) and the sorted series; bad series are refused."""
import os
from datetime import date

import numpy as np
import pytest

from seg_qgis_plugin.core.errors import SegError
from seg_qgis_plugin.core.timeseries.dates import dated_series, label_date, parse_date, raster_date


@pytest.mark.parametrize("text, expected", [
    ("2020-08-31", date(2020, 8, 31)), ("2020-08-31T10:30:00Z", date(2020, 8, 31)), ("2020:08:31 10:30:00", date(2020, 8, 31)),
    ("20200831", date(2020, 8, 31)), ("", None), ("summer", None), (None, None), ("2020-13-01", None),
])
def test_parse_date(text, expected):
    assert parse_date(text) == expected


def test_raster_date_from_metadata_beats_the_file_name(raster_factory):
    data = np.zeros((1, 8, 8), np.uint8)
    tagged = raster_factory(data, name="scene_20190101.tif")
    import rasterio

    with rasterio.open(tagged, "r+") as ds:
        ds.update_tags(TIFFTAG_DATETIME="2021:06:15 10:30:00")
    assert raster_date(tagged) == date(2021, 6, 15)
    assert raster_date(raster_factory(data, name="scene_20190101.tif".replace("scene", "other"))) == date(2019, 1, 1)
    assert raster_date(raster_factory(data, name="ortho-2018-05-02-v2.tif")) == date(2018, 5, 2)
    assert raster_date(raster_factory(data, name="ortho.tif")) is None


def test_real_naip_series_is_dated_from_its_file_names(shared):
    folder = shared("naip_prairie_timeseries")
    paths = sorted((os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".tif")), reverse=True)
    series = dated_series(paths)
    assert [s.iso for s in series] == ["2009-08-18", "2015-09-26", "2020-08-31"]


def test_bad_series_are_refused_in_one_sentence(raster_factory):
    data = np.zeros((1, 8, 8), np.uint8)
    a, b = raster_factory(data, name="a_20200101.tif"), raster_factory(data, name="b_20200101.tif")
    with pytest.raises(SegError, match="same date"):
        dated_series([a, b])
    with pytest.raises(SegError, match="no date"):
        dated_series([a, raster_factory(data, name="undated.tif")])
    with pytest.raises(SegError, match="one date per raster"):
        dated_series([a, b], ["2020-01-01"])
    assert [s.iso for s in dated_series([a, b], ["2021-01-01", "2020-05-05"])] == ["2020-05-05", "2021-01-01"]


def test_label_date_falls_back_to_the_start_date():
    assert label_date({"date": "2020-08-31"}, date(2000, 1, 1)) == date(2020, 8, 31)
    assert label_date({"date": ""}, date(2000, 1, 1)) == date(2000, 1, 1)
    assert label_date({}, None) is None
