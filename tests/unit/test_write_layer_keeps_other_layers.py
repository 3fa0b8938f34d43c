"""A new layer written into an existing GeoPackage (qa findings, a repaired copy, unmatched objects)
joins the file through its own transactions: the file is never replaced, its other layers keep
every feature, and a layer that is already there is refused in one sentence with the file untouched."""
import hashlib
import os

import numpy as np
import pyogrio
import pyogrio.raw
import pytest
from shapely import to_wkb
from shapely.geometry import box

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.errors import OutputError
from seg_qgis_plugin.core.quality.table import read_table, write_layer

CRS = "EPSG:32633"


@pytest.fixture
def two_layers(tmp_path):
    """A GeoPackage holding the layers roads (2 features) and fields (1 feature)."""
    path = str(tmp_path / "project.gpkg")
    for layer, count in (("roads", 2), ("fields", 1)):
        geoms = np.array([to_wkb(box(500000 + 10 * k, 4649900, 500005 + 10 * k, 4649905)) for k in range(count)], dtype=object)
        pyogrio.raw.write(path, geoms, [np.array([f"{layer}{k}" for k in range(count)], dtype=object)], ["name"],
                          layer=layer, driver="GPKG", geometry_type="Polygon", crs=CRS)
    return path


def _contents(path):
    return {name: sorted(map(str, read_table(path, name).columns.get("name", []))) for name, _ in pyogrio.list_layers(path)}


def test_a_new_layer_keeps_the_other_layers_and_the_file(two_layers):
    before, inode = _contents(two_layers), os.stat(two_layers).st_ino
    write_layer(two_layers, [box(500000, 4649800, 500001, 4649801), None], {"kind": ["gap", "empty"], "value": [1.5, None]},
                CRS, layer="findings")
    after = _contents(two_layers)
    assert {k: after[k] for k in before} == before
    assert os.stat(two_layers).st_ino == inode  # the same file, never replaced
    findings = read_table(two_layers, "findings")
    assert findings.columns["kind"] == ["gap", "empty"] and findings.columns["value"] == [1.5, None]
    assert findings.geometries[1] is None and findings.geometries[0].area == pytest.approx(1.0)
    assert [n for n in os.listdir(os.path.dirname(two_layers)) if n.startswith(".seg-")] == []


def test_the_default_layer_name_keeps_the_other_layers_too(two_layers):
    write_layer(two_layers, [box(0, 0, 1, 1)], {"kind": ["x"]}, CRS)
    assert {name for name, _ in pyogrio.list_layers(two_layers)} == {"roads", "fields", "project"}
    assert _contents(two_layers)["roads"] == ["roads0", "roads1"]


def test_a_layer_already_there_is_refused_and_the_file_untouched(two_layers):
    digest = hashlib.sha256(open(two_layers, "rb").read()).hexdigest()
    with pytest.raises(OutputError, match="already exists"):
        write_layer(two_layers, [box(0, 0, 1, 1)], {"kind": ["x"]}, CRS, layer="roads")
    assert hashlib.sha256(open(two_layers, "rb").read()).hexdigest() == digest


def test_seg_qa_and_agreement_into_a_geopackage_with_two_layers_keep_them(two_layers, tmp_path, capsys):
    from seg_qgis_plugin.core.engine.labels import Label, attributes
    from seg_qgis_plugin.core.outputs.vectors import write_labels
    from shapely.geometry import MultiPolygon

    labels = str(tmp_path / "labels.gpkg")
    write_labels([Label(MultiPolygon([box(500000 + 8 * k, 4649900, 500010 + 8 * k, 4649910)]), CRS, attributes("pond"))
                  for k in range(3)], labels)
    before = _contents(two_layers)
    assert main(["qa", labels, "--out", two_layers, "--fix", str(tmp_path / "fixed.gpkg")]) in (0, 1)
    assert main(["qa", labels, "--out", str(tmp_path / "f.gpkg"), "--fix", f"{two_layers}"]) == 2  # its layer "project" is taken now
    after = _contents(two_layers)
    assert {k: after[k] for k in before} == before and "project" in after
