"""The layer accepted masks go to: created with the Seg schema, written feature by feature, styled
by class.

Each accepted feature goes straight to the data provider, so it is on disk (committed to the
GeoPackage, or inserted and committed in a PostGIS label table: gui/postgis_layer.py) the moment
it is accepted: a crash of QGIS loses no accepted work. The write is also
pushed on the layer's own undo stack as an `AddLabelCommand`, so the layer's undo (the Undo panel,
or `layer.undoStack().undo()`) deletes the feature from the file again, and redo restores it.
(Adding through the layer's edit buffer and committing would clear that undo stack.)
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

from qgis.core import (QgsCategorizedSymbolRenderer, QgsCoordinateTransform, QgsDataProvider, QgsFeature, QgsFillSymbol, QgsProject,
                       QgsRendererCategory, QgsVectorDataProvider, QgsVectorFileWriter, QgsVectorLayer, QgsWkbTypes)
from qgis.PyQt.QtGui import QColor

from .qt_compat import QUndoCommand
from ..core.errors import OutputError
from ..core.engine.labels import FIELD_NAMES, Label
from ..core.outputs.postgis import is_postgis
from ..qgis_adapters.crs import crs_from_core
from ..qgis_adapters.geometry import from_shapely
from ..qgis_adapters.sinks import label_fields
from .classes import LabelClass

LEGACY_LAYER_NAME = "seg_labels"  # what earlier versions called every layer; still opened when found


def layer_name_for(path: str) -> str:
    """The layer name for a new label file: the file's name without extension ("ponds.gpkg" -> "ponds")."""
    return os.path.splitext(os.path.basename(path))[0] or LEGACY_LAYER_NAME


def _existing_layer_names(path: str) -> List[str]:
    layer = QgsVectorLayer(path, "probe", "ogr")
    if not layer.isValid():
        return []
    separator = QgsDataProvider.sublayerSeparator()
    return [entry.split(separator)[1] for entry in layer.dataProvider().subLayers() if separator in entry]


def create_label_layer(path: str, crs, layer_name: Optional[str] = None) -> QgsVectorLayer:
    """A GeoPackage polygon layer with the Seg attribute schema at `path` (a QgsCoordinateReferenceSystem
    for `crs`), named after the file unless `layer_name` is given (in the file and in the Layers
    panel). An existing Seg layer in that file (of that name, or an earlier version's "seg_labels")
    is opened, not replaced: appending keeps every feature already there.

    A `postgresql://...?table=NAME` URL or `PG:` string for `path` opens that PostGIS table (made
    empty, in `crs`, when it does not exist): gui/postgis_layer.py."""
    if is_postgis(path):
        from .postgis_layer import postgis_label_layer

        return postgis_label_layer(path, crs, layer_name)
    path = os.path.abspath(path)
    if not path.lower().endswith(".gpkg"):
        path += ".gpkg"
    layer_name = layer_name or layer_name_for(path)
    if os.path.exists(path):
        names = _existing_layer_names(path)
        for name in (layer_name, LEGACY_LAYER_NAME):
            if name in names:
                existing = QgsVectorLayer(f"{path}|layername={name}", layer_name, "ogr")
                if existing.isValid():
                    check_label_layer(existing)
                    return existing
    uri = f"{path}|layername={layer_name}"
    if not os.path.isdir(os.path.dirname(path)):
        raise OutputError(f"The folder {os.path.dirname(path)} does not exist.")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = layer_name
    if os.path.exists(path):
        options.actionOnExistingFile = QgsVectorFileWriter.ActionOnExistingFile.CreateOrOverwriteLayer
    writer = QgsVectorFileWriter.create(path, label_fields(), QgsWkbTypes.Type.MultiPolygon, crs,
                                        QgsProject.instance().transformContext(), options)
    failed = writer.hasError() != QgsVectorFileWriter.WriterError.NoError
    message = writer.errorMessage()
    del writer  # closes the file
    if failed:
        raise OutputError(f"Cannot create {path}: {message}")
    layer = QgsVectorLayer(uri, layer_name, "ogr")
    if not layer.isValid():
        raise OutputError(f"{path} was created but QGIS cannot open it.")
    return layer


def check_label_layer(layer: QgsVectorLayer) -> None:
    """Refuse layers that cannot take polygons or cannot add features, with one sentence."""
    if layer is None or not layer.isValid():
        raise OutputError("Choose a target layer for the labels, or create a new GeoPackage.")
    if layer.geometryType() != QgsWkbTypes.GeometryType.PolygonGeometry:
        raise OutputError(f"The layer {layer.name()!r} does not hold polygons; choose a polygon layer or create a new GeoPackage.")
    if not layer.dataProvider().capabilities() & QgsVectorDataProvider.Capability.AddFeatures:
        raise OutputError(f"The layer {layer.name()!r} is read-only; choose another layer or create a new GeoPackage.")


def label_feature(layer: QgsVectorLayer, label: Label, project=None) -> QgsFeature:
    """`label` as a feature of `layer`: geometry reprojected from the label's CRS to the layer's,
    multi-part where the layer is; attributes set for every Seg field the layer has (others stay
    NULL), and `version` 1 where the layer has that column (a new row of a PostGIS label table)."""
    project = project or QgsProject.instance()
    geometry = from_shapely(label.geometry)
    source_crs = crs_from_core(label.crs)
    if source_crs != layer.crs():
        geometry.transform(QgsCoordinateTransform(source_crs, layer.crs(), project))
    if QgsWkbTypes.isMultiType(layer.wkbType()):
        geometry.convertToMultiType()
    else:
        geometry.convertToSingleType()
    feature = QgsFeature(layer.fields())
    feature.setGeometry(geometry)
    for name in FIELD_NAMES:
        index = layer.fields().lookupField(name)
        value = label.attributes.get(name)
        if index >= 0 and value is not None:
            feature.setAttribute(index, value.item() if hasattr(value, "item") else value)
    version = layer.fields().lookupField("version")
    if version >= 0 and label.attributes.get("version") is None:
        feature.setAttribute(version, 1)
    return feature


class AddLabelCommand(QUndoCommand):
    """Adds one feature through the data provider (on disk at once); undo deletes it from disk."""

    def __init__(self, layer: QgsVectorLayer, feature: QgsFeature, text: str):
        super().__init__(text)
        self.layer, self.feature, self.fid = layer, QgsFeature(feature), None
        self.error: Optional[str] = None

    def redo(self):
        ok, added = self.layer.dataProvider().addFeatures([QgsFeature(self.feature)])
        if not ok or not added:
            errors = self.layer.dataProvider().errors()
            self.error = (errors[-1].strip().splitlines() or [""])[0] if errors else "the provider refused the feature"
            self.setObsolete(True)
            return
        self.fid = added[0].id()
        self._refresh()

    def undo(self):
        if self.fid is not None:
            self.layer.dataProvider().deleteFeatures([self.fid])
            self.fid = None
            self._refresh()

    def _refresh(self):
        self.layer.updateExtents()
        self.layer.triggerRepaint()


def add_label(layer: QgsVectorLayer, label: Label, project=None) -> int:
    """Write `label` to `layer` now, undoably. Returns the new feature id; raises OutputError when
    the provider refuses it."""
    check_label_layer(layer)
    command = AddLabelCommand(layer, label_feature(layer, label, project), f"Seg: add {label.attributes.get('class', 'label')}")
    stack = layer.undoStack()
    stack.push(command)
    _keep_alive(stack, command)
    if command.fid is None:
        message = command.error or "unknown error"
        raise OutputError(f"Could not write the label to {layer.name()!r}: {message}.")
    return command.fid


# The undo stack owns its commands in C++, but the Python side of a command (its redo/undo) lives
# only as long as a Python reference does: without one, undo silently does nothing. We hold one per
# command still on a stack.
_LIVE_COMMANDS: Dict[int, List[AddLabelCommand]] = {}


def _keep_alive(stack, command: AddLabelCommand) -> None:
    on_stack = {id(stack.command(i)) for i in range(stack.count())}
    kept = [c for c in _LIVE_COMMANDS.get(id(stack), []) if id(c) in on_stack]
    _LIVE_COMMANDS[id(stack)] = kept + [command]


def style_by_class(layer: QgsVectorLayer, classes: Sequence[LabelClass]) -> bool:
    """A categorized renderer on the "class" field, one category per class in its colour
    (translucent fill, solid outline). Classes the layer holds beyond `classes` keep the symbol
    they had (or get one from the palette) and anything else shows as grey "other", so choosing a
    layer never hides its features. Returns False (and changes nothing) when the layer has no
    "class" field."""
    index = layer.fields().lookupField("class") if layer is not None else -1
    if index < 0:
        return False
    from ..core.outputs.styles import class_colours

    categories = [QgsRendererCategory(c.name, _class_symbol(c.color), c.name) for c in classes]
    old = layer.renderer()
    kept = {str(c.value()): c for c in old.categories()} if isinstance(old, QgsCategorizedSymbolRenderer) and old.classAttribute() == "class" else {}
    known = {c.name for c in classes}
    others = sorted(str(v) for v in layer.uniqueValues(index) if v not in (None, "") and str(v) not in known)
    for value, colour in class_colours(others).items():
        symbol = kept[value].symbol().clone() if value in kept else _class_symbol(colour)
        categories.append(QgsRendererCategory(value, symbol, value))
    categories.append(QgsRendererCategory("", _class_symbol("#808080"), "other"))
    layer.setRenderer(QgsCategorizedSymbolRenderer("class", categories))
    layer.triggerRepaint()
    return True


def _class_symbol(colour: str) -> QgsFillSymbol:
    color = QColor(colour)
    fill = QColor(color)
    fill.setAlpha(90)
    symbol = QgsFillSymbol.createSimple({"color": fill.name(QColor.NameFormat.HexArgb), "outline_color": color.name(),
                                         "outline_width": "0.6"})
    symbol.symbolLayer(0).setFillColor(fill)
    return symbol
