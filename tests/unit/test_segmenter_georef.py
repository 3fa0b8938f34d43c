"""End to end with an oracle model: prompts in map coordinates -> polygons equal to known shapes."""
import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from shapely.geometry import box as shapely_box

from seg_qgis_plugin.core.engine.labeling import to_label
from seg_qgis_plugin.core.outputs.label_rasters import polygonize_raster, rasterize_labels
from seg_qgis_plugin.core.geo.prompts import Prompt
from seg_qgis_plugin.core.geo.raster import RasterSource
from seg_qgis_plugin.core.engine.segmenter import Segmenter
from seg_qgis_plugin.core.geo.tiling import Tiling
from seg_qgis_plugin.core.geo.vectorize import mask_to_geometry


def pixel_box(transform, c0, r0, c1, r1):
    """Map-coordinate polygon of raster pixels [c0, c1) x [r0, r1)."""
    x0, y0 = transform * (c0, r0)
    x1, y1 = transform * (c1, r1)
    return shapely_box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def segment_box(path, oracle, c0, r0, c1, r1, prompt_crs=None, **kw):
    src = RasterSource(path)
    seg = Segmenter(src, oracle("box"), **kw)
    expected = pixel_box(src.transform, c0, r0, c1, r1)
    crs = src.crs.to_wkt()
    xmin, ymin, xmax, ymax = expected.bounds
    result = seg.segment(Prompt(crs, box=(xmin, ymin, xmax, ymax)))
    return seg, result, expected


@pytest.mark.parametrize("case", [
    ("spacenet_atlanta_buildings", "sample_geotiff.tif"),          # UTM 16N, uint16 panchromatic
    ("sen1floods11_spain_7370579", "Spain_7370579_S2Hand.tif"),    # EPSG:4326, 13 bands
    ("neon_tree_crowns", "OSBS_029.tif"),                          # UTM, RGB
])
def test_box_prompt_gives_exactly_the_box_on_real_rasters(case, oracle, shared):
    path = shared(*case)
    seg, result, expected = segment_box(path, oracle, 37, 51, 120, 99, tiling=Tiling(256, 64))
    geometry = mask_to_geometry(result.mask, result.transform)
    assert geometry.equals(expected), (geometry.bounds, expected.bounds)
    assert result.prompt_type == "box" and result.complete


def test_point_in_wgs84_on_a_utm_raster_lands_on_its_pixel(oracle, shared):
    path = shared("spacenet_atlanta_buildings", "sample_geotiff.tif")
    src = RasterSource(path)
    col, row = 400, 333
    x, y = src.transform * (col + 0.3, row + 0.6)
    lon, lat = Transformer.from_crs(src.crs.to_wkt(), "EPSG:4326", always_xy=True).transform(x, y)
    seg = Segmenter(src, oracle("square", k=2), tiling=Tiling(256, 64))
    result = seg.segment(Prompt("EPSG:4326", ((lon, lat),), (1,)))
    geometry = mask_to_geometry(result.mask, result.transform)
    assert geometry.equals(pixel_box(src.transform, col - 2, row - 2, col + 3, row + 3))


def test_synthetic_utm_square_and_label_provenance(oracle, raster_factory):
    data = np.zeros((3, 300, 400), np.uint8)
    path = raster_factory(data)
    seg, result, expected = segment_box(path, oracle, 100, 40, 180, 90, tiling=Tiling(128, 32))
    label = to_label(result, seg, "building", {"date": "2024-06-01", "annotator": "ana"})
    assert label.geometry.equals(expected)
    a = label.attributes
    assert (a["class"], a["date"], a["annotator"], a["prompt_type"], a["prompt_count"], a["status"]) == \
        ("building", "2024-06-01", "ana", "box", 1, "prelabel")
    assert a["model"] == "oracle-box" and a["source"].endswith(".tif") and a["created"].endswith("Z")


def test_polygonize_then_rasterize_returns_the_same_pixels(raster_factory, tmp_path):
    rng = np.random.default_rng(3)
    classes = (rng.random((200, 300)) > 0.7).astype(np.uint8) + (rng.random((200, 300)) > 0.9).astype(np.uint8)
    with rasterio.open(raster_factory(np.zeros((1, 200, 300), np.uint8))) as like:
        meta = like.profile
    mask_path = str(tmp_path / "classes.tif")
    with rasterio.open(mask_path, "w", **meta) as dst:
        dst.write(classes, 1)
        dst.update_tags(classes='{"grass": 1, "water": 2}')
    labels = polygonize_raster(mask_path)
    assert {lab.attributes["class"] for lab in labels} == {"grass", "water"}
    out = str(tmp_path / "back.tif")
    mapping = rasterize_labels(labels, mask_path, out)
    assert mapping == {"grass": 1, "water": 2}
    with rasterio.open(out) as back, rasterio.open(mask_path) as orig:
        assert back.transform == orig.transform and back.crs == orig.crs and back.shape == orig.shape
        np.testing.assert_array_equal(back.read(1), classes)


def test_an_object_larger_than_one_window_comes_out_whole(oracle, raster_factory):
    data = np.zeros((3, 900, 1200), np.uint8)
    yy, xx = np.ogrid[:900, :1200]
    lake = ((yy - 450) / 380.0) ** 2 + ((xx - 600) / 560.0) ** 2 <= 1
    data[:, lake] = 220
    data[:, 20:60, 20:60] = 220  # another bright object that must not be merged in
    src = RasterSource(raster_factory(data))
    seg = Segmenter(src, oracle("bright"), tiling=Tiling(256, 64), max_windows=64)
    x, y = src.transform * (600.5, 450.5)
    result = seg.segment(Prompt(src.crs.to_wkt(), ((x, y),), (1,)))
    assert result.complete and len(result.tiles) > 4
    full = np.zeros(lake.shape, bool)
    e = result.extent
    full[e.row:e.row + e.height, e.col:e.col + e.width] = result.mask
    np.testing.assert_array_equal(full, lake)


def test_a_box_larger_than_a_tile_is_answered_on_a_coarser_level(oracle, raster_factory):
    src = RasterSource(raster_factory(np.zeros((3, 1000, 1000), np.uint8)))
    seg = Segmenter(src, oracle("box"), tiling=Tiling(256, 64))
    expected = pixel_box(src.transform, 100, 100, 700, 500)
    result = seg.segment(Prompt(src.crs.to_wkt(), box=expected.bounds))
    assert result.extent.scale == 3
    # exact to the level's pixel (1.5 m here), not the raster's
    assert mask_to_geometry(result.mask, result.transform).hausdorff_distance(expected) <= 1.5 * 2 ** 0.5


def test_results_do_not_depend_on_the_grid(oracle, raster_factory):
    data = np.zeros((3, 600, 600), np.uint8)
    data[:, 200:420, 150:480] = 200
    src = RasterSource(raster_factory(data))
    x, y = src.transform * (300.5, 300.5)
    shapes = []
    for tile, overlap in ((128, 32), (256, 64), (600, 0)):
        result = Segmenter(src, oracle("bright"), tiling=Tiling(tile, overlap)).segment(Prompt("EPSG:32633", ((x, y),), (1,)))
        shapes.append(mask_to_geometry(result.mask, result.transform))
    assert shapes[0].equals(shapes[1]) and shapes[1].equals(shapes[2])
    assert shapes[0].equals(pixel_box(src.transform, 150, 200, 480, 420))
