import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine, from_origin

from seg_qgis_plugin.core.errors import CrsError, RasterError, SegError
from seg_qgis_plugin.core.geo.radiometry import Radiometry, band_percentiles, compute_radiometry, suggest_bands
from seg_qgis_plugin.core.geo.raster import RasterSource


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_windowed_reads_of_every_dtype(raster_factory, dtype):
    data = (np.arange(3 * 40 * 50).reshape(3, 40, 50) % 200).astype(dtype)
    with RasterSource(raster_factory(data)) as src:
        out, valid = src.read((3, 2, 1), (10, 5, 20, 30))
        assert out.dtype == np.float32 and out.shape == (3, 30, 20) and valid.all()
        np.testing.assert_array_equal(out[0], data[2, 5:35, 10:30])
        small, _ = src.read((1,), (0, 0, 50, 40), out_shape=(20, 25))
        assert small.shape == (1, 20, 25)


def test_nodata_is_masked_and_excluded_from_the_stretch(raster_factory):
    data = np.full((1, 60, 60), 100, np.int16)
    data[0, :, 30:] = 200
    data[0, :10] = -9999
    with RasterSource(raster_factory(data, nodata=-9999)) as src:
        _, valid = src.read((1,), (0, 0, 60, 60))
        assert not valid[:10].any() and valid[10:].all()
        r = compute_radiometry(src)
        assert r.bands == (1, 1, 1)
        assert 100 <= r.low[0] < r.high[0] <= 200


@pytest.mark.parametrize("dtype,top", [(np.uint8, 256), (np.uint16, 65536), (np.uint16, 700), (np.float32, 1000)])
@pytest.mark.parametrize("n", [1, 2, 1000, 300_001])
def test_band_percentiles_equal_numpys(dtype, top, n):
    pixels = np.random.default_rng(n).integers(0, top, (3, n)).astype(dtype)
    for percentiles in ((2.0, 98.0), (0.0, 100.0), (33.3, 50.0)):
        assert np.array(band_percentiles(pixels, percentiles)) == pytest.approx(np.percentile(pixels, percentiles, axis=1), abs=1e-9)


def test_stretch_is_fixed_per_raster_not_per_tile(raster_factory):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 4000, size=(3, 300, 300)).astype(np.uint16)
    data[:, :100, :100] = 50  # a dark corner: a per-tile stretch would brighten it
    with RasterSource(raster_factory(data)) as src:
        r = compute_radiometry(src)
        tile_a = r.apply(*src.read(r.bands, (0, 0, 150, 150)))
        tile_b = r.apply(*src.read(r.bands, (50, 50, 150, 150)))
    np.testing.assert_array_equal(tile_a[50:, 50:], tile_b[:100, :100])
    assert (r.low, r.high) == (tuple(np.percentile(data, 2, axis=(1, 2))), tuple(np.percentile(data, 98, axis=(1, 2))))
    assert tile_a.dtype == np.uint8 and tile_a.shape == (150, 150, 3)


def test_user_range_and_band_checks(raster_factory):
    with RasterSource(raster_factory(np.zeros((2, 10, 10), np.uint16))) as src:
        assert suggest_bands(src) == (1, 1, 1)
        r = compute_radiometry(src, bands=(2,), value_range=(0, 1000))
        assert r.bands == (2, 2, 2) and r.low == (0.0,) * 3 and r.high == (1000.0,) * 3
        assert Radiometry.from_json(r.to_json()) == r
        with pytest.raises(SegError, match="Band 3 does not exist"):
            compute_radiometry(src, bands=(3, 2, 1))
        with pytest.raises(SegError, match="maximum"):
            compute_radiometry(src, value_range=(5, 5))


def test_sentinel2_gets_true_colour_bands(shared):
    with RasterSource(shared("sen1floods11_spain_7370579", "Spain_7370579_S2Hand.tif")) as src:
        assert src.count == 13 and suggest_bands(src) == (4, 3, 2)
        assert src.info().crs_name == "EPSG:4326"


def test_no_crs_is_refused(tmp_path):
    path = tmp_path / "nocrs.tif"
    with rasterio.open(path, "w", driver="GTiff", width=10, height=10, count=1, dtype="uint8", transform=from_origin(0, 10, 1, 1)) as dst:
        dst.write(np.zeros((1, 10, 10), np.uint8))
    with pytest.raises(CrsError, match="has no CRS"):
        RasterSource(str(path))


def test_rotated_geotransform_is_refused(raster_factory):
    path = raster_factory(np.zeros((1, 10, 10), np.uint8), transform=Affine(1, 0.2, 0, 0.1, -1, 10))
    with pytest.raises(RasterError, match="rotated"):
        RasterSource(path)


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00 this is not a tiff")
    with pytest.raises(RasterError, match="not a raster GDAL can read"):
        RasterSource(str(bad))
    with pytest.raises(RasterError, match="does not exist"):
        RasterSource(str(tmp_path / "missing.tif"))


def test_fingerprint_survives_copy_and_changes_with_content(raster_factory, tmp_path):
    import shutil

    data = np.random.default_rng(0).integers(0, 255, (3, 300, 300)).astype(np.uint8)
    a = raster_factory(data)
    copy = tmp_path / "moved" / "copy.tif"
    copy.parent.mkdir()
    shutil.copy(a, copy)
    data[:, 140:160, 140:160] += 1
    b = raster_factory(data)
    with RasterSource(a) as ra, RasterSource(str(copy)) as rc, RasterSource(b) as rb:
        assert ra.fingerprint() == rc.fingerprint() != rb.fingerprint()


def test_cog_and_vrt_read_like_the_geotiff_they_wrap(raster_factory, tmp_path):
    data = np.random.default_rng(2).integers(0, 1000, (2, 80, 90)).astype(np.uint16)
    tif = raster_factory(data)
    cog = raster_factory(data, name="c.tif", driver="COG")
    vrt = tmp_path / "v.vrt"
    with rasterio.open(tif) as ds:
        a, b, c, d, e, f = tuple(ds.transform)[:6]
        bands = "".join(
            f'<VRTRasterBand dataType="UInt16" band="{i}"><SimpleSource><SourceFilename relativeToVRT="0">{tif}</SourceFilename>'
            f"<SourceBand>{i}</SourceBand></SimpleSource></VRTRasterBand>" for i in (1, 2))
        vrt.write_text(f'<VRTDataset rasterXSize="90" rasterYSize="80"><SRS>{ds.crs.to_wkt()}</SRS>'
                       f"<GeoTransform>{c}, {a}, {b}, {f}, {d}, {e}</GeoTransform>{bands}</VRTDataset>")
    reads = []
    for path in (tif, cog, str(vrt)):
        with RasterSource(path) as src:
            assert src.transform == rasterio.open(tif).transform and src.crs.to_epsg() == 32633
            reads.append(src.read((2, 1), (5, 6, 40, 30))[0])
    np.testing.assert_array_equal(reads[0], reads[1])
    np.testing.assert_array_equal(reads[0], reads[2])


def test_gdals_block_cache_is_set_in_megabytes_not_bytes(raster_factory, monkeypatch):
    """rasterio hands an int straight to GDALSetCacheMax64 (bytes): 256 meant a 256-byte cache, so
    every read decoded its blocks again and rasterizing a ragged label took 100 s instead of 0.4."""
    from rasterio.env import get_gdal_config, set_gdal_config

    from seg_qgis_plugin.core.geo.raster import GDAL_CACHE_MB

    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    before = get_gdal_config("GDAL_CACHEMAX")
    try:
        RasterSource(raster_factory(np.ones((1, 8, 8), np.uint8))).close()
        assert get_gdal_config("GDAL_CACHEMAX") == GDAL_CACHE_MB * 1024 * 1024
    finally:
        set_gdal_config("GDAL_CACHEMAX", before)
