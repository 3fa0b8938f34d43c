"""Every `seg` command that writes: for each output flag, naming any input (by its path, by a
symlink, by a relative path, by a folder that holds it) is refused with one sentence and exit 2,
even with --overwrite, and every input stays byte-identical; two outputs naming one file are
refused too. Whether a command declares all its output flags is checked from the parser itself,
so a new command or flag cannot slip past."""
import argparse
import os

import pytest

from seg_qgis_plugin.cli.main import build_parser, main

OUTPUT_DESTS = {"out", "report", "fix", "html", "csv", "png", "changes", "unmatched", "probability", "uncertainty",
                "class_raster", "save_model"}


def commands():
    """(id, argv, {input name: path key}, [output flags], {folder output flags}, overwrite?) with
    inputs named by keys of the `inputs` fixture."""
    return [
        ("segment", ["segment", "R", "--point", "0,0", "--class", "x", "--classes", "O"], {"RASTER": "R", "--classes": "O"},
         ["--out", "--probability", "--class-raster"], set(), True),
        ("polygonize", ["polygonize", "R"], {"MASK": "R"}, ["--out"], set(), True),
        ("rasterize", ["rasterize", "L", "--like", "R"], {"LABELS": "L", "--like": "R"}, ["--out"], set(), True),
        ("prelabel", ["prelabel", "R", "--prompts", "P"], {"RASTER": "R", "--prompts": "P"}, ["--out"], set(), True),
        ("export-training", ["export-training", "R", "--labels", "L"], {"RASTER": "R", "--labels": "L"}, ["--out"], {"--out"}, True),
        ("qa", ["qa", "L", "--raster", "R"], {"LABELS": "L", "--raster": "R"}, ["--out", "--report", "--fix", "--html"], set(), True),
        ("agreement", ["agreement", "L", "L2", "--raster", "R"], {"A": "L", "B": "L2", "--raster": "R"},
         ["--out", "--unmatched", "--html"], set(), True),
        ("propagate", ["propagate", "L", "R", "R2"], {"LABELS": "L", "RASTERS": "R2"}, ["--out"], set(), True),
        ("change", ["change", "L"], {"LABELS": "L"}, ["--out", "--csv", "--changes", "--png"], set(), True),
        ("drift", ["drift", "R", "R2"], {"RASTERS": "R"}, ["--out", "--png"], set(), True),
        ("assist", ["assist", "R", "--labels", "L"], {"RASTER": "R", "--labels": "L"},
         ["--out", "--probability", "--uncertainty", "--save-model"], set(), True),
        ("assist-model", ["assist", "R", "--model", "M"], {"--model": "M"}, ["--out", "--uncertainty"], set(), True),
        ("rank-tiles", ["rank-tiles", "R", "--uncertainty", "U", "--labels", "L"],
         {"RASTER": "R", "--uncertainty": "U", "--labels": "L"}, ["--out"], set(), True),
        ("rank-tiles-model", ["rank-tiles", "R", "--model", "M"], {"--model": "M"}, ["--out"], set(), True),
        ("export-onnx", ["models", "export-onnx", "C", "--folder", "MODELS"], {"MODEL": "C"}, ["--out"], {"--out"}, False),
        ("demo", ["demo", "--checkpoint", "C"], {"--checkpoint": "C"}, ["--out"], {"--out"}, False),
    ]


@pytest.fixture
def inputs(tmp_path):
    """Small real inputs in tmp/in (a raster, label layers, a model file, an ontology, a checkpoint)."""
    from shapely.geometry import MultiPolygon, box

    from seg_qgis_plugin.core.engine.labels import Label, attributes
    from seg_qgis_plugin.core.outputs.vectors import write_labels
    from seg_qgis_plugin.demo.scene import write_scene

    folder = tmp_path / "in"
    folder.mkdir()
    paths = {k: str(folder / name) for k, name in (("R", "ortho.tif"), ("R2", "ortho2.tif"), ("U", "unc.tif"),
                                                     ("L", "labels.gpkg"), ("L2", "other.gpkg"), ("P", "prompts.gpkg"),
                                                     ("M", "model.json"), ("O", "classes.json"), ("C", "tiny.pth"))}
    write_scene(paths["R"], 64, 64)
    for key in ("R2", "U"):
        write_scene(paths[key], 64, 64, seed=1)
    for key in ("L", "L2", "P"):
        write_labels([Label(MultiPolygon([box(500000, 4649990, 500005, 4649995)]), "EPSG:32633", attributes("pond"))], paths[key])
    for key, text in (("M", '{"format": "seg-assist"}'), ("O", '{"classes": [{"name": "pond", "code": 1}]}'), ("C", "weights")):
        with open(paths[key], "w") as f:
            f.write(text)
    paths["MODELS"] = str(tmp_path / "models")
    return paths


def forms(tmp_path, path, folder_output):
    """The ways a user might name `path` again: itself, a symlink to it, a relative path, and for a
    folder output the folder that holds it."""
    links = tmp_path / "links"
    links.mkdir(exist_ok=True)
    link = links / os.path.basename(path)
    if not link.exists():
        os.symlink(path, link)
    here = tmp_path / "work"
    here.mkdir(exist_ok=True)
    named = [("plain", path), ("symlink", str(link)), ("relative", os.path.relpath(path, here))]
    if folder_output:
        named.append(("holding folder", os.path.dirname(path)))
    return here, named


def run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence(err):
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return len(lines) == 1 and lines[0].startswith("seg: error: ") and "Traceback" not in err


@pytest.mark.parametrize("case", commands(), ids=[c[0] for c in commands()])
def test_no_output_may_name_an_input(tree_fingerprint, case, inputs, tmp_path, capsys, monkeypatch):
    _, argv, named_inputs, outputs, folders, overwrite = case
    argv = [inputs.get(token, token) for token in argv]
    before = tree_fingerprint(tmp_path / "in")
    tried = 0
    for flag in outputs:
        for input_name, key in named_inputs.items():
            here, ways = forms(tmp_path, inputs[key], flag in folders)
            monkeypatch.chdir(here)
            required = ["--out", str(tmp_path / "fresh.out")] if flag != "--out" and "--out" in outputs else []
            for how, value in ways:
                code, _, err = run(capsys, argv + required + [flag, value] + (["--overwrite"] if overwrite else []))
                what = f"{flag} = {input_name} ({how})"
                assert code == 2, what
                assert one_sentence(err), (what, err)
                assert ("is the input" in err or "holds the input" in err), (what, err)
                assert tree_fingerprint(tmp_path / "in") == before, what
                tried += 1
    assert tried >= len(outputs) * 3


@pytest.mark.parametrize("case", [c for c in commands() if len(c[3]) > 1], ids=[c[0] for c in commands() if len(c[3]) > 1])
def test_two_outputs_may_not_name_one_file(case, inputs, tmp_path, capsys):
    _, argv, _, outputs, _, overwrite = case
    argv = [inputs.get(token, token) for token in argv]
    target = str(tmp_path / "same.out")
    for i, first in enumerate(outputs):
        for second in outputs[i + 1:]:
            rest = [o for o in outputs if o not in (first, second)]
            extra = [v for k, o in enumerate(rest) for v in (o, str(tmp_path / f"other{k}.out"))]
            code, _, err = run(capsys, argv + [first, target, second, target] + extra + (["--overwrite"] if overwrite else []))
            assert code == 2 and one_sentence(err) and "name the same file" in err, (first, second, err)
            assert not os.path.exists(target)


def test_change_refuses_json_and_csv_in_one_file(inputs, tmp_path, capsys):
    report = tmp_path / "c.json"
    report.write_text("{}")
    code, _, err = run(capsys, ["change", inputs["L"], "--out", str(report), "--csv", str(report), "--overwrite"])
    assert code == 2 and "name the same file" in err and report.read_text() == "{}"


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner_name, inner in _subparsers(sub):
                    yield f"{name} {inner_name}", inner


def test_every_command_declares_its_outputs():
    """An output flag a command forgot to declare would escape the checks."""
    for name, sub in _subparsers(build_parser()):
        dests = {a.dest for a in sub._actions}
        declared = {dest for _, dest in (sub.get_default("seg_outputs") or ()) + (sub.get_default("seg_inputs") or ())}
        assert dests & OUTPUT_DESTS <= declared, name  # rank-tiles --uncertainty is an input


def test_help_states_the_exit_codes(capsys):
    for argv, text in ((["qa", "--help"], "1 there are findings"), (["--help"], "exit codes: 0 done, 2 a mistake")):
        with pytest.raises(SystemExit):
            main(argv)
        assert text in " ".join(capsys.readouterr().out.split()), argv
