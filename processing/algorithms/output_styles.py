"""Outputs QGIS loads when an algorithm finishes open with Seg's style: Processing's own loading
skips the style Seg wrote into a file (a GeoPackage's default style, a .qml beside it), and a
temporary (memory) layer has none, so it gets the style its fields call for."""
from __future__ import annotations

from qgis.core import QgsProcessingLayerPostProcessorInterface, QgsVectorLayer
from qgis.PyQt.QtXml import QDomDocument

_KEPT: list = []  # QGIS holds only a pointer to a post-processor (and deletes it once run): Python keeps it alive


class LoadSegStyle(QgsProcessingLayerPostProcessorInterface):
    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API)
        if layer is None or not layer.isValid():
            return
        _, loaded = layer.loadDefaultStyle()  # also turns on a series layer's temporal properties
        if not loaded and isinstance(layer, QgsVectorLayer):
            apply_field_style(layer)


def apply_field_style(layer: QgsVectorLayer) -> bool:
    """Seg's style for a layer without one, chosen by its fields (drift, series or labels)."""
    from ...core.outputs.styles import layer_qml

    names = layer.fields().names()
    kind = "drift" if "drift" in names else "series" if "track_id" in names else "labels"
    classes = sorted({str(v) for v in layer.uniqueValues(layer.fields().lookupField("class"))}) if "class" in names else []
    qml = layer_qml(kind, names, classes)
    document = QDomDocument()
    if not qml or not document.setContent(qml):
        return False
    return layer.importNamedStyle(document)[0]


def style_when_loaded(results: dict, context) -> dict:
    """Give every output of `results` that QGIS will load on completion the post-processor above."""
    for value in results.values():
        if isinstance(value, str) and context.willLoadLayerOnCompletion(value):
            loader = LoadSegStyle()
            _KEPT[:] = _KEPT[-63:] + [loader]
            context.layerToLoadOnCompletionDetails(value).setPostProcessor(loader)
    return results
