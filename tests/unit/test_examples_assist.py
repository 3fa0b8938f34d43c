"""examples/flood_extent_assist.py runs as a user runs it and maps the Sen1Floods11 flood from a few
accepted squares (../shared/data)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_flood_example_maps_the_water_from_a_few_squares(shared, tmp_path):
    pytest.importorskip("lightgbm", reason="the assistant needs lightgbm")
    folder = shared("sen1floods11_spain_7370579")
    shared("sen1floods11_spain_7370579", "Spain_7370579_S2Hand.tif")
    shared("sen1floods11_spain_7370579", "Spain_7370579_LabelHand.tif")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "flood_extent_assist.py"), "--data", folder,
                           "--out", str(tmp_path / "flood")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "learned from 12 squares (6 water, 6 background)"
    assert int(lines[1].split()[0]) > 0 and "water polygons" in lines[1]
    assert lines[-1].startswith("IoU with the hand label: ") and float(lines[-1].split()[-1]) > 0.6, done.stdout
    for name in ("flood.gpkg", "probability.tif", "model.json"):
        assert (tmp_path / "flood" / name).exists()

    import seg_qgis_plugin.api as seg

    flood = seg.read_labels(str(tmp_path / "flood" / "flood.gpkg"))
    assert set(flood["class"]) == {"water"} and set(flood["status"]) == {"prelabel"}


def test_the_flood_example_says_where_the_data_is_missing(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "flood_extent_assist.py"), "--data", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "give --data" in done.stderr
