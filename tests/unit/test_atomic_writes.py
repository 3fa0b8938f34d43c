"""Atomic writes as a user meets them: concurrent appenders lose nothing, a GeoPackage is appended
to through SQLite transactions (never replaced), a full disk gives one sentence and leaves no file,
and bad clean-up sizes give one sentence instead of a GEOS traceback."""
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pyogrio
import pytest
from shapely.geometry import MultiPolygon, Point, box

from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.errors import OutputError, SettingError
from seg_qgis_plugin.core.outputs.atomic import atomic_folder, atomic_path, file_lock, write_json_atomic, write_text_atomic
from seg_qgis_plugin.core.outputs.vectors import LabelWriter, read_labels, write_labels

UTM = "EPSG:32633"

APPENDER = textwrap.dedent("""
    import sys
    from shapely.geometry import MultiPolygon, box
    from seg_qgis_plugin.core.engine.labels import Label, attributes
    from seg_qgis_plugin.core.outputs.vectors import write_labels

    out, who = sys.argv[1], int(sys.argv[2])
    for i in range(5):  # five separate appends, as five `seg segment --append` runs
        x = 500000 + who * 100 + i * 10
        write_labels([Label(MultiPolygon([box(x, 4649900, x + 5, 4649905)]), "EPSG:32633", attributes(f"writer{who}"))],
                     out, mode="append")
""")


def label(x=500010.0, cls="pond", size=5.0):
    return Label(MultiPolygon([box(x, 4649900, x + size, 4649900 + size)]), UTM, attributes(cls))


def debris(folder):
    return [name for name in os.listdir(folder) if name.startswith(".") or name.endswith(("-journal", "-wal", "-shm"))]


@pytest.mark.parametrize("ext, writers", [("gpkg", 4), ("geojson", 2)])
def test_processes_appending_at_once_lose_no_feature(tmp_path, ext, writers):
    out = str(tmp_path / f"labels.{ext}")
    write_labels([label(cls="seed")], out)
    inode = os.stat(out).st_ino
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, out, str(who)], stderr=subprocess.PIPE, text=True)
             for who in range(writers)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * writers, errors
    back = read_labels(out)
    assert len(back) == 1 + 5 * writers
    classes = [lab.attributes["class"] for lab in back]
    assert sorted(classes) == sorted(["seed"] + [f"writer{w}" for w in range(writers) for _ in range(5)])
    if ext == "gpkg":
        assert os.stat(out).st_ino == inode  # appended in place, never replaced
        assert pyogrio.read_info(out)["features"] == 21
        assert len(pyogrio.read_dataframe(out, bbox=(500100, 4649890, 500149, 4649910))) == 5  # spatial index kept up to date
    assert debris(tmp_path) == []


def test_a_geopackage_append_waits_for_another_writer_and_lands_in_the_open_file(tmp_path):
    out = str(tmp_path / "labels.gpkg")
    write_labels([label()], out)
    other = sqlite3.connect(out, isolation_level=None)  # e.g. QGIS saving its edits
    other.execute("BEGIN IMMEDIATE")
    done = []
    writer = threading.Thread(target=lambda: done.append(write_labels([label(500100, "building")], out, mode="append")))
    writer.start()
    time.sleep(1.5)
    assert writer.is_alive() and not done  # waiting for the lock, not failing
    other.execute("COMMIT")
    writer.join(60)
    assert done == [out]
    assert other.execute("SELECT count(*) FROM labels").fetchone()[0] == 2  # the connection opened before sees the rows
    ext = other.execute("SELECT min_x, max_x FROM gpkg_contents WHERE table_name = 'labels'").fetchone()
    assert ext == (500010.0, 500105.0)
    other.close()


def test_append_creates_a_new_layer_in_an_existing_geopackage_in_place(tmp_path):
    out = str(tmp_path / "project.gpkg")
    write_labels([label()], out, layer="ponds")
    inode = os.stat(out).st_ino
    write_labels([label(500200, "building"), label(500300, "building")], out, layer="buildings", mode="append")
    assert os.stat(out).st_ino == inode
    assert len(read_labels(out, "ponds")) == 1 and len(read_labels(out, "buildings")) == 2
    assert pyogrio.read_info(out, layer="buildings")["crs"] == UTM


def test_a_failed_geopackage_append_changes_nothing(tmp_path):
    out = str(tmp_path / "labels.gpkg")
    write_labels([label()], out)
    con = sqlite3.connect(out)
    con.execute("CREATE TRIGGER refuse BEFORE INSERT ON labels WHEN NEW.class = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END")
    con.commit()
    con.close()
    with pytest.raises(OutputError, match=r"refused; nothing was changed"):
        write_labels([label(500100, "good"), label(500200, "bad")], out, mode="append")
    assert [lab.attributes["class"] for lab in read_labels(out)] == ["pond"]  # not even the good one
    assert debris(tmp_path) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 200 KiB tmpfs: a full disk on demand (needs root and mount rights)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs to fill a disk ({(done.stderr or 'mount failed').strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def many_labels(n=2000):
    return [Label(MultiPolygon([Point(500000 + 3 * i, 4649900).buffer(1, 64)]), UTM, attributes("tree")) for i in range(n)]


@pytest.mark.parametrize("ext", ["gpkg", "geojson", "fgb", "shp"])
def test_a_full_disk_gives_one_sentence_and_leaves_no_file(tiny_disk, ext):
    out = str(tiny_disk / f"labels.{ext}")
    with pytest.raises(OutputError) as caught:
        write_labels(many_labels(), out)
    assert str(caught.value) == f"Cannot write {out}: No space left on device; nothing was written."
    assert os.listdir(tiny_disk) == []


def test_a_full_disk_during_an_append_leaves_the_file_as_it_was(tiny_disk):
    out = str(tiny_disk / "labels.gpkg")
    write_labels([label()], out)
    before = open(out, "rb").read()
    with pytest.raises(OutputError, match="No space left on device; nothing was changed"):
        write_labels(many_labels(), out, mode="append")
    assert open(out, "rb").read() == before
    assert os.listdir(tiny_disk) == ["labels.gpkg"]


def test_seg_prelabel_on_a_full_disk_says_so_in_one_sentence(tiny_disk, tmp_path, capsys):
    from seg_qgis_plugin.cli.main import main
    from seg_qgis_plugin.demo.scene import write_scene

    raster = str(tmp_path / "scene.tif")
    truth = write_scene(raster, 512, 512)
    import rasterio

    with rasterio.open(raster) as ds:
        transform = ds.transform
    boxes = []
    for obj in truth:
        (x0, y1), (x1, y0) = transform * obj.box[:2], transform * obj.box[2:]
        boxes.append(box(x0, y0, x1, y1))
    prompts = str(tmp_path / "prompts.gpkg")
    write_labels([Label(MultiPolygon([b]), UTM, attributes("object")) for b in boxes], prompts)
    with open(tiny_disk / "filler", "wb") as f:  # leave ~24 KiB: less than an empty GeoPackage
        f.write(b"\0" * (200 - 24) * 1024)
    code = main(["prelabel", raster, "--prompts", prompts, "--backend", "classic", "--tile", "512", "--overlap", "0",
                 "--out", str(tiny_disk / "pre.gpkg")])
    err = capsys.readouterr().err
    assert code == 2
    message = [line for line in err.splitlines() if line.startswith("seg: error:")]
    assert message == [f"seg: error: Cannot write {tiny_disk / 'pre.gpkg'}: No space left on device; nothing was written."], err
    assert "Traceback" not in err
    assert os.listdir(tiny_disk) == ["filler"]


def test_negative_simplify_is_one_sentence_in_the_cli_and_the_engine(tmp_path, capsys):
    from seg_qgis_plugin.cli.main import main
    from seg_qgis_plugin.core.batch.prelabel import PrelabelOptions
    from seg_qgis_plugin.core.batch.raster_job import RasterJob, prelabel_raster
    from seg_qgis_plugin.core.geo.vectorize import clean_polygons, mask_to_geometry
    from seg_qgis_plugin.core.models.classic import ClassicBackend

    with pytest.raises(SystemExit) as exited:
        main(["segment", "in.tif", "--point", "1,2", "--class", "x", "--out", str(tmp_path / "o.gpkg"), "--simplify", "-1"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.strip().endswith("argument --simplify: must be a number of at least 0, not -1")
    assert "Traceback" not in err and not os.path.exists(tmp_path / "o.gpkg")
    with pytest.raises(SettingError, match=r"^The simplification tolerance must be 0 or more \(map units\), not -1\.$"):
        clean_polygons([box(0, 0, 1, 1)], simplify=-1)
    from affine import Affine

    with pytest.raises(SettingError, match="minimum area"):
        mask_to_geometry(np.ones((4, 4), bool), Affine.identity(), min_area=float("nan"))
    with pytest.raises(SettingError, match="simplification tolerance"):
        prelabel_raster(RasterJob(str(tmp_path / "absent.tif")), ClassicBackend(), [], options=PrelabelOptions(simplify=-0.5))


def test_atomic_path_replaces_only_on_success_and_cleans_up_on_any_exception(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("old")
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with atomic_path(str(out)) as tmp:
                open(tmp, "w").write("half")
                raise exc
        assert out.read_text() == "old" and debris(tmp_path) == []
    with atomic_path(str(out), companions=(".aux.xml",)) as tmp:
        open(tmp, "w").write("new")
        open(tmp + ".aux.xml", "w").write("<PAMDataset/>")
    assert out.read_text() == "new" and (tmp_path / "a.txt.aux.xml").exists() and debris(tmp_path) == []
    with pytest.raises(OutputError, match="No space left on device; nothing was changed"):
        with atomic_path(str(out)):
            raise OSError(28, "No space left on device")


def test_atomic_folder_and_text_writers(tmp_path):
    target = tmp_path / "chips"
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(str(target)) as tmp:
            open(os.path.join(tmp, "one"), "w").write("1")
            raise KeyboardInterrupt
    assert not target.exists() and debris(tmp_path) == []
    with atomic_folder(str(target)) as tmp:
        open(os.path.join(tmp, "one"), "w").write("1")
    with pytest.raises(OutputError, match="not empty"):
        atomic_folder(str(target))  # checked when called, before any work
    with atomic_folder(str(target), overwrite=True) as tmp:
        open(os.path.join(tmp, "two"), "w").write("2")
    assert os.listdir(target) == ["two"] and debris(tmp_path) == []
    write_json_atomic(str(tmp_path / "sub" / "m.json"), {"a": [1, 2]})
    assert (tmp_path / "sub" / "m.json").read_text() == '{\n  "a": [\n    1,\n    2\n  ]\n}\n'
    write_text_atomic(str(tmp_path / "c.ini"), "[seg]\n")
    assert (tmp_path / "c.ini").read_text() == "[seg]\n" and debris(tmp_path) == [] and debris(tmp_path / "sub") == []


def test_file_lock_makes_writers_take_turns_and_leaves_no_lock_file(tmp_path):
    path = str(tmp_path / "labels.geojson")
    inside, overlaps = [], []

    def hold():
        with file_lock(path):
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(1)
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=hold) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [] and debris(tmp_path) == []
    with file_lock(path):
        with pytest.raises(OutputError, match="Another program has been writing"):
            with file_lock(path, timeout=0.2):
                pass


def test_a_label_writer_that_fails_midway_leaves_an_existing_layer_whole(tmp_path):
    out = str(tmp_path / "labels.gpkg")
    write_labels([label()], out)
    with pytest.raises(KeyboardInterrupt):
        with LabelWriter(out, mode="append", batch=2) as writer:
            for i in range(5):
                writer.add(label(500100 + 10 * i))
            raise KeyboardInterrupt
    assert len(read_labels(out)) == 1 and debris(tmp_path) == []


def test_seg_assist_on_a_full_disk_says_so_in_one_sentence(tiny_disk, tmp_path, capsys):
    """The assistant keeps its resume manifest beside --out: a full disk there is told about --out
    and leaves nothing behind."""
    pytest.importorskip("lightgbm", reason="the assistant needs lightgbm")
    from seg_qgis_plugin.cli.main import main
    from seg_qgis_plugin.demo.scene import pixel_square, write_scene

    raster = str(tmp_path / "scene.tif")
    truth = write_scene(raster, 256, 256, seed=3)
    labels = [Label(pixel_square(int(o.point[0]) - 6, int(o.point[1]) - 6), UTM, attributes(o.class_name)) for o in truth]
    labels += [Label(pixel_square(c, r, 8), UTM, attributes("background")) for c, r in ((2, 2), (246, 2), (2, 246))]
    write_labels(labels, str(tmp_path / "labels.gpkg"))
    with open(tiny_disk / "filler", "wb") as f:
        f.write(b"\0" * (200 - 24) * 1024)
    code = main(["assist", raster, "--labels", str(tmp_path / "labels.gpkg"), "--out", str(tiny_disk / "pre.gpkg")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    message = [line for line in err.splitlines() if line.startswith("seg: error:")]
    assert message == [f"seg: error: Cannot write {tiny_disk / 'pre.gpkg'}: No space left on device; nothing was written."], err
    assert os.listdir(tiny_disk) == ["filler"]
