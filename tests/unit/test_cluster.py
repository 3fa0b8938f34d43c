"""`--cluster local:2` gives the serial output feature for feature (core.scale)."""
from __future__ import annotations

import importlib.util
import os
import warnings

import pytest

from seg_qgis_plugin.core.batch.raster_job import RasterJob, prelabel_raster
from seg_qgis_plugin.core.errors import SegError, SettingError

_spec = importlib.util.spec_from_file_location("scale_helpers", os.path.join(os.path.dirname(__file__), "scale_helpers.py"))
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


@pytest.fixture
def bright_scene(tmp_path):
    return helpers.write_bright_scene(str(tmp_path / "bright.tif"))


def test_local_cluster_gives_the_serial_output_feature_for_feature(bright_scene, tmp_path):
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install distributed==2024.8.0)")
    from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels
    from seg_qgis_plugin.core.scale.cluster import ModelSpec
    from seg_qgis_plugin.core.batch.prelabel import PrelabelOptions
    from seg_qgis_plugin.core.scale.block_run import BlockRun
    from seg_qgis_plugin.core.scale.runs import prelabel_blocks

    Oracle = helpers.oracle_class()
    job = RasterJob(bright_scene, tile=256, overlap=64)
    options = PrelabelOptions(points_per_side=8, min_score=0.5, min_stability=0.5)
    serial = prelabel_raster(job, Oracle(), options=options)
    assert serial.count >= 8
    assert any(lab.attributes["prompt_count"] > 1 for lab in serial.labels)  # objects merged across tiles
    write_labels(serial.labels, str(tmp_path / "serial.gpkg"))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        distributed, _ = prelabel_blocks(job, Oracle(), options, BlockRun(ModelSpec.from_factory(Oracle), cluster="local:2", block_tiles=2))
    write_labels(distributed.labels, str(tmp_path / "cluster.gpkg"))
    a, b = read_labels(str(tmp_path / "serial.gpkg")), read_labels(str(tmp_path / "cluster.gpkg"))
    assert len(a) == len(b) == serial.count
    assert helpers.comparable(a) == helpers.comparable(b)


def test_bad_cluster_addresses_are_one_sentence():
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    from seg_qgis_plugin.core.scale.cluster import open_client, parse_cluster

    assert parse_cluster("local:3") == ("local", 3)
    assert parse_cluster("tcp://10.0.0.5:8786") == ("tcp", "tcp://10.0.0.5:8786")
    for bad in ("local:0", "local", "http://x:1", "10.0.0.5:8786"):
        with pytest.raises(SettingError, match="--cluster takes"):
            parse_cluster(bad)
    with pytest.raises(SegError, match="No Dask scheduler answers at tcp://127.0.0.1:1"):
        with open_client("tcp://127.0.0.1:1"):
            pass
