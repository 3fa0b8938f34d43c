"""The quality and time-series examples run as a user runs them (the project's Python, a fresh
process) on the real data in ../shared/data, and what they write makes sense: the NAIP water
bodies are tracked through every date, the change rows and drift tiles cover every pair of dates;
the two annotators' QA findings and agreement figures are there and plausible."""
import json
import os
import subprocess
import sys

import pyogrio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = os.path.join(ROOT, ".venv", "bin", "python")


def run_example(name, *args):
    python = PYTHON if os.path.exists(PYTHON) else sys.executable
    done = subprocess.run([python, os.path.join(ROOT, "examples", name), *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def load(path):
    with open(path) as f:
        return json.load(f)


def test_naip_time_series_tracks_changes_and_drift(shared, tmp_path):
    data = shared("naip_prairie_timeseries")
    printed = run_example("naip_time_series.py", "--data", data, "--out", str(tmp_path))
    dates = ["2009-08-18", "2015-09-26", "2020-08-31"]
    tracks = pyogrio.read_dataframe(str(tmp_path / "water_through_time.gpkg"))
    assert sorted(tracks["track_id"].unique()) == [1, 2, 3]
    assert all(sorted(group["date"]) == dates for _, group in tracks.groupby("track_id"))
    assert (tracks["status"] == "kept").sum() >= 4  # most water bodies are found on both later dates
    report = load(tmp_path / "change.json")
    assert [(r["date_from"], r["date_to"]) for r in report["rows"]] == list(zip(dates, dates[1:]))
    assert all(r["area_from"] > 0 and r["iou"] is not None for r in report["rows"][:1])
    tiles = pyogrio.read_dataframe(str(tmp_path / "drift.gpkg"))
    assert len(tiles) == 2 * 48 and tiles["drift"].between(0, 1).all()
    for name in ("change.csv", "changes.gpkg", "drift.png"):
        assert os.path.getsize(tmp_path / name) > 0
    assert "3 water bodies on 20090818" in printed and "drift 2015-09-26 -> 2020-08-31" in printed


def test_qa_two_annotators_finds_and_measures(shared, tmp_path):
    data = shared("spacenet_atlanta_buildings")
    printed = run_example("qa_two_annotators.py", "--data", data, "--out", str(tmp_path))
    a, b = (pyogrio.read_dataframe(str(tmp_path / f"annotator_{who}.gpkg")) for who in ("a", "b"))
    assert len(a) == 43 and len(b) < len(a)
    qa_b = load(tmp_path / "qa_b.json")
    assert qa_b["labels"] == len(b) and qa_b["counts"]["overlap"] >= 2  # B drew two outlines twice
    assert pyogrio.read_info(str(tmp_path / "qa_b.gpkg"))["features"] == len(qa_b["findings"])
    figures = load(tmp_path / "agreement.json")
    assert figures["objects_a"] == 43 and figures["objects_b"] == len(b)
    assert 0.7 < figures["f1"] < 1 and 0.6 < figures["mean_iou"] < 1 and 0.5 < figures["kappa"] < 1
    assert set(figures["classes"]) == {"building", "shed"}
    unmatched = pyogrio.read_dataframe(str(tmp_path / "unmatched.gpkg"))
    assert len(unmatched) == (43 - figures["matched"]) + (len(b) - figures["matched"])
    with open(tmp_path / "agreement.html") as page:
        assert page.read().startswith("<!DOCTYPE html>")
    assert "annotator B:" in printed and "overall" in printed
