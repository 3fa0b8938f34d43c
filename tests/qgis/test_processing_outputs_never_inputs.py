"""Every Seg algorithm, through processing.run: a destination (file, folder, feature sink, layer
destination) that names an input layer or file (by its path, a symlink, a relative path, a
GeoPackage layer URI of the same file, a folder holding it) is refused with one sentence, and
every input stays byte-identical; two destinations naming one file are refused; and a run that
fails after QGIS made a sink leaves no output behind. The parameters come from each algorithm's
own definitions, so a new algorithm or destination is covered without editing this test."""
import os

import pytest
from shapely.geometry import box

CRS = "EPSG:32633"
EXTENSIONS = {"sink": ".gpkg", "vectorDestination": ".gpkg", "rasterDestination": ".tif", "fileDestination": ".json"}
REFUSED = ("is the input", "holds the input")


@pytest.fixture
def inputs(tmp_path, vector_factory):
    from seg_qgis_plugin.demo.scene import write_scene

    folder = tmp_path / "in"
    folder.mkdir()
    paths = {"raster": str(folder / "ortho.tif"), "raster2": str(folder / "ortho2.tif"), "file": str(folder / "model.json")}
    write_scene(paths["raster"], 64, 64)
    write_scene(paths["raster2"], 64, 64, seed=1)
    with open(paths["file"], "w") as f:
        f.write("{}")
    square = box(500000, 4649990, 500005, 4649995)
    labels = vector_factory("labels", [square], CRS, geometry_type="Polygon", **{"class": ["pond"], "date": ["2020-01-01"]})
    paths["source"] = str(folder / "labels.gpkg")
    os.replace(labels, paths["source"])
    return paths


def layout(alg, inputs, out):
    """(parameters naming every input and a fresh path for every destination, {input: paths},
    {destination: kind})."""
    params, named, dests = {}, {}, {}
    for d in alg.parameterDefinitions():
        name, kind = d.name(), d.type()
        if d.isDestination():
            dests[name] = kind
            params[name] = str(out / (name.lower() + EXTENSIONS.get(kind, "")))
        elif kind in ("raster", "source", "vector", "layer"):
            params[name] = inputs["source" if kind in ("source", "vector") else "raster"]
            named[name] = [params[name]]
        elif kind == "multilayer":
            params[name] = [inputs["raster"], inputs["raster2"]]
            named[name] = params[name]
        elif kind == "file" and d.behavior() == d.Behavior.File:
            params[name] = os.path.join(os.path.dirname(inputs["file"]), f"{name.lower()}.{d.extension() or 'json'}")
            if not os.path.exists(params[name]):
                with open(params[name], "w") as f:
                    f.write("{}")
            named[name] = [params[name]]
    return params, named, dests


def ways(tmp_path, path, kind):
    links = tmp_path / "links"
    links.mkdir(exist_ok=True)
    link = links / os.path.basename(path)
    if not link.exists():
        os.symlink(path, link)
    found = [("plain", path), ("symlink", str(link)), ("relative", os.path.relpath(path, tmp_path / "work"))]
    if kind in ("sink", "vectorDestination") and path.endswith(".gpkg"):
        found.append(("layer uri", f"{path}|layername=other"))
    if kind == "folderDestination":
        found.append(("holding folder", os.path.dirname(path)))
    return found


def seg_algorithms(provider):
    return sorted(provider.algorithms(), key=lambda a: a.id())


def test_no_destination_may_name_an_input(tree_fingerprint, processing_registered, run_algorithm, inputs, tmp_path, monkeypatch):
    from qgis.core import QgsProcessingException

    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    layouts = [(alg, layout(alg, inputs, tmp_path)) for alg in seg_algorithms(processing_registered)]
    before = tree_fingerprint(tmp_path / "in")
    tried = set()
    for alg, (params, named, dests) in layouts:
        for dest, kind in dests.items():
            if dest in getattr(alg, "CACHE_FOLDERS", ()):
                continue
            for input_name, paths in named.items():
                for how, value in ways(tmp_path, paths[0], kind):
                    what = f"{alg.id()} {dest} = {input_name} ({how})"
                    with pytest.raises(QgsProcessingException) as refused:
                        run_algorithm(alg.id(), {**params, dest: value})
                    message = str(refused.value)
                    assert any(r in message for r in REFUSED) and "Traceback" not in message, (what, message)
                    assert tree_fingerprint(tmp_path / "in") == before, what
                    tried.add(alg.id())
    assert {"seg:rasterizelabels", "seg:labelqa", "seg:agreement", "seg:changereport", "seg:driftmap", "seg:assist",
            "seg:prelabel", "seg:propagatelabels", "seg:ranktiles", "seg:tileraster", "seg:exporttrainingdata"} <= tried


def test_two_destinations_may_not_name_one_file(processing_registered, run_algorithm, inputs, tmp_path):
    from qgis.core import QgsProcessingException

    for alg in seg_algorithms(processing_registered):
        params, _, dests = layout(alg, inputs, tmp_path / "out")
        os.makedirs(tmp_path / "out", exist_ok=True)
        names = [d for d in dests if d not in getattr(alg, "CACHE_FOLDERS", ())]
        for i, first in enumerate(names):
            for second in names[i + 1:]:
                same = str(tmp_path / "out" / "same.gpkg")
                with pytest.raises(QgsProcessingException, match="name the same file"):
                    run_algorithm(alg.id(), {**params, first: same, second: same})
                assert not os.path.exists(same), (alg.id(), first, second)


def test_tileraster_chips_named_like_the_index_is_refused(run_algorithm, inputs, tmp_path):
    from qgis.core import QgsProcessingException

    index = str(tmp_path / "tiles.gpkg")
    with pytest.raises(QgsProcessingException, match="name the same file"):
        run_algorithm("seg:tileraster", {"INPUT": inputs["raster"], "OUTPUT": index, "CHIPS": index})
    assert not os.path.exists(index)


def test_a_failure_after_the_sinks_leaves_no_output(run_algorithm, inputs, tmp_path, monkeypatch):
    from qgis.core import QgsProcessingException

    from seg_qgis_plugin.core.errors import OutputError
    from seg_qgis_plugin.core.quality import report_html

    def fail(*args, **kwargs):
        raise OutputError("Cannot write the HTML report: Permission denied; nothing was written.")

    monkeypatch.setattr(report_html, "qa_html", fail)
    out = {name: str(tmp_path / f"{name.lower()}{ext}") for name, ext in (("OUTPUT", ".gpkg"), ("FIXED", ".gpkg"),
                                                                           ("REPORT", ".json"), ("HTML", ".html"))}
    with pytest.raises(QgsProcessingException, match="Permission denied"):
        run_algorithm("seg:labelqa", {"INPUT": inputs["source"], **out})
    assert [p for p in out.values() if os.path.exists(p)] == []
    assert [n for n in os.listdir(tmp_path) if n.startswith(".seg-write-")] == []


def test_labelqa_report_goes_through_the_atomic_writer(run_algorithm, inputs, tmp_path):
    """REPORT was written with a plain open: now a full JSON appears whole, with a new file's mode."""
    import json

    report = str(tmp_path / "qa.json")
    run_algorithm("seg:labelqa", {"INPUT": inputs["source"], "OUTPUT": str(tmp_path / "f.gpkg"), "REPORT": report})
    assert "counts" in json.load(open(report))
