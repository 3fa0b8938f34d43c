"""seg:agreement: agreement between two label layers, as `seg agreement` measures it."""
from __future__ import annotations

import json

from qgis.core import (
    QgsFeatureSink,
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
    QgsWkbTypes,
)

from ...qgis_adapters.sinks import make_fields
from .base import SegAlgorithm
from .label_qa import shapely_to_feature, source_to_table


class AgreementAlgorithm(SegAlgorithm):
    A = "A"
    B = "B"
    CLASS_FIELD = "CLASS_FIELD"
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
        self.addOutput(QgsProcessingOutputString(self.METRICS, self.tr("Agreement figures (JSON)")))

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.quality.agreement import compare, unmatched
        from ...core.quality.report_html import agreement_html

        sources = [self.parameterAsSource(parameters, name, context) for name in (self.A, self.B)]
        for name, source in zip((self.A, self.B), sources):
            if source is None:
                raise QgsProcessingException(self.invalidSourceError(parameters, name))
        class_field = self.parameterAsString(parameters, self.CLASS_FIELD, context) or "class"
        like = self.raster_path(parameters, self.LIKE, context) if self.parameterAsRasterLayer(parameters, self.LIKE, context) else None
        resolution = self.parameterAsDouble(parameters, self.RESOLUTION, context) or None
        distance = self.parameterAsDouble(parameters, self.BOUNDARY_DISTANCE, context) or None
        a, b = (source_to_table(s, feedback) for s in sources)
        result = compare(a, b, self.parameterAsDouble(parameters, self.IOU, context), class_field,
                         self.parameterAsBoolean(parameters, self.BY_CLASS, context), like, resolution, distance, progress)
        out = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        from ...core.outputs.atomic import write_json_atomic

        write_json_atomic(out, result.summary)
        results = {self.OUTPUT: out, self.METRICS: json.dumps(result.summary)}
        if parameters.get(self.UNMATCHED):
            fields = make_fields([("side", "str"), ("source_fid", "int64"), ("class", "str"), ("best_iou", "float")])
            sink, dest = self.parameterAsSink(parameters, self.UNMATCHED, context, fields, QgsWkbTypes.Type.MultiPolygon, sources[0].sourceCrs())
            if sink is not None:
                geoms, columns = unmatched(result, class_field)
                for k, geometry in enumerate(geoms):
                    values = [columns[n][k] for n in ("side", "source_fid", "class", "best_iou")]
                    sink.addFeature(shapely_to_feature(geometry, fields, values), QgsFeatureSink.Flag.FastInsert)
                results[self.UNMATCHED] = dest
        html_path = self.parameterAsFileOutput(parameters, self.HTML, context)
        if html_path:
            agreement_html(result, html_path, like, class_field, overwrite=True)
            results[self.HTML] = html_path
        s = result.summary
        feedback.pushInfo(f"{s['matched']} matched of {s['objects_a']} (A) and {s['objects_b']} (B); f1 {s['f1']}, "
                          f"mean IoU {s['mean_iou']}, dice {s['dice']}, kappa {s['kappa']}")
        return results
