"""seg:changereport: areas gained and lost, and IoU, between consecutive dates of a labelled series."""
from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsWkbTypes,
)

from .base import SegAlgorithm
from .temporal import date_outputs

BY = ("class", "track")


class ChangeReportAlgorithm(SegAlgorithm):
    BY = "BY"
    CHANGES = "CHANGES"
    CSV = "CSV"
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
            "the rows, and a layer of the gained and lost geometries, styled and temporal.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFeatureSource(self.INPUT, self.tr("Labels through time"), [QgsProcessing.SourceType.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterEnum(self.BY, self.tr("One row per"), list(BY), defaultValue=0))
        self.addParameter(QgsProcessingParameterFileDestination(self.REPORT, self.tr("Report (JSON)"), "JSON files (*.json)"))
        self.addParameter(QgsProcessingParameterFileDestination(self.CSV, self.tr("Rows (CSV)"), "CSV files (*.csv)", optional=True,
                                                                createByDefault=False))
        self.addParameter(QgsProcessingParameterFeatureSink(self.CHANGES, self.tr("Gained and lost areas")))
        self.addOutput(QgsProcessingOutputNumber(self.ROWS, self.tr("Rows")))
        self._dest = None

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.outputs.atomic import write_json_atomic, write_text_atomic
        from ...core.timeseries.change import CHANGE_FIELDS, change_report
        from ...qgis_adapters.crs import crs_from_core
        from ...qgis_adapters.layers import source_to_labels
        from ...qgis_adapters.sinks import add_features, make_fields

        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            from qgis.core import QgsProcessingException

            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        labels = source_to_labels(source, feedback)
        report = change_report(labels, by=BY[self.parameterAsEnum(parameters, self.BY, context)])
        report_path = self.parameterAsFileOutput(parameters, self.REPORT, context)
        csv_path = self.parameterAsFileOutput(parameters, self.CSV, context) if parameters.get(self.CSV) else ""
        fields = make_fields([(name, kind) for name, kind, _ in CHANGE_FIELDS])
        sink, dest = self.parameterAsSink(parameters, self.CHANGES, context, fields, QgsWkbTypes.Type.MultiPolygon, crs_from_core(labels[0].crs))
        add_features(sink, fields, report.changes)
        write_json_atomic(report_path, report.to_json())
        if csv_path:
            write_text_atomic(csv_path, report.to_csv())
        for row in report.rows:
            feedback.pushInfo(f"{row['class'] if row['track_id'] is None else 'track ' + str(row['track_id'])}: {row['date_from']} -> "
                              f"{row['date_to']}: +{row['gained']:.1f} / -{row['lost']:.1f} m2, IoU "
                              f"{'-' if row['iou'] is None else format(row['iou'], '.3f')}")
        self._dest = dest
        return {self.CHANGES: dest, self.REPORT: report_path, self.CSV: csv_path or None, self.ROWS: len(report.rows)}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        from ...core.timeseries.change import COLOURS

        date_outputs(context, self._dest, change_colours=COLOURS)
        return {}
