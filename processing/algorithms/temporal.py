"""Output layers that know their dates: the Temporal Controller animates a layer whose features
carry an ISO 8601 `date` field, and change layers open styled gained/lost. The rasters of a series
get their dates too, so the imagery plays along with the labels."""
from __future__ import annotations

import os
from datetime import date, timedelta

from qgis.core import (
    Qgis,
    QgsDateTimeRange,
    QgsProject,
    QgsRasterLayer,
    QgsCategorizedSymbolRenderer,
    QgsFillSymbol,
    QgsRendererCategory,
    QgsVectorLayer,
)

from .output_styles import LoadSegStyle

_KEEP = []  # QGIS holds post-processors by pointer: keep the Python objects alive
INSTANT_FROM_FIELD = Qgis.VectorTemporalMode.FeatureDateTimeInstantFromField  # QGIS 3.22 and later, QGIS 4 too
FROM_EXPRESSIONS = Qgis.VectorTemporalMode.FeatureDateTimeStartAndEndFromExpressions


def apply_temporal(layer: QgsVectorLayer, field: str = "date") -> bool:
    """Make `layer` temporal: each feature is an instant at its `field` value. A date or datetime
    field is used as it is; an ISO 8601 text field (what GeoPackages written by the engine hold)
    through expressions (QGIS would compare text with datetimes as text): the feature shows from
    to_datetime("field") for one day. Returns whether the layer has that field."""
    index = layer.fields().indexOf(field) if layer is not None else -1
    if index < 0:
        return False
    props = layer.temporalProperties()
    if layer.fields().at(index).isDateOrTime():
        props.setMode(INSTANT_FROM_FIELD)
        props.setStartField(field)
    else:
        props.setMode(FROM_EXPRESSIONS)
        props.setStartExpression(f'to_datetime("{field}")')
        props.setEndExpression(f'to_datetime("{field}") + make_interval(days:=1)')  # a date lasts its whole day
    props.setIsActive(True)
    return True


def date_rasters(series, project=None) -> int:
    """Give each raster layer of the project whose file is in `series` [(path, ISO date)] a fixed
    temporal range: from its date to the next date of the series (the last one for a day), so the
    Temporal Controller shows each date's imagery until the next. Returns how many layers it dated.
    Call on the main thread (postProcessAlgorithm)."""
    from qgis.PyQt.QtCore import QDateTime, QTime

    ordered = sorted((date.fromisoformat(iso), os.path.realpath(path)) for path, iso in series)
    ends = [d for d, _ in ordered[1:]] + [ordered[-1][0] + timedelta(days=1)] if ordered else []
    ranges = {path: (start, end) for (start, path), end in zip(ordered, ends)}
    fixed = getattr(Qgis, "RasterTemporalMode", None)
    fixed = fixed.FixedTemporalRange if fixed is not None else 0  # QGIS 3.22: QgsRasterLayerTemporalProperties.ModeFixedTemporalRange
    dated = 0
    for layer in (project or QgsProject.instance()).mapLayers().values():
        span = ranges.get(os.path.realpath(layer.source().split("|")[0])) if isinstance(layer, QgsRasterLayer) else None
        if span is None:
            continue
        start, end = (QDateTime(value, QTime(0, 0)) for value in span)
        props = layer.temporalProperties()
        props.setMode(fixed)
        props.setFixedTemporalRange(QgsDateTimeRange(start, end, True, False))
        props.setIsActive(True)
        dated += 1
    return dated


def apply_change_style(layer: QgsVectorLayer, colours) -> None:
    """Fill polygons by the `change` field: {"gained": (r, g, b), "lost": (r, g, b)}."""
    categories = [QgsRendererCategory(value, QgsFillSymbol.createSimple({"color": "{},{},{},180".format(*rgb), "outline_style": "no"}), value)
                  for value, rgb in colours.items()]
    layer.setRenderer(QgsCategorizedSymbolRenderer("change", categories))


class DatedLayer(LoadSegStyle):
    """Applied when QGIS loads an output layer: Seg's style (it replaces LoadSegStyle, QGIS keeps
    one post-processor per output), temporal properties from `date`, an optional change style and
    an optional abstract for the layer metadata."""

    def __init__(self, change_colours=None, abstract: str = ""):
        super().__init__()
        self.change_colours, self.abstract = change_colours, abstract

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API)
        if not isinstance(layer, QgsVectorLayer):
            return
        super().postProcessLayer(layer, context, feedback)
        apply_temporal(layer)
        if self.change_colours:
            apply_change_style(layer, self.change_colours)
        if self.abstract:
            metadata = layer.metadata()
            metadata.setAbstract(self.abstract)
            layer.setMetadata(metadata)
        layer.triggerRepaint()


def date_outputs(context, dest: str, change_colours=None, abstract: str = "") -> None:
    """Attach a DatedLayer post-processor to the output `dest` if QGIS will load it."""
    if dest and context.willLoadLayerOnCompletion(dest):
        processor = DatedLayer(change_colours, abstract)
        _KEEP.append(processor)
        context.layerToLoadOnCompletionDetails(dest).setPostProcessor(processor)
