import os

import numpy as np
import pyogrio
import pytest
import rasterio
from shapely.geometry import MultiPolygon, box

from seg_qgis_plugin.core.errors import OutputError
from seg_qgis_plugin.core.outputs.label_rasters import RasterizeOptions, rasterize_labels, write_probability
from seg_qgis_plugin.core.engine.labels import FIELD_NAMES, Label, attributes
from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels
from seg_qgis_plugin.core.geo.vectorize import mask_to_geometry, reproject_geometry

UTM = "EPSG:32633"


def label(x0=500010, y0=4649900, size=20, cls="pond", **tags):
    return Label(MultiPolygon([box(x0, y0, x0 + size, y0 + size)]), UTM,
                 attributes(cls, tags, score=0.9, stability=0.8, prompt_type="point", prompt_count=1, model="sam-vit_b",
                            checkpoint_sha256="ab" * 32, source="ortho.tif", window="0,0,1024,1024@1", radiometry="{}"))


@pytest.mark.parametrize("ext", ["gpkg", "geojson", "fgb", "shp"])
def test_every_format_keeps_geometry_and_attributes_and_append_keeps_features(tmp_path, ext):
    out = str(tmp_path / f"labels.{ext}")
    write_labels([label(date="2024-06-01", season="summer")], out)
    write_labels([label(500100, cls="building")], out, mode="append")
    back = sorted(read_labels(out), key=lambda b: b.attributes["class"] != "pond")  # FlatGeobuf sorts spatially
    assert [b.attributes["class"] for b in back] == ["pond", "building"]
    first = back[0].attributes
    assert first["date"] == "2024-06-01" and first["season"] == "summer" and first["status"] == "prelabel"
    assert first["score"] == pytest.approx(0.9)
    assert back[0].geometry.equals(label().geometry)
    assert pyogrio.read_info(out)["crs"] == UTM
    if ext != "shp":
        assert set(FIELD_NAMES) <= set(first)
    assert [f for f in os.listdir(tmp_path) if f.startswith(".seg")] == []


def test_existing_output_is_refused_and_overwrite_replaces(tmp_path):
    out = str(tmp_path / "l.gpkg")
    write_labels([label()], out)
    with pytest.raises(OutputError, match="already exists"):
        write_labels([label()], out)
    write_labels([label(), label()], out, mode="overwrite")
    assert len(read_labels(out)) == 2


def test_append_reprojects_into_the_layer_crs_and_keeps_other_layers(tmp_path):
    out = str(tmp_path / "l.gpkg")
    write_labels([label()], out, layer="ponds")
    write_labels([label()], out, layer="other")
    wgs = Label(reproject_geometry(label(500200).geometry, UTM, "EPSG:4326"), "EPSG:4326", label().attributes)
    write_labels([wgs], out, layer="ponds", mode="append")
    back = read_labels(out, "ponds")
    assert len(back) == 2 and len(read_labels(out, "other")) == 1
    assert back[1].geometry.hausdorff_distance(label(500200).geometry) < 0.01


def test_append_to_a_foreign_layer_is_refused_without_loss(tmp_path):
    out = str(tmp_path / "foreign.gpkg")
    import pyogrio.raw
    from shapely import to_wkb

    pyogrio.raw.write(out, np.array([to_wkb(box(0, 0, 1, 1))], dtype=object), [np.array(["x"], dtype=object)], ["name"],
                      layer="foreign", driver="GPKG", geometry_type="Polygon", crs=UTM)
    before = open(out, "rb").read()
    with pytest.raises(OutputError, match="lacks the Seg fields"):
        write_labels([label()], out, layer="foreign", mode="append")
    assert open(out, "rb").read() == before


def test_unwritable_or_missing_folders(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        write_labels([label()], str(tmp_path / "nope" / "l.gpkg"))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root): permissions are not enforced")
        with pytest.raises(OutputError, match="not writable"):
            write_labels([label()], str(locked / "l.gpkg"))
    finally:
        locked.chmod(0o700)
    with pytest.raises(OutputError, match="Cannot tell the format"):
        write_labels([label()], str(tmp_path / "l.xyz"))


def test_a_failed_write_leaves_the_existing_file_untouched(tmp_path, monkeypatch):
    out = str(tmp_path / "l.gpkg")
    write_labels([label()], out)
    before = open(out, "rb").read()
    import seg_qgis_plugin.core.outputs.vectors as vio

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(vio, "_write", disk_full)
    with pytest.raises(OutputError, match="No space left on device; nothing was changed"):
        write_labels([label()], out, mode="append")
    assert open(out, "rb").read() == before
    assert [f for f in os.listdir(tmp_path) if f.startswith(".seg")] == []


def test_class_and_instance_rasters_on_the_grid_of_a_raster(tmp_path, raster_factory):
    like = raster_factory(np.zeros((1, 100, 120), np.uint8))
    labels = [label(500010, 4649960, 10, "pond"), label(500030, 4649960, 10, "building"), label(500034, 4649962, 2, "pond")]
    out = str(tmp_path / "classes.tif")
    assert rasterize_labels(labels, like, out) == {"building": 1, "pond": 2}
    inst = str(tmp_path / "instances.tif")
    rasterize_labels(labels, like, inst, RasterizeOptions(kind="instance"))
    with rasterio.open(out) as c, rasterio.open(inst) as i, rasterio.open(like) as g:
        assert c.transform == g.transform and c.shape == g.shape and c.crs == g.crs
        classes, ids = c.read(1), i.read(1)
    # 10 m squares at 0.5 m pixels: 20 x 20 pixels each; the last (small) pond lies on the building
    assert (classes == 2).sum() == 400 + 16 and (classes == 1).sum() == 400 - 16
    assert sorted(np.unique(ids)) == [0, 1, 2, 3] and (ids == 3).sum() == 16


def test_probability_raster_is_georeferenced(tmp_path, oracle, raster_factory):
    from seg_qgis_plugin.core.geo.prompts import Prompt
    from seg_qgis_plugin.core.geo.raster import RasterSource
    from seg_qgis_plugin.core.engine.segmenter import Segmenter
    from seg_qgis_plugin.core.geo.tiling import Tiling

    src = RasterSource(raster_factory(np.zeros((3, 200, 200), np.uint8)))
    result = Segmenter(src, oracle("box"), tiling=Tiling(128, 32)).segment(Prompt(UTM, box=(500010, 4649950, 500020, 4649960)))
    out = write_probability(result, str(tmp_path / "p.tif"))
    with rasterio.open(out) as p:
        data = p.read(1)
        assert p.crs.to_epsg() == 32633 and p.transform == result.transform and data.dtype == np.float32
    geometry = mask_to_geometry(data > 0.5, result.transform)
    assert geometry.equals(box(500010, 4649950, 500020, 4649960))


def test_label_writer_streams_batches_and_publishes_only_when_whole(tmp_path):
    from seg_qgis_plugin.core.outputs.vectors import LabelWriter

    out = tmp_path / "stream.gpkg"
    with LabelWriter(str(out), batch=2) as writer:
        for i in range(5):
            writer.add(label(500000 + 30 * i))
        assert not out.exists() and writer.count == 5 and len(writer._pending) == 1
    assert len(read_labels(str(out))) == 5
    with pytest.raises(RuntimeError):
        with LabelWriter(str(out), mode="append", batch=2) as writer:
            for i in range(3):
                writer.add(label())
            raise RuntimeError("the job failed halfway")
    assert len(read_labels(str(out))) == 5
    assert [f for f in os.listdir(tmp_path) if f.startswith(".seg")] == []
