"""The dock's ontology and shared-borders panel.

- Load / Save ontology: the class table takes the ontology's names and colours; the ontology (with
  its codes, parents and per-class fields) is kept in the project (entry seg/ontology), and the
  target layer is styled from it: a categorized renderer on "class", also saved into the
  GeoPackage's layer_styles table as the default style, so the layer opens styled anywhere.
- Per-class fields: the current class's attributes (from the ontology) as widgets; their values
  go into the accepted feature's tags.
- "Shared borders" (on by default): an accepted mask is cut by the target layer's labels on the
  raster's pixel grid (core/geo/shared_borders.py), so neighbours share their border exactly.

The panel hooks into the controller through `controller.label_filter(label, segmentation)`.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence

from qgis.core import QgsCoordinateTransform, QgsFeatureRequest, QgsRectangle, QgsVectorLayer, QgsVectorLayerFeatureSource
from qgis.PyQt.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                                 QVBoxLayout, QWidget)

from ..core.engine.ontology import Ontology, OntologyClass, load_ontology, save_ontology
from ..core.errors import SegError
from ..qgis_adapters.crs import crs_from_core
from ..qgis_adapters.geometry import to_shapely
from .classes import SCOPE, LabelClass
from .label_layer import style_by_class

ONTOLOGY_KEY = "ontology"
STYLE_NAME = "seg classes"


def ontology_from_classes(classes: Sequence[LabelClass], base: Optional[Ontology] = None) -> Ontology:
    """The dock's class list as an ontology: codes, parents and fields of `base` kept for the names
    it has, new names coded after its highest code (in table order); colours from the table."""
    kept: List[OntologyClass] = []
    top = max((c.code for c in base), default=0) if base is not None else 0
    for label_class in classes:
        known = base.get(label_class.name) if base is not None else None
        if known is None:
            top += 1
        kept.append(OntologyClass(label_class.name, known.code if known else top, label_class.color,
                                  known.parent if known and base.get(known.parent or "") else None,
                                  known.attributes if known else ()))
    names = {c.name for c in kept}
    return Ontology(OntologyClass(c.name, c.code, c.color, c.parent if c.parent in names else None, c.attributes) for c in kept)


def style_with_ontology(layer: QgsVectorLayer, ontology: Ontology) -> bool:
    """A categorized renderer on "class", one category per class (in code order) in its colour."""
    return style_by_class(layer, [LabelClass(c.name, c.color) for c in sorted(ontology, key=lambda c: c.code)])


def save_style_in_geopackage(layer: QgsVectorLayer, description: str = "Seg classes") -> Optional[str]:
    """Save the layer's style into its GeoPackage's layer_styles table as the default style.
    Returns None on success, else why not (a layer that is not in a GeoPackage, or QGIS's error)."""
    if layer is None or layer.providerType() != "ogr" or layer.dataProvider().storageType() != "GPKG":
        return "the layer is not in a GeoPackage"
    result = layer.saveStyleToDatabase(STYLE_NAME, description, True, "")
    message = result if isinstance(result, str) else (result[-1] if result else "")
    return message or None


def border_cutter(layer: QgsVectorLayer, snap: float = 0.0, project=None):
    """A function segmentation -> polygon or None: the mask cut by the labels of `layer` on the
    segmentation's pixel grid, then vectorized. Made on the main thread from a snapshot of the
    layer (a QgsVectorLayerFeatureSource, edit buffer included); safe to call in a worker."""
    from qgis.core import QgsProject

    source = QgsVectorLayerFeatureSource(layer)
    layer_crs = layer.crs()
    context = (project or QgsProject.instance()).transformContext()

    def cut(segmentation):
        from ..core.geo.shared_borders import share_mask_borders

        crs = crs_from_core(segmentation.crs)
        to_layer, to_label = QgsCoordinateTransform(crs, layer_crs, context), QgsCoordinateTransform(layer_crs, crs, context)
        height, width = segmentation.mask.shape
        corners = [segmentation.transform * xy for xy in ((0, 0), (width, height))]
        (x0, x1), (y0, y1) = sorted(c[0] for c in corners), sorted(c[1] for c in corners)
        rect = to_layer.transformBoundingBox(QgsRectangle(x0 - snap, y0 - snap, x1 + snap, y1 + snap))
        near = []
        for feature in source.getFeatures(QgsFeatureRequest().setFilterRect(rect).setNoAttributes()):
            other = feature.geometry()
            if not other.isEmpty():
                if layer_crs != crs:
                    other.transform(to_label)
                near.append(to_shapely(other))
        return share_mask_borders(segmentation.mask, segmentation.transform, near, snap=snap)

    return cut


def _classes_count(count: int) -> str:
    return "1 class" if count == 1 else f"{count} classes"


class OntologyPanel(QWidget):
    """Load/Save ontology buttons, the class-field widgets and the "Shared borders" toggle."""

    def __init__(self, dock, parent=None):
        super().__init__(parent)
        self.setObjectName("SegOntologyPanel")
        self.dock, self.controller, self.project = dock, dock.controller, dock.project
        self.ontology: Optional[Ontology] = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        for name, text, slot in (("SegLoadOntologyButton", "Load ontology...", self._ask_load),
                                 ("SegSaveOntologyButton", "Save ontology...", self._ask_save)):
            button = QPushButton(text)
            button.setObjectName(name)
            button.clicked.connect(lambda checked=False, slot=slot: slot())
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.info = QLabel("")  # what the last load or save did
        self.info.setObjectName("SegOntologyInfo")
        self.info.setWordWrap(True)
        layout.addWidget(self.info)
        self.fields = QFormLayout()
        layout.addLayout(self.fields)
        self.field_widgets: Dict[str, QWidget] = {}
        self.shared_borders = QCheckBox("Shared borders (cut new objects by the labels already there)")
        self.shared_borders.setObjectName("SegSharedBorders")
        self.shared_borders.setChecked(True)
        layout.addWidget(self.shared_borders)
        self.controller.label_filter = self.filter_label
        self.controller.border_cutter = self.border_cutter
        dock.class_table.currentCellChanged.connect(lambda *args: self.class_changed())
        dock.target_combo.layerChanged.connect(lambda layer: self.ontology is not None and self.style_target())
        self._restore_from_project()

    # -- ontology ------------------------------------------------------------------------------

    def load(self, path: str) -> Ontology:
        """Read `path`, fill the dock's class table, keep the ontology in the project, style the target."""
        ontology = load_ontology(path)
        self.set_ontology(ontology)
        self.info.setText(f"Loaded {_classes_count(len(ontology))} from {os.path.basename(path)}.")
        return ontology

    def set_ontology(self, ontology: Ontology) -> None:
        self.ontology = ontology
        self.dock.class_table.setRowCount(0)
        for c in ontology:
            self.dock.add_class_row(LabelClass(c.name, c.color))
        self.dock.class_table.setCurrentCell(0, 0)
        self.project.writeEntry(SCOPE, ONTOLOGY_KEY, ontology.to_json())
        self.style_target()
        self.class_changed()

    def current_ontology(self) -> Ontology:
        """The ontology as the dock's class table has it now (codes kept, new classes coded after)."""
        return ontology_from_classes(self.dock.classes(), self.ontology)

    def save(self, path: str) -> str:
        ontology = self.current_ontology()
        written = save_ontology(ontology, path)
        self.info.setText(f"Saved {_classes_count(len(ontology))} to {os.path.basename(written or path)}.")
        return written

    def style_target(self) -> Optional[str]:
        """Style the target layer from the ontology and save the style in its GeoPackage. Returns
        None, or why the style could not be saved there."""
        layer = self.controller.target_layer
        if layer is None:
            return "no target layer"
        style_with_ontology(layer, self.current_ontology())
        return save_style_in_geopackage(layer)

    def _ask_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load ontology", "", "Ontology (*.json *.yaml *.yml)")
        if path:
            try:
                self.load(path)
            except SegError as exc:
                self.dock.status.setText("<b>Problem:</b> " + str(exc))

    def _ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save ontology", "", "Ontology (*.json *.yaml *.yml)")
        if path:
            try:
                self.save(path)
            except SegError as exc:
                self.dock.status.setText("<b>Problem:</b> " + str(exc))

    def _restore_from_project(self) -> None:
        text, found = self.project.readEntry(SCOPE, ONTOLOGY_KEY, "")
        if found and text:
            try:
                self.ontology = Ontology.from_dict(json.loads(text), where="the project's ontology")
            except (SegError, ValueError):
                self.ontology = None

    # -- per-class fields ----------------------------------------------------------------------

    def class_changed(self) -> None:
        """Show the current class's fields (a list of allowed values, or free text)."""
        while self.fields.rowCount():
            self.fields.removeRow(0)
        self.field_widgets = {}
        chosen = self.controller.label_class
        current = self.ontology.get(chosen.name) if self.ontology is not None and chosen is not None else None
        for attribute in (current.attributes if current else ()):
            if attribute.values:
                widget = QComboBox()
                widget.addItems([str(v) for v in attribute.values])
            else:
                widget = QLineEdit()
            widget.setObjectName(f"SegClassField_{attribute.name}")
            self.fields.addRow(attribute.name, widget)
            self.field_widgets[attribute.name] = widget

    def field_values(self) -> Dict[str, str]:
        return {name: (w.currentText() if isinstance(w, QComboBox) else w.text().strip())
                for name, w in self.field_widgets.items() if (w.currentText() if isinstance(w, QComboBox) else w.text().strip())}

    # -- the controller's hook -----------------------------------------------------------------

    def filter_label(self, label, segmentation):
        """Before a label is written: the class fields go into its tags."""
        values = self.field_values()
        if values:
            tags = json.loads(label.attributes.get("tags") or "{}")
            tags.update(values)
            label.attributes["tags"] = json.dumps(tags, sort_keys=True)
        return label

    def border_cutter(self):
        """With shared borders on, the cut the next mask gets in the background (and shows in its preview)."""
        layer = self.controller.target_layer
        return border_cutter(layer, project=self.project) if self.shared_borders.isChecked() and layer is not None else None
