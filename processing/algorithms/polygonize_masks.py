"""seg:polygonizemasks: a class or instance raster to polygons with the Seg attribute schema."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterString,
    QgsWkbTypes,
)

from ...qgis_adapters.crs import crs_from_core
from ...qgis_adapters.sinks import FeatureSinkAdapter, make_fields
from .base import SegAlgorithm

KINDS = ("class", "instance")


class PolygonizeMasksAlgorithm(SegAlgorithm):
    ADD_MISSING = "ADD_MISSING"
    CLASS_FIELD = "CLASS_FIELD"
    INPUT = "INPUT"
    KIND = "KIND"
    OUTPUT = "OUTPUT"

    ALG_ID = "polygonizemasks"
    DISPLAY = "Polygonize masks"
    GROUP = "Labels"
    GROUP_ID = "labels"
    HELP = ("Turns a class raster (one value per class, 0 = background) or an instance raster (one value per object) into "
            "polygons with Seg's full attribute schema (status prelabel), like `seg polygonize`.\n\n"
            "Class: one feature per connected region of a value; the class name comes from the ontology when given, else "
            "from the raster's own class names (written by Rasterize labels), else the value. Instance: one feature per "
            "value. Polygon edges lie "
            "exactly on pixel edges; the raster is read block by block.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_raster(self.INPUT, self.tr("Class or instance raster"))
        self.addParameter(QgsProcessingParameterEnum(self.KIND, self.tr("Raster kind"), list(KINDS), defaultValue=0))
        self.addParameter(QgsProcessingParameterString(self.CLASS_FIELD, self.tr("Class field name"), "class"))
        self.add_ontology()
        self.add_bool(self.ADD_MISSING, "Codes not in the ontology keep their number (instead of an error)", False)
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Polygons")))

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.engine.labels import FIELDS
        from ...core.geo.raster import RasterSource
        from ...core.jobs import polygonize

        raster = self.raster_path(parameters, self.INPUT, context)
        request = polygonize.Request(
            raster, class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context).strip() or "class",
            kind=KINDS[self.parameterAsEnum(parameters, self.KIND, context)],
            classes=self.parameterAsFile(parameters, self.ONTOLOGY, context) or None,
            add_missing=self.parameterAsBool(parameters, self.ADD_MISSING, context))
        names = {n for n, _, _ in FIELDS}
        fields = make_fields([(name, kind) for name, kind, _ in FIELDS] +
                             ([(request.class_field, "str")] if request.class_field not in names else []))
        with RasterSource(raster) as src:
            crs = src.crs.to_wkt()
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, fields, QgsWkbTypes.Type.MultiPolygon, crs_from_core(crs))
        result = polygonize.run(request, progress, FeatureSinkAdapter(sink, fields))
        feedback.pushInfo(f"{result.count} polygons")
        return {self.OUTPUT: dest}
