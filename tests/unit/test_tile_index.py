import numpy as np
import pytest
import rasterio

from seg_qgis_plugin.core.engine.embedding_cache import CacheKey, EmbeddingCache
from seg_qgis_plugin.core.errors import Canceled
from seg_qgis_plugin.core.models.backend import Embedding
from seg_qgis_plugin.core.geo.radiometry import Radiometry
from seg_qgis_plugin.core.batch.tile_index import cache_coverage, tile_footprint, tile_index
from seg_qgis_plugin.core.geo.tiling import Tile, TileGrid, Tiling

X0, Y0, RES = 500000.0, 4650000.0, 0.5


class CancelAfter:
    def __init__(self, n):
        self.calls, self.n = 0, n

    def set_progress(self, percent):
        pass

    def is_canceled(self):
        self.calls += 1
        return self.calls > self.n


def test_index_covers_the_grid_with_pixel_exact_footprints(raster_factory):
    data = np.arange(600 * 1000, dtype=np.uint16).reshape(1, 600, 1000)
    path = raster_factory(data)
    records = tile_index(path, tiling=Tiling(256, 64))
    assert len(records) == len(TileGrid(1000, 600, 256, 64))
    first = records[0]
    assert first.geometry.bounds == (X0, Y0 - 256 * RES, X0 + 256 * RES, Y0)
    last = records[-1]
    assert last.geometry.bounds[2] == X0 + 1000 * RES and last.geometry.bounds[1] == Y0 - 600 * RES
    assert [r.attributes["tile_id"] for r in records] == list(range(1, len(records) + 1))
    assert all(r.attributes["valid_fraction"] == 1.0 for r in records)
    assert first.attributes["window"] == "0,0,256,256@1"


def test_all_nodata_tiles_are_skipped_and_partial_ones_report_their_share(raster_factory):
    data = np.full((1, 256, 512), 7, np.uint8)
    data[:, :, :300] = 0  # tile 0 (cols 0..255) is all nodata; tile 1 (256..511) is 44/256 nodata
    path = raster_factory(data, nodata=0)
    records = tile_index(path, tiling=Tiling(256, 0))
    assert [r.attributes["grid_col"] for r in records] == [1]
    assert records[0].attributes["valid_fraction"] == pytest.approx((512 - 300) / 256)
    assert len(tile_index(path, tiling=Tiling(256, 0), skip_nodata=False)) == 2


def test_aoi_keeps_only_intersecting_tiles(raster_factory):
    from shapely.geometry import box

    path = raster_factory(np.ones((1, 512, 512), np.uint8))
    aoi = box(X0 + 300 * RES, Y0 - 310 * RES, X0 + 310 * RES, Y0 - 300 * RES)  # inside tile (row 1, col 1)
    records = tile_index(path, tiling=Tiling(256, 0), aoi=aoi)
    assert [(r.attributes["grid_row"], r.attributes["grid_col"]) for r in records] == [(1, 1)]


def test_geotiff_chips_hold_the_raster_window_with_its_transform(raster_factory, tmp_path):
    data = np.random.default_rng(0).integers(0, 4000, (3, 300, 400)).astype(np.uint16)
    path = raster_factory(data)
    chips = tmp_path / "chips"
    chips.mkdir()
    records = tile_index(path, tiling=Tiling(200, 0), chips_dir=str(chips))
    r = records[-1]
    with rasterio.open(chips / r.attributes["chip"]) as chip:
        assert chip.count == 3 and chip.dtypes[0] == "uint16"
        t = r.tile
        np.testing.assert_array_equal(chip.read(), data[:, t.row:t.row + t.height, t.col:t.col + t.width])
        assert chip.transform == t.transform(rasterio.open(path).transform)


def test_png_chips_are_8bit_rgb(raster_factory, tmp_path):
    import cv2

    path = raster_factory(np.random.default_rng(1).integers(0, 4000, (4, 128, 128)).astype(np.uint16))
    records = tile_index(path, tiling=Tiling(64, 0), chips_dir=str(tmp_path / "png"), chip_format="png")
    image = cv2.imread(str(tmp_path / "png" / records[0].attributes["chip"]), cv2.IMREAD_UNCHANGED)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8 and image.max() > 200


def test_cancel_stops_the_walk_and_leaves_no_chips(raster_factory, tmp_path):
    import os

    path = raster_factory(np.ones((1, 512, 512), np.uint8))
    with pytest.raises(Canceled):
        tile_index(path, tiling=Tiling(64, 0), progress=CancelAfter(3), chips_dir=str(tmp_path / "chips"))
    assert os.listdir(tmp_path) == [os.path.basename(path)]


def test_cache_coverage_lists_the_cached_tiles_of_one_raster(tmp_path):
    from affine import Affine

    cache = EmbeddingCache(str(tmp_path / "cache"))
    radiometry = Radiometry((1, 1, 1), (0, 0, 0), (255, 255, 255))
    tile = Tile(64, 128, 64, 64)
    cache.put(CacheKey("fp-a", tile, radiometry, "sam-vit_tiny", "abc"), Embedding((64, 64), {"f": np.zeros(3, np.float32)}), "r.tif")
    cache.put(CacheKey("fp-b", tile, radiometry, "sam-vit_tiny", "abc"), Embedding((64, 64), {"f": np.zeros(3, np.float32)}), "r.tif")
    transform = Affine(RES, 0, X0, 0, -RES, Y0)
    records = cache_coverage(cache, transform, fingerprint="fp-a")
    assert len(records) == 1
    assert records[0].geometry.equals(tile_footprint(tile, transform))
    assert records[0].attributes["window"] == tile.label() and records[0].attributes["model"] == "sam-vit_tiny"
