"""One request, one entry: `seg prelabel`, `seg_qgis_plugin.api.prelabel` and seg:prelabel on the
same raster and prompt layer give the same objects (geometry, class, tags, score), with shared
borders and a class raster from every door; `seg segment` and `api.segment`-by-request likewise."""
import numpy as np
import pytest
import rasterio
from shapely.geometry import Point, box

from seg_qgis_plugin.demo.scene import CRS, ORIGIN, write_scene

RES = 0.5
COMPARED = ("class", "score", "prompt_type", "status", "kind", "annotator")


def to_map(col, row):
    return ORIGIN[0] + col * RES, ORIGIN[1] - row * RES


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("parity") / "scene.tif")
    return path, write_scene(path, width=512, height=512)


def rows(path):
    """(WKB of the geometry, compared fields) per feature of a layer, sorted."""
    from seg_qgis_plugin.core.outputs.vectors import read_labels

    out = []
    for label in read_labels(str(path)):
        values = tuple(round(v, 6) if isinstance(v, float) else v for v in (label.attributes.get(k) for k in COMPARED))
        out.append((label.geometry.normalize().wkb_hex, values))
    return sorted(out)


def prompts_layer(vector_factory, truth):
    objects = [o for o in truth if o.class_name in ("building", "water")][:4]
    boxes = [box(*to_map(o.box[0], o.box[3]), *to_map(o.box[2], o.box[1])).buffer(2.0) for o in objects]
    return vector_factory("boxes", boxes, CRS, kind=[o.class_name for o in objects]), len(objects)


def test_prelabel_is_the_same_job_from_the_cli_the_api_and_processing(run_algorithm, vector_factory, scene, tmp_path):
    import seg_qgis_plugin.api as seg
    from seg_qgis_plugin.cli.main import main

    raster, truth = scene
    prompts, n = prompts_layer(vector_factory, truth)
    common = dict(tile=256, overlap=64)
    cli_out, cli_classes = str(tmp_path / "cli.gpkg"), str(tmp_path / "cli.tif")
    assert main(["prelabel", raster, "--prompts", prompts, "--class-field", "kind", "--backend", "classic", "--tile", "256",
                 "--overlap", "64", "--tag", "annotator=ci", "--no-overlap", "--out", cli_out,
                 "--class-raster", cli_classes]) == 0
    api_out, api_classes = str(tmp_path / "api.gpkg"), str(tmp_path / "api.tif")
    frame = seg.prelabel(raster, prompts=prompts, class_field="kind", backend="classic", tags={"annotator": "ci"},
                         no_overlap=True, out=api_out, class_raster=api_classes, **common)
    qgis_out, qgis_classes = str(tmp_path / "qgis.gpkg"), str(tmp_path / "qgis.tif")
    result = run_algorithm("seg:prelabel", {"INPUT": raster, "MODE": 0, "PROMPTS": prompts, "CLASS_FIELD": "kind",
                                            "BACKEND": 0, "TAGS": "annotator=ci", "TILE": 256, "OVERLAP": 64,
                                            "NO_OVERLAP": True, "OUTPUT": qgis_out, "CLASS_RASTER": qgis_classes})
    assert len(frame) == result["COUNT"] == n and frame.attrs["outputs"]["out"] == api_out
    assert rows(cli_out) == rows(api_out) == rows(qgis_out)
    assert {r[1][0] for r in rows(cli_out)} == {"building", "water"}
    with rasterio.open(cli_classes) as a, rasterio.open(api_classes) as b, rasterio.open(qgis_classes) as c:
        pixels = a.read(1)
        assert (pixels > 0).any() and np.array_equal(pixels, b.read(1)) and np.array_equal(pixels, c.read(1))


def test_a_bad_value_is_refused_by_the_request_in_one_sentence_from_every_door(run_algorithm, scene, tmp_path, capsys):
    import seg_qgis_plugin.api as seg
    from seg_qgis_plugin.cli.main import main
    from seg_qgis_plugin.core.errors import SettingError

    raster, _ = scene
    with pytest.raises(SettingError, match="snap works with no_overlap"):
        seg.prelabel(raster, backend="classic", snap=1.0, out=str(tmp_path / "a.gpkg"))
    assert main(["prelabel", raster, "--auto", "--snap", "1", "--out", str(tmp_path / "b.gpkg")]) == 2
    assert "--snap works with --no-overlap" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_segment_is_the_same_job_from_the_cli_and_the_api(scene, tmp_path):
    import seg_qgis_plugin.api as seg  # noqa: F401  (the request is the API's keyword arguments)
    from seg_qgis_plugin.cli.main import main
    from seg_qgis_plugin.core.jobs import segment

    raster, truth = scene
    pond = next(o for o in truth if o.name == "pond")
    x, y = to_map(*pond.point)
    cli_out = str(tmp_path / "cli.gpkg")
    assert main(["segment", raster, "--point", f"{x},{y}", "--class", "water", "--backend", "classic",
                 "--tag", "annotator=ci", "--out", cli_out]) == 0
    api_out = str(tmp_path / "api.gpkg")
    result = segment.run(segment.Request(raster, points=[(x, y)], class_name="water", backend="classic",
                                         tags={"annotator": "ci"}, out=api_out))
    assert result.count == 1 and rows(cli_out) == rows(api_out)
    assert Point(x, y).within(result.labels[0].geometry)
