import numpy as np
import pytest
from pyproj import Transformer
from rasterio.transform import from_origin

from seg_qgis_plugin.core.errors import CrsError, PromptError
from seg_qgis_plugin.core.geo.prompts import Prompt, parse_box, parse_point, parse_tags, to_pixels
from seg_qgis_plugin.core.geo.tiling import Tile

T = from_origin(500000, 4650000, 0.5, 0.5)


def test_points_in_another_crs_land_on_the_right_pixel():
    lon, lat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(500000 + 100.25, 4650000 - 50.75)
    pixels = to_pixels(Prompt("EPSG:4326", ((lon, lat),), (1,)), "EPSG:32633", T, 1000, 1000)
    np.testing.assert_allclose(pixels.points[0], (200.5, 101.5), atol=1e-6)


def test_tile_coordinates_follow_sam_index_convention_and_levels():
    pixels = to_pixels(Prompt("EPSG:32633", ((500000 + 100.25, 4650000 - 50.75),), (1,), box=(500010, 4649900, 500050, 4649990)),
                       "EPSG:32633", T, 1000, 1000)
    tp = pixels.in_tile(Tile(100, 50, 200, 200))
    np.testing.assert_allclose(tp.points[0], (200.5 - 100 - 0.5, 101.5 - 50 - 0.5))
    assert tp.box is None  # the box lies left of this tile
    assert pixels.in_tile(Tile(0, 0, 300, 300)).box == pytest.approx((20 - 0.5, 20 - 0.5, 100 - 0.5, 200 - 0.5))
    coarse = pixels.in_tile(Tile(0, 0, 500, 500, scale=2))
    np.testing.assert_allclose(coarse.points[0], (200.5 / 2 - 0.5, 101.5 / 2 - 0.5))
    assert coarse.box == pytest.approx((20 / 2 - 0.5, 20 / 2 - 0.5, 100 / 2 - 0.5, 200 / 2 - 0.5))


def test_outside_prompts_are_refused_in_one_sentence():
    with pytest.raises(PromptError, match="lies outside the raster"):
        to_pixels(Prompt("EPSG:32633", ((499000.0, 4650000.0),), (1,)), "EPSG:32633", T, 100, 100)
    with pytest.raises(PromptError, match="lies outside the raster"):
        to_pixels(Prompt("EPSG:32633", box=(0, 0, 10, 10)), "EPSG:32633", T, 100, 100)


def test_malformed_prompts():
    with pytest.raises(PromptError):
        Prompt("EPSG:32633")
    with pytest.raises(CrsError):
        Prompt("", ((1.0, 2.0),), (1,))
    with pytest.raises(CrsError):
        to_pixels(Prompt("EPSG:999999", ((1.0, 2.0),), (1,)), "EPSG:32633", T, 100, 100)
    with pytest.raises(PromptError):
        Prompt("EPSG:32633", box=(10, 10, 5, 20))
    assert parse_point("1.5,2") == ((1.5, 2.0), 1)
    assert parse_point("1,2,-") == ((1.0, 2.0), 0)
    assert parse_box("1,2,3,4") == (1.0, 2.0, 3.0, 4.0)
    assert parse_tags(["date=2024-06-01", "season = summer"]) == {"date": "2024-06-01", "season": "summer"}
    for bad in ("1", "a,b", "1,2,x"):
        with pytest.raises(PromptError):
            parse_point(bad)
    with pytest.raises(PromptError):
        parse_tags(["nokey"])
