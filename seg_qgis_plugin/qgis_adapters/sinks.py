"""Core results -> Processing feature sinks: the Seg attribute schema as QgsFields, Labels and
tile records as QgsFeatures."""
from __future__ import annotations

from typing import Iterable, Sequence, Tuple

from qgis.core import Qgis, QgsFeature, QgsFeatureSink, QgsField, QgsFields, QgsWkbTypes

from ..core.engine.labels import FIELDS

# QGIS 3.38 and later type fields with QMetaType (QGIS 4 has no QVariant.Type at all); older ones with QVariant.
_META_TYPES = {"str": "QString", "float": "Double", "int": "Int", "int64": "LongLong"}
_VARIANT_TYPES = {"str": "String", "float": "Double", "int": "Int", "int64": "LongLong"}


def new_field(name: str, kind: str) -> QgsField:
    """A QgsField of `kind` ("str", "float", "int" or "int64") without a deprecated constructor."""
    if Qgis.versionInt() >= 33800:
        from qgis.PyQt.QtCore import QMetaType

        return QgsField(name, getattr(QMetaType.Type, _META_TYPES[kind]))
    from qgis.PyQt.QtCore import QVariant

    return QgsField(name, getattr(QVariant, _VARIANT_TYPES[kind]))


def make_fields(spec: Sequence[Tuple[str, str]]) -> QgsFields:
    """(name, "str" | "float" | "int" | "int64") pairs as QgsFields."""
    fields = QgsFields()
    for name, kind in spec:
        fields.append(new_field(name, kind))
    return fields


def label_fields() -> QgsFields:
    """The full Seg attribute schema (core.schema.FIELDS)."""
    return make_fields([(name, kind) for name, kind, _ in FIELDS])


def add_features(sink, fields: QgsFields, items: Iterable, multi: bool = True) -> int:
    """Add objects with `.geometry` (shapely) and `.attributes` (dict) to `sink`; polygons become
    multipolygons when `multi` (for MultiPolygon sinks). Returns the count."""
    from .geometry import from_shapely

    count = 0
    names = fields.names()
    for item in items:
        feature = QgsFeature(fields)
        geometry = from_shapely(item.geometry)
        if multi and geometry.type() == QgsWkbTypes.GeometryType.PolygonGeometry and not geometry.isMultipart():
            geometry.convertToMultiType()
        feature.setGeometry(geometry)
        feature.setAttributes([_value(item.attributes.get(n)) for n in names])
        sink.addFeature(feature, QgsFeatureSink.Flag.FastInsert)
        count += 1
    return count


def _value(v):
    if v is None:
        return None
    if hasattr(v, "item"):
        return v.item()
    return v


class FeatureSinkAdapter:
    """A Processing feature sink as a job's sink (core.jobs): `add(label)` writes one feature."""

    def __init__(self, sink, fields: QgsFields, multi: bool = True):
        self.sink, self.fields, self.multi = sink, fields, multi

    def add(self, label) -> None:
        add_features(self.sink, self.fields, [label], self.multi)
