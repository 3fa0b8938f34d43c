"""The Python API writes no output onto an input: every api function that writes a file checks it
against the files it reads (core.outputs.output_checks) before any work, by any path, with one
sentence, and the input stays byte-identical."""
import hashlib
import inspect
import os

import pytest
from shapely.geometry import MultiPolygon, box

import seg_qgis_plugin.api as seg
from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.errors import OutputError
from seg_qgis_plugin.core.outputs.vectors import write_labels

CRS = "EPSG:32633"
WRITERS = {"write_labels": "path", "Session": "cache", "open": "cache"}  # api callables that write -> their output argument
READERS = {"read_labels"}  # a path argument it only reads


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def labels(tmp_path):
    path = str(tmp_path / "labels.gpkg")
    write_labels([Label(MultiPolygon([box(500000 + 8 * k, 4649900, 500005 + 8 * k, 4649905)]), CRS, attributes("pond"))
                  for k in range(3)], path)
    return path


@pytest.fixture
def raster(tmp_path):
    from seg_qgis_plugin.demo.scene import write_scene

    (tmp_path / "data").mkdir()
    path = str(tmp_path / "data" / "ortho.tif")
    write_scene(path, 64, 64)
    return path


def names_for(path, tmp_path):
    links = tmp_path / "links"
    links.mkdir(exist_ok=True)
    link = links / os.path.basename(path)
    if not link.exists():
        os.symlink(path, link)
    return [path, str(link), os.path.relpath(path)]


def test_every_writing_api_callable_is_known_here():
    """A new api function with a path argument must be named here as a writer (and checked) or a reader;
    a job function's outputs are checked by its request (core.jobs.base.check_request_outputs), so
    every path-like field must be declared among the request's OUTPUTS or INPUTS."""
    from seg_qgis_plugin.api_jobs import JobFunction

    output_words = ("path", "out", "output", "dest", "png", "csv", "html", "probability", "uncertainty", "class_raster")
    for name in seg.__all__:
        obj = getattr(seg, name)
        params = inspect.signature(obj).parameters
        if isinstance(obj, JobFunction):
            request = obj._module().Request
            declared = set(request.OUTPUTS) | set(request.INPUTS)  # an uncertainty raster may be either
            assert {p for p in params if p in output_words} <= declared and "out" not in request.INPUTS, name
        elif any(p in output_words + ("cache",) for p in params):
            assert name in WRITERS or name in READERS, name


def test_a_job_function_never_writes_onto_its_inputs_by_any_name(raster, labels, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = digest(raster), digest(labels)
    for target in names_for(raster, tmp_path):
        with pytest.raises(OutputError, match="is the input"):
            seg.prelabel(raster, backend="classic", out=target)
        with pytest.raises(OutputError, match="is the input"):
            seg.prelabel(raster, backend="classic", class_raster=target)
        with pytest.raises(OutputError, match="is the input"):
            seg.rasterize(labels, raster, target, overwrite=True)
    for target in names_for(labels, tmp_path):
        with pytest.raises(OutputError, match="is the input"):
            seg.qa(labels, out=target, overwrite=True)
    assert (digest(raster), digest(labels)) == before


def test_write_labels_never_writes_onto_the_file_the_table_came_from(labels, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = digest(labels)
    table = seg.read_labels(labels)
    for frame in (table, table[table["class"] == "pond"]):  # a filtered copy came from the file too
        for target in names_for(labels, tmp_path):
            with pytest.raises(OutputError, match="is the input"):
                seg.write_labels(frame, target, append=True)
            assert digest(labels) == before, target
    out = seg.write_labels(table, str(tmp_path / "copy.gpkg"))  # another file is fine
    assert len(seg.read_labels(out)) == 3


def test_a_session_cache_never_names_or_holds_the_raster(raster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = digest(raster)
    for cache, refused in [(name, "is the input") for name in names_for(raster, tmp_path)] + [(os.path.dirname(raster), "holds the input")]:
        with pytest.raises(OutputError, match=refused):
            seg.open(raster, backend="classic", cache=cache)
        assert digest(raster) == before, cache
    assert os.listdir(os.path.dirname(raster)) == ["ortho.tif"]


def test_a_session_cache_never_holds_the_ontology(raster, tmp_path):
    ontology = tmp_path / "cache" / "classes.json"
    ontology.parent.mkdir()
    ontology.write_text('{"classes": [{"name": "pond", "code": 1}]}')
    before = digest(str(ontology))
    with pytest.raises(OutputError, match="holds the input classes"):
        seg.open(raster, backend="classic", cache=str(tmp_path / "cache"), classes=str(ontology))
    assert digest(str(ontology)) == before
