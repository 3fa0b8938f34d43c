"""seg drift: the generated series' known drift (a harvested field, then haze over the left half)
ranks first; identical dates give 0; real NAIP dates drift within 0..1; the summary lives in the
layer's metadata; embedding drift from caches."""
import json
import os
import shutil

import numpy as np
import pytest

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.timeseries.dates import dated_series
from seg_qgis_plugin.core.timeseries.drift import drift_map, wasserstein
from seg_qgis_plugin.demo.series import HARVESTED, write_series


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return write_series(str(tmp_path_factory.mktemp("drift")))


def by_pair(result):
    pairs = {}
    for t in result.tiles:
        col, row = (int(v) for v in t.attributes["tile"].split("@")[0].split(",")[:2])
        pairs.setdefault(t.attributes["date_from"], {})[(col, row)] = t.attributes["drift"]
    return pairs


def test_wasserstein_is_0_for_equal_and_1_for_black_against_white():
    black, white = np.zeros((3, 256)), np.zeros((3, 256))
    black[:, 0], white[:, 255] = 10, 10
    assert wasserstein(black, black) == 0 and wasserstein(black, white) == pytest.approx(1.0)


def test_known_drift_ranks_first(series):
    result = drift_map(dated_series(series.rasters), tile=100)
    pairs = by_pair(result)
    first = pairs["2021-04-15"]
    assert max(first, key=first.get) == HARVESTED and first[HARVESTED] > 3 * np.median(list(first.values()))
    for hazy_pair in ("2021-06-15", "2021-08-15"):  # haze comes, haze goes: the left half (columns < 200) drifts
        drift = pairs[hazy_pair]
        top = sorted(drift, key=drift.get, reverse=True)[:6]
        assert all(col < 200 for col, _ in top), drift
        hazy = np.mean([v for (c, _), v in drift.items() if c < 200])
        clear = np.mean([v for (c, _), v in drift.items() if c >= 200 and (c, _) != HARVESTED])
        assert hazy > 3 * clear
    assert result.summary["ranking"][-1] == "2021-04-15..2021-06-15"


def test_the_same_image_twice_does_not_drift(series, tmp_path):
    copy = str(tmp_path / "copy_20300101.tif")
    shutil.copy(series.rasters[0], copy)
    result = drift_map(dated_series([series.rasters[0], copy], ["2021-04-15", "2030-01-01"]), tile=128)
    assert all(t.attributes["drift"] == 0 and not t.attributes["flagged"] for t in result.tiles)


def test_cli_writes_tiles_summary_metadata_and_a_picture(series, tmp_path):
    import pyogrio
    from seg_qgis_plugin.core.outputs.vectors import read_labels

    out, png = str(tmp_path / "drift.gpkg"), str(tmp_path / "drift.png")
    assert main(["drift", *series.rasters, "--tile", "100", "--out", out, "--png", png, "--threshold", "0.2"]) == 0
    tiles = read_labels(out)
    assert len(tiles) == 3 * 16 and all(0 <= t.attributes["drift"] <= 1 for t in tiles)
    assert sum(t.attributes["flagged"] for t in tiles) == sum(t.attributes["local_drift"] > 0.2 for t in tiles) > 0
    assert all(t.attributes["threshold"] == 0.2 and t.attributes["drift_ratio"] == pytest.approx(t.attributes["local_drift"] / 0.2)
               for t in tiles)
    summary = json.loads(pyogrio.read_info(out)["layer_metadata"]["seg_drift_summary"])
    assert [p["flagged"] for p in summary["pairs"]] == [sum(t.attributes["flagged"] for t in tiles if t.attributes["date_from"] == d)
                                                        for d in series.dates[:3]]
    assert open(png, "rb").read(4) == b"\x89PNG"
    assert main(["drift", series.rasters[0], series.rasters[0], "--out", str(tmp_path / "x.gpkg")]) == 2
    assert not os.path.exists(tmp_path / "x.gpkg")


def test_the_threshold_from_the_series_flags_the_harvested_field_and_says_how(series):
    result = drift_map(dated_series(series.rasters), tile=100)
    first = [t for t in result.tiles if t.attributes["date_from"] == "2021-04-15"]
    flagged = {tuple(int(v) for v in t.attributes["tile"].split("@")[0].split(",")[:2]) for t in first if t.attributes["flagged"]}
    assert HARVESTED in flagged and len(flagged) <= 2, flagged  # each date's own gain is not change
    pair = result.summary["pairs"][0]
    assert pair["threshold_rule"].startswith(("from the series", "the floor")) and pair["flagged"] == len(flagged)
    assert result.summary["threshold"] == "from the series"


def test_real_naip_dates_drift_and_the_default_flags_change_not_everything(shared):
    """NAIP 2009/2015/2020 differ in sensor and season: the raw drift is high everywhere (a fixed
    0.1 flagged 91 of 96 tiles). After the global shift is removed, the series' own threshold flags
    at most a quarter of the tiles, and what it flags really changed: by an independent reference,
    the mean per-pixel NDVI change, the flagged tiles changed more than the typical tile."""
    import rasterio
    from rasterio.windows import from_bounds

    folder = shared("naip_prairie_timeseries")
    series = dated_series([os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".tif")])
    result = drift_map(series, tile=128)
    for pair in result.summary["pairs"]:
        assert pair["tiles"] >= 40 and 0.05 < pair["median"] < 0.5 and pair["max"] < 1
        assert pair["flagged"] <= 0.25 * pair["tiles"] and pair["threshold_rule"], pair
    assert any(pair["flagged"] for pair in result.summary["pairs"])

    def ndvi(path, bounds):
        with rasterio.open(path) as src:
            red, nir = (src.read(b, window=from_bounds(*bounds, src.transform), out_shape=(32, 32)).astype(float) for b in (1, 4))
        return (nir - red) / np.maximum(nir + red, 1)

    paths = {item.iso: item.path for item in series}
    change = {True: [], False: []}
    for t in result.tiles:
        a, b = (ndvi(paths[t.attributes[key]], t.geometry.bounds) for key in ("date_from", "date_to"))
        change[bool(t.attributes["flagged"])].append(float(np.abs(b - a).mean()))
    assert np.mean(change[True]) > np.median(change[False]) + 0.05
