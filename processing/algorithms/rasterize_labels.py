"""seg:rasterizelabels: labels to a class or instance GeoTIFF on exactly another raster's grid."""
from __future__ import annotations

import json

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterRasterDestination,
)

from ...qgis_adapters.layers import source_to_labels
from .base import SegAlgorithm
from .polygonize_masks import KINDS


class RasterizeLabelsAlgorithm(SegAlgorithm):
    ADD_MISSING = "ADD_MISSING"
    CLASSES = "CLASSES"
    FIELD = "FIELD"
    INPUT = "INPUT"
    KIND = "KIND"
    LIKE = "LIKE"
    OUTPUT = "OUTPUT"

    ALG_ID = "rasterizelabels"
    DISPLAY = "Rasterize labels"
    GROUP = "Labels"
    GROUP_ID = "labels"
    HELP = ("Burns polygon labels onto exactly the grid of a reference raster (same size, pixel size, alignment and CRS), "
            "like `seg rasterize`. Labels in another CRS are reprojected.\n\n"
            "Class: the class code per pixel, 0 = background. With an ontology its codes are used, so every file agrees; "
            "without one, integer class names keep their value and other names are numbered after them (codes for this "
            "file only). The raster carries the class names and colours. Instance: uint32 feature number 1..N. A pixel "
            "belongs to a polygon when its centre lies inside; later features win where labels overlap. Written block by "
            "block, so memory does not grow with the raster.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFeatureSource(self.INPUT, self.tr("Labels"), [QgsProcessing.SourceType.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterField(self.FIELD, self.tr("Class field"), "class", self.INPUT, optional=True))
        self.add_raster(self.LIKE, self.tr("Reference raster (grid)"))
        self.addParameter(QgsProcessingParameterEnum(self.KIND, self.tr("Raster kind"), list(KINDS), defaultValue=0))
        self.add_ontology()
        self.add_bool(self.ADD_MISSING, "Classes not in the ontology get new codes (instead of an error)", False)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Label raster")))
        self.addOutput(QgsProcessingOutputString(self.CLASSES, self.tr("Class values (JSON)")))

    def run_seg(self, parameters, context, feedback, progress):
        from qgis.core import QgsProcessingException

        from ...core.jobs import rasterize

        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        field = self.parameterAsString(parameters, self.FIELD, context) or "class"
        kind = KINDS[self.parameterAsEnum(parameters, self.KIND, context)]
        if kind == "class" and field not in source.fields().names():
            raise QgsProcessingException(self.tr("The labels have no field {!r}; choose the field that holds the class.").format(field))
        request = rasterize.Request(
            source_to_labels(source, feedback), self.raster_path(parameters, self.LIKE, context),
            self.parameterAsOutputLayer(parameters, self.OUTPUT, context), field=field, kind=kind, overwrite=True,
            classes=self.parameterAsFile(parameters, self.ONTOLOGY, context) or None,
            add_missing=self.parameterAsBool(parameters, self.ADD_MISSING, context))
        result = rasterize.run(request, progress)
        for line in rasterize.describe(request, result):
            feedback.pushInfo(line)
        return {self.OUTPUT: request.out, self.CLASSES: json.dumps(result.details["classes"])}
