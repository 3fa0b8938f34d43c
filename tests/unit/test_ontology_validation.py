"""A malformed ontology file of any kind (encoding, a field of the wrong type, a parent cycle) is
refused in one sentence, by the library and by `seg` (exit 2, no traceback, nothing written)."""
import json

import pytest

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.engine.ontology import Ontology, OntologyClass, load_ontology
from seg_qgis_plugin.core.errors import OntologyError

GOOD = {"name": "building", "code": 3, "color": "#e31a1c", "parent": None,
        "attributes": {"roof": {"type": "str", "values": ["flat", "pitched"]}}}
WRONG_VALUES = [None, True, 1.5, 7, "text", [1, 2], {"a": 1}]


def _wrong_records():
    """Every field of a class record, and of an attribute, given every value of a wrong type."""
    for key in ("name", "code", "color", "parent", "attributes"):
        for value in WRONG_VALUES:
            yield key, value, dict(GOOD, **{key: value})
    for key in ("type", "values", "name"):
        for value in WRONG_VALUES:
            yield f"attribute {key}", value, dict(GOOD, attributes=[{"name": "roof", "type": "str",
                                                                    "values": ["flat"], key: value}])
    yield "attribute value of another type", 1, dict(GOOD, attributes={"storeys": {"type": "int", "values": [1, "two"]}})
    yield "attribute values as a bare string", "flat", dict(GOOD, attributes={"roof": "flat"})


@pytest.mark.parametrize("what, value, record", list(_wrong_records()), ids=lambda v: repr(v)[:30])
def test_every_field_of_the_wrong_type_is_one_sentence_or_accepted(tmp_path, what, value, record):
    path = tmp_path / "o.json"
    path.write_text(json.dumps({"classes": [{"name": "roofless", "code": 9}, record]}))
    try:
        ontology = load_ontology(str(path))
    except OntologyError as exc:
        assert len(str(exc).splitlines()) == 1 and str(exc).endswith(".")
        return
    c = ontology.get(str(record["name"]))  # accepted only where the value makes sense
    assert isinstance(c.name, str) and isinstance(c.code, int) and c.color.startswith("#")
    assert c.parent is None or c.parent in ontology
    for attribute in c.attributes:
        assert attribute.type in ("str", "int", "float", "bool") and isinstance(attribute.values, tuple)


def test_attribute_values_given_as_a_number_are_refused(tmp_path):
    path = tmp_path / "o.json"
    path.write_text(json.dumps({"classes": [dict(GOOD, attributes={"roof": {"type": "str", "values": 3}})]}))
    with pytest.raises(OntologyError, match="values of the attribute 'roof'.*must be a list"):
        load_ontology(str(path))


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "cp1252"])
def test_an_ontology_not_in_utf8_is_one_sentence(tmp_path, capsys, encoding):
    path = tmp_path / "o.json"
    path.write_bytes(json.dumps({"classes": [{"name": "Gewässer", "code": 1}]}, ensure_ascii=False).encode(encoding))
    with pytest.raises(OntologyError, match="is not UTF-8 text"):
        load_ontology(str(path))
    code = main(["rasterize", str(tmp_path / "missing.gpkg"), "--like", str(tmp_path / "x.tif"),
                 "--out", str(tmp_path / "c.tif"), "--classes", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c.tif").exists()


def test_utf8_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "o.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"classes": [{"name": "Gewässer", "code": 1}]}).encode())
    assert load_ontology(str(path)).names == ["Gewässer"]


@pytest.mark.parametrize("parents, message", [
    ({"a": "a"}, "'a' is its own parent"),
    ({"a": "b", "b": "a"}, "form a cycle"),
    ({"a": "b", "b": "c", "c": "a", "d": "a"}, "form a cycle"),
])
def test_parent_cycles_are_refused(parents, message):
    classes = [OntologyClass(n, i + 1, parent=parents.get(n)) for i, n in enumerate("abcd")]
    with pytest.raises(OntologyError, match=message):
        Ontology(classes)
    with pytest.raises(OntologyError, match=message):
        Ontology.from_dict({"classes": [c.to_dict() for c in classes]})


def test_a_deep_hierarchy_without_cycles_is_accepted():
    classes = [OntologyClass(f"c{i}", i + 1, parent=f"c{i - 1}" if i else None) for i in range(50)]
    assert len(Ontology(classes)) == 50
