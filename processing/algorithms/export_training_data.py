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
)

from ...core.outputs import CHIP_FORMATS
from ...qgis_adapters.layers import source_to_labels
from .base import SegAlgorithm


class ExportTrainingDataAlgorithm(SegAlgorithm):
    ANNOTATIONS = "ANNOTATIONS"
    CHIPS = "CHIPS"
    CLASS_FIELD = "CLASS_FIELD"
    COCO = "COCO"
    FORMAT = "FORMAT"
    INPUT = "INPUT"
    LABELS = "LABELS"
    MIN_FRACTION = "MIN_FRACTION"
    OUTPUT = "OUTPUT"
    SKIP_NODATA = "SKIP_NODATA"

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
        self.add_raster(self.INPUT, self.tr("Raster"))
        self.addParameter(QgsProcessingParameterFeatureSource(self.LABELS, self.tr("Labels"), [QgsProcessing.SourceType.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterField(self.CLASS_FIELD, self.tr("Class field"), "class", self.LABELS, optional=True))
        self.add_tiling(512, 0)
        self.addParameter(QgsProcessingParameterNumber(self.MIN_FRACTION, self.tr("Minimum labelled fraction of a chip (0..1)"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.01, minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterEnum(self.FORMAT, self.tr("Image format"), list(CHIP_FORMATS), defaultValue=0))
        self.add_bool(self.SKIP_NODATA, "Skip chips that are all nodata", True)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, self.tr("Training data folder")))
        self.addOutput(QgsProcessingOutputFile(self.COCO, self.tr("COCO annotations")))
        self.addOutput(QgsProcessingOutputNumber(self.CHIPS, self.tr("Number of chips")))
        self.addOutput(QgsProcessingOutputNumber(self.ANNOTATIONS, self.tr("Number of annotations")))

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.geo.raster import RasterSource
        from ...core.geo.tiling import scale_for_gsd
        from ...core.outputs.training_data import export_training_data

        raster = self.raster_path(parameters, self.INPUT, context)
        source = self.parameterAsSource(parameters, self.LABELS, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.LABELS))
        class_field = self.parameterAsString(parameters, self.CLASS_FIELD, context) or "class"
        tile, overlap, gsd = self.tiling(parameters, context)
        with RasterSource(raster) as src:
            scale = scale_for_gsd(src.info().resolution[0], gsd)
        out = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        labels = source_to_labels(source, feedback)
        summary = export_training_data(raster, labels, out, tile, overlap, scale, class_field,
                                       self.parameterAsDouble(parameters, self.MIN_FRACTION, context),
                                       CHIP_FORMATS[self.parameterAsEnum(parameters, self.FORMAT, context)],
                                       self.parameterAsBool(parameters, self.SKIP_NODATA, context), progress=progress)
        feedback.pushInfo(f"{summary.chips} chips, {summary.annotations} annotations, categories {summary.categories}")
        return {self.OUTPUT: out, self.COCO: os.path.join(out, "annotations.json"), self.CHIPS: summary.chips, self.ANNOTATIONS: summary.annotations}
