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
    QgsProcessingParameterRasterLayer,
)

from ...core.outputs.label_rasters import rasterize_labels
from ...qgis_adapters.layers import source_to_labels
from .base import SegAlgorithm
from .polygonize_masks import KINDS


class RasterizeLabelsAlgorithm(SegAlgorithm):
    ALG_ID = "rasterizelabels"
    DISPLAY = "Rasterize labels"
    GROUP = "Labels"
    GROUP_ID = "labels"
    HELP = ("Burns polygon labels onto exactly the grid of a reference raster (same size, pixel size, alignment and CRS), "
            "like `seg rasterize`. Labels in another CRS are reprojected.\n\n"
            "Class: uint8 class index, 0 = background, classes numbered 1.. in sorted order of the class field; the mapping "
            "is stored in the GeoTIFF's `classes` metadata and returned. Instance: uint32 feature number 1..N. A pixel "
            "belongs to a polygon when its centre lies inside; later features win where labels overlap. Written block by "
            "block, so memory does not grow with the raster.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFeatureSource("INPUT", self.tr("Labels"), [QgsProcessing.SourceType.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterField("FIELD", self.tr("Class field"), "class", "INPUT", optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer("LIKE", self.tr("Reference raster (grid)")))
        self.addParameter(QgsProcessingParameterEnum("KIND", self.tr("Raster kind"), list(KINDS), defaultValue=0))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", self.tr("Label raster")))
        self.addOutput(QgsProcessingOutputString("CLASSES", self.tr("Class values (JSON)")))

    def run_seg(self, parameters, context, feedback, progress):
        source = self.parameterAsSource(parameters, "INPUT", context)
        if source is None:
            from qgis.core import QgsProcessingException

            raise QgsProcessingException(self.invalidSourceError(parameters, "INPUT"))
        like = self.raster_path(parameters, "LIKE", context)
        field = self.parameterAsString(parameters, "FIELD", context) or "class"
        kind = KINDS[self.parameterAsEnum(parameters, "KIND", context)]
        out = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        labels = source_to_labels(source, feedback)
        if kind == "class" and field not in source.fields().names():
            from qgis.core import QgsProcessingException

            raise QgsProcessingException(self.tr(f"The labels have no field {field!r}; choose the field that holds the class."))
        classes = rasterize_labels(labels, like, out, field, kind, overwrite=True, progress=progress)
        feedback.pushInfo(f"{len(labels)} labels burned; classes {classes}")
        return {"OUTPUT": out, "CLASSES": json.dumps(classes)}
