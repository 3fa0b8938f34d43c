"""seg:driftmap: per tile and pair of dates, how much the image changed."""
from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsWkbTypes,
)

from .base import SegAlgorithm
from .temporal import date_outputs


class DriftMapAlgorithm(SegAlgorithm):
    DATES = "DATES"
    FLAGGED = "FLAGGED"
    OUTPUT = "OUTPUT"
    PER_RASTER = "PER_RASTER"
    PNG = "PNG"
    RASTERS = "RASTERS"
    SUMMARY = "SUMMARY"
    THRESHOLD = "THRESHOLD"

    ALG_ID = "driftmap"
    DISPLAY = "Drift map between dates"
    GROUP = "Time series"
    GROUP_ID = "timeseries"
    HELP = ("For every tile and every consecutive pair of dates, a 0..1 distance between the two dates' pixel distributions "
            "(mean per-channel Wasserstein distance of the stretched values / 255), like `seg drift`. Every date is seen under "
            "one fixed radiometry: the earliest raster's global stretch (or each raster's own). Tiles above the threshold are "
            "flagged: there pre-labels and propagated labels deserve the least trust, and labelling again pays most.\n\n"
            "The tiles layer is temporal (date = the later date of the pair); the summary is printed, returned and kept in "
            "the layer's metadata. Optionally draws a PNG map.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers(self.RASTERS, self.tr("Rasters of the dates"), QgsProcessing.SourceType.TypeRaster))
        self.addParameter(QgsProcessingParameterString(self.DATES, self.tr("Dates of the rasters, in their order (empty = from the rasters)"), optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.TILE, self.tr("Tile size (pixels of the earliest raster)"), QgsProcessingParameterNumber.Type.Integer, 256, minValue=16))
        self.addParameter(QgsProcessingParameterNumber(self.THRESHOLD, self.tr("Flag tiles above this drift"), QgsProcessingParameterNumber.Type.Double, 0.1, minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterBoolean(self.PER_RASTER, self.tr("See each date under its own stretch"), False))
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Drift per tile")))
        self.addParameter(QgsProcessingParameterFileDestination(self.PNG, self.tr("Drift picture (PNG)"), "PNG files (*.png)", optional=True,
                                                                createByDefault=False))
        self.addOutput(QgsProcessingOutputString(self.SUMMARY, self.tr("Summary (JSON)")))
        self.addOutput(QgsProcessingOutputNumber(self.FLAGGED, self.tr("Flagged tiles")))
        self._dest, self._summary = None, ""

    def run_seg(self, parameters, context, feedback, progress):
        import json

        from ...core.timeseries.dates import dated_series
        from ...core.timeseries.drift import DRIFT_FIELDS, drift_map, summary_lines
        from ...qgis_adapters.crs import crs_from_core
        from ...qgis_adapters.layers import raster_layer_path
        from ...qgis_adapters.sinks import add_features, make_fields

        rasters = [raster_layer_path(layer) for layer in self.parameterAsLayerList(parameters, self.RASTERS, context)]
        dates = [v.strip() for v in self.parameterAsString(parameters, self.DATES, context).split(",") if v.strip()] or None
        series = dated_series(rasters, dates)
        result = drift_map(series, self.parameterAsInt(parameters, self.TILE, context), self.parameterAsDouble(parameters, self.THRESHOLD, context),
                           per_raster=self.parameterAsBoolean(parameters, self.PER_RASTER, context), progress=progress)
        fields = make_fields([(name, kind) for name, kind, _ in DRIFT_FIELDS])
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, fields, QgsWkbTypes.Type.MultiPolygon, crs_from_core(result.crs))
        add_features(sink, fields, result.tiles)
        png = self.parameterAsFileOutput(parameters, self.PNG, context) if parameters.get(self.PNG) else ""
        if png:
            from ...core.timeseries.pictures import drift_png

            drift_png(result, series[0].path, png)
        lines = summary_lines(result)
        for line in lines:
            feedback.pushInfo(line)
        self._dest, self._summary = dest, "\n".join(lines)
        return {self.OUTPUT: dest, self.PNG: png or None, self.SUMMARY: json.dumps(result.summary),
                self.FLAGGED: sum(t.attributes["flagged"] for t in result.tiles)}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        date_outputs(context, self._dest, abstract=self._summary)
        return {}
