"""seg:exporttrainingdata: labels plus a raster to training chips, masks and COCO instances."""
from __future__ import annotations

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ...core.outputs.chips import FORMATS
from ...core.geo.raster import RasterSource
from ...core.geo.tiling import scale_for_gsd
from ...core.outputs.training_data import export_training_data
from ...qgis_adapters.layers import source_to_labels
from .base import SegAlgorithm


class ExportTrainingDataAlgorithm(SegAlgorithm):
    ALG_ID = "exporttrainingdata"
    DISPLAY = "Export training data (chips + COCO)"
    GROUP = "Labels"
    GROUP_ID = "labels"
    HELP = ("Cuts a raster and its polygon labels into training chips for a segmentation model: images/ (GeoTIFF with all "
            "bands and original values, or 8-bit RGB PNG), masks/ (class index per pixel, 0 = background) and "
            "annotations.json (COCO instances: polygons in chip pixel coordinates, categories from the class field, sorted "
            "by name, ids 1..N).\n\nChips follow a tile grid with the given size and overlap; a chip is kept when at least "
            "the minimum labelled fraction of its pixels is labelled (0 also keeps background-only chips as negatives). "
            "The folder must be new or empty; it is filled only when the export is complete.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", self.tr("Raster")))
        self.addParameter(QgsProcessingParameterFeatureSource("LABELS", self.tr("Labels"), [QgsProcessing.SourceType.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterField("CLASS_FIELD", self.tr("Class field"), "class", "LABELS", optional=True))
        self.add_tiling(512, 0)
        self.addParameter(QgsProcessingParameterNumber("MIN_FRACTION", self.tr("Minimum labelled fraction of a chip (0..1)"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.01, minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterEnum("FORMAT", self.tr("Image format"), list(FORMATS), defaultValue=0))
        self.add_bool("SKIP_NODATA", "Skip chips that are all nodata", True)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", self.tr("Training data folder")))
        self.addOutput(QgsProcessingOutputFile("COCO", self.tr("COCO annotations")))
        self.addOutput(QgsProcessingOutputNumber("CHIPS", self.tr("Number of chips")))
        self.addOutput(QgsProcessingOutputNumber("ANNOTATIONS", self.tr("Number of annotations")))

    def run_seg(self, parameters, context, feedback, progress):
        raster = self.raster_path(parameters, "INPUT", context)
        source = self.parameterAsSource(parameters, "LABELS", context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, "LABELS"))
        class_field = self.parameterAsString(parameters, "CLASS_FIELD", context) or "class"
        tile, overlap, gsd = self.tiling(parameters, context)
        with RasterSource(raster) as src:
            scale = scale_for_gsd(src.info().resolution[0], gsd)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        labels = source_to_labels(source, feedback)
        summary = export_training_data(raster, labels, out, tile, overlap, scale, class_field,
                                       self.parameterAsDouble(parameters, "MIN_FRACTION", context),
                                       FORMATS[self.parameterAsEnum(parameters, "FORMAT", context)],
                                       self.parameterAsBool(parameters, "SKIP_NODATA", context), progress=progress)
        feedback.pushInfo(f"{summary.chips} chips, {summary.annotations} annotations, categories {summary.categories}")
        return {"OUTPUT": out, "COCO": os.path.join(out, "annotations.json"), "CHIPS": summary.chips, "ANNOTATIONS": summary.annotations}
