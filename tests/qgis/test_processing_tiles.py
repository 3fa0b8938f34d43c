"""seg:tileraster and seg:encoderaster through processing.run on real files."""
import os

import numpy as np
import pytest
from shapely.geometry import box

from seg_qgis_plugin.core.geo.tiling import TileGrid

X0, Y0, RES = 500000.0, 4650000.0, 0.5


@pytest.fixture
def bordered(raster_factory):
    """600 x 400 uint16, 3 bands, columns 0..299 nodata (0): the first column of 256-pixel tiles is empty."""
    data = np.random.default_rng(0).integers(100, 4000, (3, 400, 600)).astype(np.uint16)
    data[:, :, :300] = 0
    return raster_factory(data, nodata=0)


def test_tile_index_skips_empty_tiles_with_exact_footprints_and_chips(run_algorithm, read_vector, bordered, tmp_path):
    import rasterio

    out, chips = str(tmp_path / "tiles.gpkg"), str(tmp_path / "chips")
    result = run_algorithm("seg:tileraster", {"INPUT": bordered, "TILE": 256, "OVERLAP": 64, "GSD": 0, "SKIP_NODATA": True,
                                              "CHIPS": chips, "CHIP_FORMAT": 0, "OUTPUT": out})
    grid = TileGrid(600, 400, 256, 64)
    expected = [t for t in grid if t.col + t.width > 300]
    layer, features = read_vector(result["OUTPUT"])
    assert result["TILE_COUNT"] == len(features) == len(expected) == 4
    assert layer.crs().authid() == "EPSG:32633"
    for feature, tile in zip(sorted(features, key=lambda f: f["tile_id"]), expected):
        bbox = feature.geometry().boundingBox()
        assert (bbox.xMinimum(), bbox.yMaximum()) == (X0 + tile.col * RES, Y0 - tile.row * RES)
        assert (bbox.width(), bbox.height()) == (tile.width * RES, tile.height * RES)
        assert feature["window"] == tile.label()
        with rasterio.open(os.path.join(chips, feature["chip"])) as chip:
            assert chip.width == tile.width and chip.transform.c == X0 + tile.col * RES
    assert sorted(os.listdir(chips)) == sorted(f["chip"] for f in features)


def test_tile_index_on_real_data_covers_the_raster(run_algorithm, read_vector, shared, tmp_path):
    from qgis.core import QgsGeometry, QgsRasterLayer

    path = shared("spacenet_atlanta_buildings", "sample_geotiff.tif")
    result = run_algorithm("seg:tileraster", {"INPUT": path, "TILE": 512, "OVERLAP": 128, "SKIP_NODATA": False,
                                              "OUTPUT": str(tmp_path / "t.gpkg")})
    layer, features = read_vector(result["OUTPUT"])
    assert len(features) == len(TileGrid(900, 900, 512, 128)) == 9 and layer.crs().authid() == "EPSG:32616"
    union = QgsGeometry.unaryUnion([f.geometry() for f in features]).boundingBox()
    assert union == QgsRasterLayer(path, "r", "gdal").extent()


def test_tile_index_aoi_in_another_crs(run_algorithm, read_vector, vector_factory, raster_factory, tmp_path):
    from seg_qgis_plugin.core.geo.vectorize import reproject_geometry

    raster = raster_factory(np.ones((1, 512, 512), np.uint8))
    aoi_utm = box(X0 + 300 * RES, Y0 - 310 * RES, X0 + 310 * RES, Y0 - 300 * RES)  # inside tile (row 1, col 1)
    aoi = vector_factory("aoi", [reproject_geometry(aoi_utm, "EPSG:32633", "EPSG:4326")], "EPSG:4326", label=["a"])
    result = run_algorithm("seg:tileraster", {"INPUT": raster, "TILE": 256, "OVERLAP": 0, "AOI": aoi, "OUTPUT": str(tmp_path / "t.gpkg")})
    _, features = read_vector(result["OUTPUT"])
    assert [(f["grid_row"], f["grid_col"]) for f in features] == [(1, 1)]


def test_tile_index_cancel_and_bad_input_write_nothing(run_algorithm, cancel_at, raster_factory, tmp_path):
    from qgis.core import QgsProcessingException

    raster = raster_factory(np.ones((1, 512, 512), np.uint8), name="r.tif")
    out, chips = str(tmp_path / "t.gpkg"), str(tmp_path / "chips")
    with pytest.raises(QgsProcessingException, match="Canceled"):
        run_algorithm("seg:tileraster", {"INPUT": raster, "TILE": 32, "OVERLAP": 0, "CHIPS": chips, "OUTPUT": out}, cancel_at(30))
    with pytest.raises(QgsProcessingException, match="overlap .* must be smaller than the tile size"):
        run_algorithm("seg:tileraster", {"INPUT": raster, "TILE": 64, "OVERLAP": 64, "OUTPUT": out})
    assert sorted(os.listdir(tmp_path)) == ["r.tif"]


@pytest.fixture
def small_scene(tmp_path):
    from seg_qgis_plugin.demo.scene import write_scene

    path = str(tmp_path / "scene.tif")
    write_scene(path, width=256, height=192)
    return path


def test_encode_on_a_dask_cluster_fills_the_same_cache(run_algorithm, small_scene, tiny_checkpoint, tmp_path):
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    cache = str(tmp_path / "cache")
    params = {"INPUT": small_scene, "CHECKPOINT": tiny_checkpoint, "MODEL_TYPE": 4, "DEVICE": 1, "BANDS": [1, 2, 3],
              "TILE": 128, "OVERLAP": 32, "CACHE": cache, "SCHEDULER": "local:1", "OUTPUT": str(tmp_path / "cov.gpkg")}
    result = run_algorithm("seg:encoderaster", params)
    grid = TileGrid(256, 192, 128, 32)
    assert (result["ENCODED"], result["CACHED"], result["NODATA"]) == (len(grid), 0, 0)
    assert len([n for n in os.listdir(cache) if n.endswith(".safetensors")]) == len(grid)
    with pytest.raises(Exception, match="scheduler"):
        run_algorithm("seg:encoderaster", dict(params, SCHEDULER="tcp://127.0.0.1:1", CACHE=str(tmp_path / "c2"),
                                               OUTPUT=str(tmp_path / "c2.gpkg")))


def test_encode_is_resumable_and_reports_coverage(run_algorithm, read_vector, small_scene, tiny_checkpoint, tmp_path):
    cache = str(tmp_path / "cache")
    params = {"INPUT": small_scene, "CHECKPOINT": tiny_checkpoint, "MODEL_TYPE": 4, "DEVICE": 1, "BANDS": [1, 2, 3],
              "TILE": 128, "OVERLAP": 32, "CACHE": cache, "OUTPUT": str(tmp_path / "cov1.gpkg")}
    first = run_algorithm("seg:encoderaster", params)
    grid = TileGrid(256, 192, 128, 32)
    assert (first["ENCODED"], first["CACHED"], first["NODATA"]) == (len(grid), 0, 0)
    assert len([n for n in os.listdir(cache) if n.endswith(".safetensors")]) == len(grid)
    second = run_algorithm("seg:encoderaster", dict(params, OUTPUT=str(tmp_path / "cov2.gpkg")))
    assert (second["ENCODED"], second["CACHED"]) == (0, len(grid))
    layer, features = read_vector(second["OUTPUT"])
    assert len(features) == len(grid) and layer.crs().authid() == "EPSG:32633"
    assert {f["window"] for f in features} == {t.label() for t in grid}
    assert all(f["model"] == "sam-vit_tiny" for f in features)


def test_encode_cancel_keeps_only_whole_entries(run_algorithm, cancel_at, small_scene, tiny_checkpoint, tmp_path):
    from qgis.core import QgsProcessingException

    cache, out = str(tmp_path / "cache"), str(tmp_path / "cov.gpkg")
    params = {"INPUT": small_scene, "CHECKPOINT": tiny_checkpoint, "TILE": 128, "OVERLAP": 32, "CACHE": cache, "OUTPUT": out}
    with pytest.raises(QgsProcessingException, match="Canceled"):
        run_algorithm("seg:encoderaster", params, cancel_at(20))
    names = os.listdir(cache)
    assert 0 < len(names) < len(TileGrid(256, 192, 128, 32)) and all(n.endswith(".safetensors") for n in names)
    assert not os.path.exists(out)


def test_encode_refuses_a_corrupt_checkpoint(run_algorithm, small_scene, tmp_path):
    from qgis.core import QgsProcessingException

    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(QgsProcessingException, match="not a readable SAM checkpoint"):
        run_algorithm("seg:encoderaster", {"INPUT": small_scene, "CHECKPOINT": str(bad), "CACHE": str(tmp_path / "c"),
                                           "OUTPUT": str(tmp_path / "cov.gpkg")})
    assert not os.path.exists(tmp_path / "cov.gpkg")
