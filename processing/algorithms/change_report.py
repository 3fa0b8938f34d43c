"""seg:changereport: areas gained and lost, and IoU, between consecutive dates of a labelled series."""
from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
)

from .base import SegAlgorithm
from .job_sinks import LayerSink
from .temporal import date_outputs

BY = ("class", "track")


class ChangeReportAlgorithm(SegAlgorithm):
    BY = "BY"
    CHANGES = "CHANGES"
    CSV = "CSV"
    PNG = "PNG"
    REPORT = "REPORT"
    ROWS = "ROWS"

    ALG_ID = "changereport"
    DISPLAY = "Change report"
    GROUP = "Time series"
    GROUP_ID = "timeseries"
    HELP = ("For every class (or track) and every consecutive pair of dates of a labelled series (every feature has a date, "
            "e.g. the output of Propagate labels through dates): area on each date, area gained and lost, and IoU, like "
            "`seg change`. Areas are square metres, on the ellipsoid when the layer is geographic. Features with status lost or "
            "outside are not present on their date.\n\n"
            "Writes a JSON report (rows and, per track, its area per date and IoU with its previous date), optionally a CSV of "
            "the rows and a PNG picture, and a layer of the gained and lost geometries, styled and temporal.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFeatureSource(self.INPUT, self.tr("Labels through time"), [QgsProcessing.SourceType.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterEnum(self.BY, self.tr("One row per"), list(BY), defaultValue=0))
        self.addParameter(QgsProcessingParameterFileDestination(self.REPORT, self.tr("Report (JSON)"), "JSON files (*.json)"))
        self.addParameter(QgsProcessingParameterFileDestination(self.CSV, self.tr("Rows (CSV)"), "CSV files (*.csv)", optional=True,
                                                                createByDefault=False))
        self.addParameter(QgsProcessingParameterFeatureSink(self.CHANGES, self.tr("Gained and lost areas")))
        self.addParameter(QgsProcessingParameterFileDestination(self.PNG, self.tr("Gained and lost areas (PNG)"), "PNG files (*.png)",
                                                                optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.ROWS, self.tr("Rows")))
        self._dest = None

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.jobs import change
        from ...core.timeseries.change import CHANGE_FIELDS
        from ...qgis_adapters.layers import source_to_labels

        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            from qgis.core import QgsProcessingException

            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        by = BY[self.parameterAsEnum(parameters, self.BY, context)]
        request = change.Request(
            source_to_labels(source, feedback), out=self.parameterAsFileOutput(parameters, self.REPORT, context), by=by,
            csv=self.parameterAsFileOutput(parameters, self.CSV, context) if parameters.get(self.CSV) else None,
            png=self.parameterAsFileOutput(parameters, self.PNG, context) if parameters.get(self.PNG) else None, overwrite=True)
        sink = LayerSink(self, parameters, context, self.CHANGES, CHANGE_FIELDS)
        result = change.run(request, progress, sink)
        for row in result.rows:
            feedback.pushInfo(change.row_line(row, by))
        self._dest = sink.destination(result.details["crs"])
        return {self.CHANGES: self._dest, self.REPORT: result.outputs["out"], self.CSV: result.outputs.get("csv"),
                self.PNG: result.outputs.get("png"), self.ROWS: result.count}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        from ...core.timeseries.change import COLOURS

        date_outputs(context, self._dest, change_colours=COLOURS)
        return {}
