"""seg:agreement: agreement between two label layers, as `seg agreement` measures it."""
from __future__ import annotations

import json

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import SegAlgorithm
from .job_sinks import LayerSink
from .label_qa import source_to_table


class AgreementAlgorithm(SegAlgorithm):
    A = "A"
    B = "B"
    CLASS_FIELD = "CLASS_FIELD"
    SCORE_FIELD = "SCORE_FIELD"
    RASTER = "RASTER"
    BY_CLASS = "BY_CLASS"
    IOU = "IOU"
    LIKE = "LIKE"
    RESOLUTION = "RESOLUTION"
    BOUNDARY_DISTANCE = "BOUNDARY_DISTANCE"
    OUTPUT = "OUTPUT"
    UNMATCHED = "UNMATCHED"
    HTML = "HTML"
    METRICS = "METRICS"

    ALG_ID = "agreement"
    DISPLAY = "Agreement between two label layers"
    GROUP = "Labels"
    GROUP_ID = "labels"
    HELP = ("Measures how well labels B agree with reference labels A (two annotators, or pre-labels against checked labels), "
            "like `seg agreement`. Objects are matched one to one at IoU >= the threshold (highest IoU first).\n\n"
            "matched; precision = matched/|B|; recall = matched/|A|; f1; mean_iou over matched pairs; dice: area Dice of the "
            "union of A and the union of B; kappa: Cohen's kappa of the two burnt on the reference raster's grid, or at a "
            "resolution in metres (0 = 2048 pixels across), over classes when comparing by class; boundary_iou: Boundary IoU "
            "(Cheng et al., 2021) of matched pairs, band width in metres (0 = 2 % of each pair's diagonal). Overall at the top "
            "of the JSON and per class under `classes`. B is reprojected to A's CRS; lengths are metres in any CRS.")

    def initAlgorithm(self, config=None):  # noqa: N802
        polygons = [QgsProcessing.SourceType.TypeVectorPolygon]
        self.addParameter(QgsProcessingParameterFeatureSource(self.A, self.tr("Reference labels (A)"), polygons))
        self.addParameter(QgsProcessingParameterFeatureSource(self.B, self.tr("Compared labels (B)"), polygons))
        self.addParameter(QgsProcessingParameterString(self.CLASS_FIELD, self.tr("Class field (in both)"), "class", optional=True))
        self.addParameter(QgsProcessingParameterString(self.SCORE_FIELD, self.tr("Score field (for the HTML report)"), "score", optional=True))
        self.addParameter(QgsProcessingParameterBoolean(self.BY_CLASS, self.tr("Also per class"), False))
        self.addParameter(QgsProcessingParameterNumber(self.IOU, self.tr("IoU at which objects match"), QgsProcessingParameterNumber.Type.Double,
                                                       0.5, minValue=0.01, maxValue=1.0))
        self.addParameter(QgsProcessingParameterRasterLayer(self.LIKE, self.tr("Raster whose grid kappa uses"), optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.RESOLUTION, self.tr("Kappa grid resolution (m; 0 = automatic)"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber(self.BOUNDARY_DISTANCE, self.tr("Boundary IoU band width (m; 0 = 2 % of the diagonal)"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, self.tr("Agreement (JSON)"), "JSON (*.json)"))
        self.addParameter(QgsProcessingParameterFeatureSink(self.UNMATCHED, self.tr("Unmatched objects"), QgsProcessing.SourceType.TypeVectorPolygon,
                                                            optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(self.HTML, self.tr("HTML report"), "HTML (*.html)", optional=True,
                                                                createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterLayer(self.RASTER, self.tr("Raster for the report's thumbnails (empty = the kappa grid's raster)"),
                                                            optional=True))
        self.addOutput(QgsProcessingOutputString(self.METRICS, self.tr("Agreement figures (JSON)")))

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.jobs import agreement

        sources = [self.parameterAsSource(parameters, name, context) for name in (self.A, self.B)]
        for name, source in zip((self.A, self.B), sources):
            if source is None:
                raise QgsProcessingException(self.invalidSourceError(parameters, name))
        like = self.raster_path(parameters, self.LIKE, context) if self.parameterAsRasterLayer(parameters, self.LIKE, context) else None
        raster = self.raster_path(parameters, self.RASTER, context) if self.parameterAsRasterLayer(parameters, self.RASTER, context) else None
        a, b = (source_to_table(s, feedback) for s in sources)
        request = agreement.Request(
            a, b, out=self.parameterAsFileOutput(parameters, self.OUTPUT, context),
            by_class=self.parameterAsBoolean(parameters, self.BY_CLASS, context), like=like,
            resolution=self.parameterAsDouble(parameters, self.RESOLUTION, context) or None,
            iou=self.parameterAsDouble(parameters, self.IOU, context),
            boundary_distance=self.parameterAsDouble(parameters, self.BOUNDARY_DISTANCE, context) or None,
            html=self.parameterAsFileOutput(parameters, self.HTML, context) or None, raster=raster,
            class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context) or "class",
            score_field=self.parameterAsString(parameters, self.SCORE_FIELD, context) or "score", overwrite=True)
        unmatched = LayerSink(self, parameters, context, self.UNMATCHED, agreement.UNMATCHED_FIELDS) if parameters.get(self.UNMATCHED) else None
        result = agreement.run(request, progress, unmatched)
        summary = result.details["summary"]
        results = {self.OUTPUT: result.outputs["out"], self.METRICS: json.dumps(summary)}
        if unmatched is not None:
            results[self.UNMATCHED] = unmatched.destination(result.details["crs"])
        if "html" in result.outputs:
            results[self.HTML] = result.outputs["html"]
        feedback.pushInfo(agreement.summary_line(result, request.iou, None))
        return results
