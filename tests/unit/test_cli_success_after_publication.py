"""A run with several outputs prints its success line only after they are published: at the moment
of publication nothing has been printed on stdout, and when publication fails the user sees the
error sentence and no success line."""
import os

import pytest
from shapely.geometry import MultiPolygon, box

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.errors import OutputError
from seg_qgis_plugin.core.outputs import publish
from seg_qgis_plugin.core.outputs.vectors import write_labels


def _labels(path):
    squares = [box(500000 + 8 * k, 4649900, 500010 + 8 * k, 4649910) for k in range(3)]
    rows = [Label(MultiPolygon([s]), "EPSG:32633", attributes("pond")) for s in squares]
    for row, date in zip(rows, ("2020-01-01", "2020-01-01", "2021-01-01")):
        row.attributes["date"] = date
    write_labels(rows, path)
    return path


def _runs(tmp_path):
    labels = _labels(str(tmp_path / "labels.gpkg"))
    return {
        "change": (["change", labels, "--out", str(tmp_path / "c.json"), "--csv", str(tmp_path / "c.csv")],
                   [str(tmp_path / "c.json"), str(tmp_path / "c.csv")]),
        "qa": (["qa", labels, "--out", str(tmp_path / "f.gpkg"), "--report", str(tmp_path / "qa.json")],
               [str(tmp_path / "f.gpkg"), str(tmp_path / "qa.json")]),
    }


@pytest.mark.parametrize("command", ["change", "qa"])
def test_nothing_is_printed_before_the_outputs_are_published(command, tmp_path, capsys, monkeypatch):
    argv, outputs = _runs(tmp_path)[command]
    real_publish = publish.Publication.publish
    seen = []

    def watched(self):
        seen.append(capsys.readouterr().out)
        real_publish(self)

    monkeypatch.setattr(publish.Publication, "publish", watched)
    code = main(argv)
    out = capsys.readouterr().out
    assert code in (0, 1) and seen == [""], seen
    assert "->" in out and all(os.path.exists(p) for p in outputs)


@pytest.mark.parametrize("command", ["change", "qa"])
def test_a_publication_that_fails_shows_no_success_line(command, tmp_path, capsys, monkeypatch):
    argv, outputs = _runs(tmp_path)[command]

    def fails(self):
        self.discard()
        raise OutputError(f"Cannot write {outputs[-1]}: Permission denied; no output of this run was written.")

    monkeypatch.setattr(publish.Publication, "publish", fails)
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2 and "Permission denied" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""
    assert [p for p in outputs if os.path.exists(p)] == []
