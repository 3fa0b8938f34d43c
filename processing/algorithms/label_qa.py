"""seg:labelqa: label QA (and an optional repaired copy) as `seg qa` does it."""
from __future__ import annotations

import json

from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsWkbTypes,
)

from ...core.jobs.qa import FIX_OVERLAPS, OVERLAP_SCOPES
from .base import SegAlgorithm
from .job_sinks import LayerSink

SCOPES, RULES = OVERLAP_SCOPES, FIX_OVERLAPS  # the enums' options, in this order
# (parameter, description, default, Tolerances field)
TOLERANCES = (
    ("OVERLAP_AREA", "Overlaps larger than (m2)", 0.01, "overlap_area"),
    ("GAP_WIDTH", "Gaps narrower than (m)", 1.0, "gap_width"),
    ("SLIVER_COMPACTNESS", "Slivers: 4*pi*area/perimeter^2 under", 0.05, "sliver_compactness"),
    ("SLIVER_WIDTH", "Slivers: thinner than (m)", 0.5, "sliver_width"),
    ("HOLE_AREA", "Holes smaller than (m2)", 1.0, "hole_area"),
    ("OUTLIER_Z", "Area outliers beyond robust z", 5.0, "outlier_z"),
)


def source_to_table(source, feedback=None):
    """A QgsFeatureSource as a core LabelTable: the features' ids, shapely geometries (None for a
    null geometry) and plain attribute values, in the source CRS."""
    import numpy as np
    from shapely import from_wkb

    from ...core.quality.table import LabelTable
    from ...qgis_adapters.crs import crs_to_core
    from ...qgis_adapters.layers import plain

    names = source.fields().names()
    fids, geoms, columns = [], [], {n: [] for n in names}
    for feature in source.getFeatures():
        if feedback is not None and feedback.isCanceled():
            from ...core.errors import Canceled

            raise Canceled("Canceled by the user; nothing was written.")
        fids.append(feature.id())
        geometry = feature.geometry()
        geoms.append(None if geometry is None or geometry.isNull() else from_wkb(bytes(geometry.asWkb())))
        for n, value in zip(names, feature.attributes()):
            columns[n].append(plain(value))
    array = np.empty(len(geoms), dtype=object)
    array[:] = geoms
    return LabelTable(array, np.asarray(fids, dtype=np.int64), crs_to_core(source.sourceCrs()), columns)


def shapely_to_feature(geometry, fields, values) -> QgsFeature:
    from ...qgis_adapters.geometry import from_shapely

    feature = QgsFeature(fields)
    if geometry is not None and not geometry.is_empty:
        g = from_shapely(geometry)
        g.convertToMultiType()
        feature.setGeometry(g)
    feature.setAttributes(list(values))
    return feature


class LabelQaAlgorithm(SegAlgorithm):
    INPUT = "INPUT"
    CLASS_FIELD = "CLASS_FIELD"
    SCORE_FIELD = "SCORE_FIELD"
    OVERLAP_SCOPE = "OVERLAP_SCOPE"
    FIX_RULE = "FIX_RULE"
    RASTER = "RASTER"
    OUTPUT = "OUTPUT"
    FIXED = "FIXED"
    REPORT = "REPORT"
    HTML = "HTML"
    FINDINGS = "FINDINGS"
    COUNTS = "COUNTS"

    ALG_ID = "labelqa"
    DISPLAY = "Label QA"
    GROUP = "Labels"
    GROUP_ID = "labels"
    HELP = ("Finds what is wrong with a label layer, like `seg qa`: invalid and empty geometries, exact duplicates, overlaps "
            "(between any labels or within a class), slivers (4*pi*area/perimeter^2 under a tolerance, or thinner than a "
            "width), narrow gaps between neighbouring labels, tiny holes, area outliers within a class (robust z of the log "
            "area) and labels without a class. Tolerances are metres and square metres in any CRS (geographic layers are "
            "measured in a local equal-area projection).\n\n"
            "Findings: one feature per finding with its kind, the feature ids involved (fids), a detail and the measure "
            "(value). Repaired copy (optional): made valid, empties, duplicates and slivers dropped, overlaps resolved by "
            "the rule chosen; the input is never changed. The JSON report and the HTML report (histograms, per-class table, "
            "thumbnails from the raster when given) are optional.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFeatureSource(self.INPUT, self.tr("Labels"), [QgsProcessing.SourceType.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterField(self.CLASS_FIELD, self.tr("Class field"), "class", self.INPUT, optional=True))
        self.addParameter(QgsProcessingParameterField(self.SCORE_FIELD, self.tr("Score field"), "score", self.INPUT, optional=True))
        for name, text, default, _ in TOLERANCES:
            self.addParameter(QgsProcessingParameterNumber(name, self.tr(text), QgsProcessingParameterNumber.Type.Double, default, minValue=0.0))
        self.addParameter(QgsProcessingParameterEnum(self.OVERLAP_SCOPE, self.tr("Overlaps between"),
                                                     [self.tr("any labels"), self.tr("labels of one class")], defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum(self.FIX_RULE, self.tr("Repair: overlaps are resolved by"),
                                                     [self.tr("higher score wins"), self.tr("earlier wins"), self.tr("merge same class")],
                                                     defaultValue=0))
        self.addParameter(QgsProcessingParameterRasterLayer(self.RASTER, self.tr("Raster for the report's thumbnails"), optional=True))
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Findings"), QgsProcessing.SourceType.TypeVectorPolygon))
        self.addParameter(QgsProcessingParameterFeatureSink(self.FIXED, self.tr("Repaired copy"), QgsProcessing.SourceType.TypeVectorPolygon,
                                                            optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(self.REPORT, self.tr("QA report (JSON)"), "JSON (*.json)", optional=True,
                                                                createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(self.HTML, self.tr("HTML report"), "HTML (*.html)", optional=True,
                                                                createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.FINDINGS, self.tr("Number of findings")))
        self.addOutput(QgsProcessingOutputString(self.COUNTS, self.tr("Findings per kind (JSON)")))

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.jobs import qa

        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        raster = None
        if self.parameterAsRasterLayer(parameters, self.RASTER, context) is not None:
            raster = self.raster_path(parameters, self.RASTER, context)
        request = qa.Request(
            source_to_table(source, feedback), class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context) or "class",
            score_field=self.parameterAsString(parameters, self.SCORE_FIELD, context) or "score",
            overlap_scope=SCOPES[self.parameterAsEnum(parameters, self.OVERLAP_SCOPE, context)],
            fix_overlaps=RULES[self.parameterAsEnum(parameters, self.FIX_RULE, context)], repair=bool(parameters.get(self.FIXED)),
            report=self.parameterAsFileOutput(parameters, self.REPORT, context) or None,
            html=self.parameterAsFileOutput(parameters, self.HTML, context) or None, raster=raster, overwrite=True,
            **{field: self.parameterAsDouble(parameters, name, context) for name, _, _, field in TOLERANCES})
        findings = LayerSink(self, parameters, context, self.OUTPUT, qa.FINDING_FIELDS)
        result = qa.run(request, progress, findings)
        results = {self.OUTPUT: findings.destination(result.details["crs"]), self.FINDINGS: result.count,
                   self.COUNTS: json.dumps(result.details["counts"])}
        if request.repair:
            fixed = result.details["fixed"]
            wkb = QgsWkbTypes.multiType(source.wkbType())
            fixed_sink, fixed_dest = self.parameterAsSink(parameters, self.FIXED, context, source.fields(), wkb, source.sourceCrs())
            if fixed_sink is not None:
                names = source.fields().names()
                for k in range(len(fixed)):
                    fixed_sink.addFeature(shapely_to_feature(fixed.geometries[k], source.fields(), [fixed.columns[n][k] for n in names]),
                                          QgsFeatureSink.Flag.FastInsert)
                results[self.FIXED] = fixed_dest
                feedback.pushInfo(qa.repair_line(result, None) + ".")
        for name, key in ((self.REPORT, "report"), (self.HTML, "html")):
            if key in result.outputs:
                results[name] = result.outputs[key]
        feedback.pushInfo(qa.summary_line(result, None))
        return results
