import json
import os
import shutil

import numpy as np
import pytest

from seg_qgis_plugin.core.engine.embedding_cache import CacheKey, EmbeddingCache, read_header
from seg_qgis_plugin.core.errors import CacheError
from seg_qgis_plugin.core.models.backend import Embedding
from seg_qgis_plugin.core.geo.radiometry import Radiometry
from seg_qgis_plugin.core.geo.raster import RasterSource
from seg_qgis_plugin.core.engine.segmenter import Segmenter
from seg_qgis_plugin.core.geo.tiling import Tile, Tiling

R = Radiometry((1, 2, 3), (0.0, 0.0, 0.0), (255.0, 255.0, 255.0))


def key(tile=Tile(0, 0, 64, 64)):
    return CacheKey("f" * 32, tile, R, "sam-vit_tiny", "ab" * 32)


@pytest.mark.parametrize("float16", [False, True])
def test_round_trip_and_self_describing_header(tmp_path, float16):
    cache = EmbeddingCache(str(tmp_path / "cache"), float16=float16)
    features = np.random.default_rng(0).normal(size=(1, 256, 64, 64)).astype(np.float32)
    path = cache.put(key(), Embedding((64, 64), {"features": features}, {"input_size": [1024, 1024]}), "/abs/path/ortho.tif")
    header = read_header(path)
    assert header["raster"] == "ortho.tif" and "/abs" not in json.dumps(header)
    assert header["checkpoint_sha256"] == "ab" * 32 and json.loads(header["window"]) == [0, 0, 64, 64]
    got = cache.get(key())
    assert got.arrays["features"].dtype == np.float32 and got.meta == {"input_size": [1024, 1024]}
    np.testing.assert_allclose(got.arrays["features"], features, rtol=1e-3 if float16 else 0, atol=1e-3 if float16 else 0)
    assert cache.get(key(Tile(64, 0, 64, 64))) is None
    assert [e["file"] for e in cache.entries()] == [os.path.basename(path)]


def test_corrupt_entry_is_reported_and_part_files_are_not_entries(tmp_path):
    cache = EmbeddingCache(str(tmp_path))
    path = cache.put(key(), Embedding((8, 8), {"features": np.zeros((1, 2), np.float32)}), "r.tif")
    open(path, "wb").write(b"garbage")
    (tmp_path / "x.part").write_bytes(b"partial")
    with pytest.raises(CacheError, match="unreadable"):
        cache.get(key())
    assert list(cache.entries()) == []


def test_encode_is_resumable_and_a_copied_cache_is_used_elsewhere(tmp_path, oracle, raster_factory):
    class CountingOracle(oracle):
        cacheable = True
        checkpoint_sha256 = "cd" * 32

    data = np.random.default_rng(0).integers(0, 255, (3, 300, 300)).astype(np.uint8)
    path = raster_factory(data, name="ortho.tif")
    model = CountingOracle()
    with RasterSource(path) as src:
        seg = Segmenter(src, model, tiling=Tiling(128, 32), cache=EmbeddingCache(str(tmp_path / "c")))
        first = seg.encode(list(seg.grid)[:4])
        again = seg.encode()
    assert first == {"encoded": 4, "cached": 0, "nodata": 0}
    assert again == {"encoded": len(seg.grid) - 4, "cached": 4, "nodata": 0}
    assert model.encoded == len(seg.grid)
    # another machine: raster and cache copied to new places
    other = tmp_path / "laptop"
    other.mkdir()
    shutil.copy(path, other / "ortho.tif")
    shutil.copytree(tmp_path / "c", other / "cache")
    model2 = CountingOracle()
    with RasterSource(str(other / "ortho.tif")) as src:
        seg2 = Segmenter(src, model2, tiling=Tiling(128, 32), cache=EmbeddingCache(str(other / "cache")))
        assert seg2.encode() == {"encoded": 0, "cached": len(seg.grid), "nodata": 0}
        seg2.embedding(seg2.grid.at(0, 0))
    assert model2.encoded == 0


def test_all_nodata_tiles_are_skipped(tmp_path, oracle, raster_factory):
    class Cacheable(oracle):
        cacheable = True

    data = np.zeros((1, 256, 512), np.uint16)
    data[:, :, 300:] = 500
    with RasterSource(raster_factory(data, nodata=0)) as src:
        seg = Segmenter(src, Cacheable(), tiling=Tiling(256, 0), cache=EmbeddingCache(str(tmp_path / "c")),
                        radiometry=Radiometry((1, 1, 1), (0.0,) * 3, (1000.0,) * 3))
        assert seg.encode() == {"encoded": 1, "cached": 0, "nodata": 1}


def test_prune_keeps_the_most_recently_used_entries(tmp_path):
    import time

    cache = EmbeddingCache(str(tmp_path))
    keys = [key(Tile(i * 64, 0, 64, 64)) for i in range(4)]
    for i, k in enumerate(keys):
        path = cache.put(k, Embedding((8, 8), {"features": np.zeros((1, 1000), np.float32)}), "r.tif")
        os.utime(path, (time.time() - 100 + i, time.time() - 100 + i))
    cache.get(keys[0])  # used just now
    keep = os.path.getsize(cache.path_for(keys[0])) + os.path.getsize(cache.path_for(keys[3]))
    assert cache.prune(keep) == 2
    assert [k in cache for k in keys] == [True, False, False, True]
