"""One file by any name (output_checks), and a run's outputs appearing together or not at all
(publish), as the CLI meets them: a later output that fails leaves none of the earlier ones, and
outputs that existed keep their old content."""
import json
import os

import pytest
from shapely.geometry import MultiPolygon, box

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.errors import OutputError
from seg_qgis_plugin.core.outputs.atomic import write_json_atomic, write_text_atomic
from seg_qgis_plugin.core.outputs.output_checks import check_outputs, file_of, same_file
from seg_qgis_plugin.core.outputs.publish import outputs_together
from seg_qgis_plugin.core.outputs.vectors import write_labels


def test_layer_uris_and_data_source_strings_name_their_file(tmp_path):
    gpkg = str(tmp_path / "l.gpkg")
    for text in (f"{gpkg}|layername=roads", f"{gpkg}?table=roads", f"GPKG:{gpkg}:roads", f"ogr:dbname='{gpkg}' table=\"roads\" (geom)"):
        assert file_of(text) == gpkg, text
    for text in ("postgresql://u@h/db?table=x", "PG:dbname=db", "memory:", "TEMPORARY_OUTPUT", None, ""):
        assert file_of(text) is None, text


def test_same_file_by_dotdot_symlink_and_layer(tmp_path):
    (tmp_path / "a").mkdir()
    target = tmp_path / "a" / "l.gpkg"
    target.write_text("x")
    os.symlink(tmp_path / "a", tmp_path / "alias")
    assert same_file(str(target), str(tmp_path / "a" / ".." / "a" / "l.gpkg"))
    assert same_file(str(target), str(tmp_path / "alias" / "l.gpkg"))
    with pytest.raises(OutputError, match="is the input"):
        check_outputs({"--out": f"{tmp_path / 'alias' / 'l.gpkg'}|layername=findings"}, {"LABELS": str(target)})


def test_folder_outputs_may_not_hold_inputs_or_other_outputs(tmp_path):
    (tmp_path / "data").mkdir()
    raster = tmp_path / "data" / "r.tif"
    raster.write_text("x")
    with pytest.raises(OutputError, match="holds the input"):
        check_outputs({"--out": str(tmp_path)}, {"RASTER": str(raster)}, folders=["--out"])
    with pytest.raises(OutputError, match="lies in the output folder"):
        check_outputs({"--out": str(tmp_path / "chips"), "--report": str(tmp_path / "chips" / "r.json")}, {}, folders=["--out"])
    check_outputs({"--out": str(tmp_path / "chips" / "new")}, {"RASTER": str(raster)}, folders=["--out"])  # parents are made


def test_outputs_differing_only_in_case_are_one_file_somewhere(tmp_path):
    with pytest.raises(OutputError, match="name the same file"):
        check_outputs({"--out": str(tmp_path / "c.json"), "--csv": str(tmp_path / "C.json")})


def test_missing_folder_is_one_sentence(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        check_outputs({"--report": str(tmp_path / "nowhere" / "qa.json")})


def test_publication_is_all_or_nothing(tmp_path):
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.txt")
    write_json_atomic(a, {"old": True})
    with pytest.raises(RuntimeError):
        with outputs_together([a, b]):
            write_json_atomic(a, {"new": True})
            assert json.load(open(a)) == {"old": True}  # held back
            write_text_atomic(b, "b")
            raise RuntimeError("a later output failed")
    assert json.load(open(a)) == {"old": True} and not os.path.exists(b)
    with outputs_together([a, b]):
        write_json_atomic(a, {"new": True})
        write_text_atomic(b, "b")
    assert json.load(open(a)) == {"new": True} and open(b).read() == "b"
    assert [n for n in os.listdir(tmp_path) if n.startswith(".seg-")] == []


def test_a_move_failing_at_publication_undoes_the_others(tmp_path, monkeypatch):
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    write_json_atomic(a, {"old": "a"})
    real_replace = os.replace

    def replace(src, dst):
        if dst == b:
            raise PermissionError(13, "Permission denied")
        return real_replace(src, dst)

    with pytest.raises(OutputError, match="no output of this run was written"):
        with outputs_together([a, b]):
            write_json_atomic(a, {"new": "a"})
            write_json_atomic(b, {"new": "b"})
            monkeypatch.setattr(os, "replace", replace)
    monkeypatch.undo()
    assert json.load(open(a)) == {"old": "a"} and not os.path.exists(b)
    assert [n for n in os.listdir(tmp_path) if n.startswith(".seg-")] == []


def _labels(path):
    squares = [box(500000 + 8 * k, 4649900, 500010 + 8 * k, 4649910) for k in range(3)]  # overlapping: qa finds them
    rows = [Label(MultiPolygon([s]), "EPSG:32633", attributes("pond")) for s in squares]
    for row, date in zip(rows, ("2020-01-01", "2020-01-01", "2021-01-01")):
        row.attributes["date"] = date
    write_labels(rows, path)
    return path


def test_qa_html_with_a_bad_raster_leaves_no_output(tmp_path, capsys):
    labels = _labels(str(tmp_path / "labels.gpkg"))
    bad = tmp_path / "bad.tif"
    bad.write_text("not a raster")
    outs = {flag: str(tmp_path / name) for flag, name in (("--out", "f.gpkg"), ("--report", "qa.json"),
                                                          ("--fix", "fixed.gpkg"), ("--html", "qa.html"))}
    code = main(["qa", labels, "--raster", str(bad)] + [v for kv in outs.items() for v in kv])
    err = capsys.readouterr().err
    assert code == 2 and "seg: error: " in err and "Traceback" not in err
    assert [p for p in outs.values() if os.path.exists(p)] == []


@pytest.mark.parametrize("command", ["change", "drift"])
def test_a_png_that_cannot_be_written_leaves_no_other_output(command, tmp_path, capsys, monkeypatch):
    from seg_qgis_plugin.core.timeseries import pictures

    def denied(*args, **kwargs):
        raise OutputError(f"Cannot write {args[-1]}: Permission denied; nothing was written.")

    monkeypatch.setattr(pictures, f"{command}_png", denied)
    png = str(tmp_path / "p.png")
    if command == "change":
        labels = _labels(str(tmp_path / "labels.gpkg"))
        outs = [str(tmp_path / "c.json"), str(tmp_path / "c.csv"), str(tmp_path / "changes.gpkg")]
        argv = ["change", labels, "--out", outs[0], "--csv", outs[1], "--changes", outs[2], "--png", png]
    else:
        from seg_qgis_plugin.demo.scene import write_scene

        rasters = [str(tmp_path / f"2020-0{k}-01.tif") for k in (1, 2)]
        for k, path in enumerate(rasters):
            write_scene(path, 64, 64, seed=k)
        outs = [str(tmp_path / "drift.gpkg")]
        argv = ["drift", *rasters, "--out", outs[0], "--tile", "32", "--png", png]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Permission denied" in err and "Traceback" not in err
    assert [p for p in outs + [png] if os.path.exists(p)] == []
    assert [n for n in os.listdir(tmp_path) if n.startswith(".seg-")] == []
