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
)

from .base import SegAlgorithm, parse_numbers, split_tags
from .job_sinks import LayerSink
from .temporal import date_outputs, date_rasters


class DriftMapAlgorithm(SegAlgorithm):
    CACHES = "CACHES"
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
            "one fixed radiometry: the earliest raster's global stretch (or each raster's own). local_drift is the distance "
            "after matching each date's global histogram to the earlier one's (a brighter or hazier date is not change); tiles "
            "whose local drift exceeds the threshold (by default each pair's own: a robust z-score of its tiles) are flagged: there pre-labels and propagated labels deserve the least trust, and labelling again pays most.\n\n"
            "The tiles layer is temporal (date = the later date of the pair); the summary is printed, returned and kept in "
            "the layer's metadata. Optionally draws a PNG map. With SAM embedding caches of two or more dates (seg encode), "
            "embedding_drift adds 1 - cosine similarity of the mean SAM feature vector over each tile.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers(self.RASTERS, self.tr("Rasters of the dates"), QgsProcessing.SourceType.TypeRaster))
        self.addParameter(QgsProcessingParameterString(self.DATES, self.tr("Dates of the rasters, in their order (empty = from the rasters)"), optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.TILE, self.tr("Tile size (pixels of the earliest raster)"), QgsProcessingParameterNumber.Type.Integer, 256, minValue=16))
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD, self.tr("Flag tiles whose local drift exceeds this (0 = each pair's threshold from the series)"),
            QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterBoolean(self.PER_RASTER, self.tr("See each date under its own stretch"), False))
        self.addParameter(QgsProcessingParameterString(self.BANDS, self.tr("Bands for the three channels, e.g. 4,3,2 (empty = suggested)"),
                                                       optional=True))
        self.addParameter(QgsProcessingParameterString(self.STRETCH, self.tr("Stretch min,max for every date (empty = 2-98 percentiles)"),
                                                       optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.CACHES, self.tr("SAM embedding caches by date, DATE=FOLDER separated by ; (two or more add embedding drift)"),
            optional=True))
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Drift per tile")))
        self.addParameter(QgsProcessingParameterFileDestination(self.PNG, self.tr("Drift picture (PNG)"), "PNG files (*.png)", optional=True,
                                                                createByDefault=False))
        self.addOutput(QgsProcessingOutputString(self.SUMMARY, self.tr("Summary (JSON)")))
        self.addOutput(QgsProcessingOutputNumber(self.FLAGGED, self.tr("Flagged tiles")))
        self._dest, self._summary, self._series = None, "", []

    def run_seg(self, parameters, context, feedback, progress):
        import json

        from ...core.jobs import drift
        from ...core.timeseries.drift import DRIFT_FIELDS
        from ...qgis_adapters.layers import raster_layer_path

        rasters = [raster_layer_path(layer) for layer in self.parameterAsLayerList(parameters, self.RASTERS, context)]
        request = drift.Request(
            rasters, dates=self.parameterAsString(parameters, self.DATES, context) or None,
            tile=self.parameterAsInt(parameters, self.TILE, context), threshold=self.parameterAsDouble(parameters, self.THRESHOLD, context) or None,
            cache=split_tags(self.parameterAsString(parameters, self.CACHES, context)),
            per_raster=self.parameterAsBoolean(parameters, self.PER_RASTER, context),
            bands=parse_numbers(self.parameterAsString(parameters, self.BANDS, context), int, "bands"),
            stretch=parse_numbers(self.parameterAsString(parameters, self.STRETCH, context), float, "stretch"),
            png=self.parameterAsFileOutput(parameters, self.PNG, context) if parameters.get(self.PNG) else None, overwrite=True)
        sink = LayerSink(self, parameters, context, self.OUTPUT, DRIFT_FIELDS)
        result = drift.run(request, progress, sink)
        lines = result.details["summary_lines"]
        for line in lines:
            feedback.pushInfo(line)
        self._dest, self._summary = sink.destination(result.details["crs"]), "\n".join(lines)
        self._series = result.details["series"]
        return {self.OUTPUT: self._dest, self.PNG: result.outputs.get("png"), self.SUMMARY: json.dumps(result.details["summary"]),
                self.FLAGGED: result.details["flagged"]}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        date_outputs(context, self._dest, abstract=self._summary)
        date_rasters(self._series, context.project())
        return {}
