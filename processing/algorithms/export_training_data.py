"""seg:exporttrainingdata: labels plus a raster to training data (COCO, Pascal VOC or YOLO) with spatial
splits, exact augmentations and a dataset report."""
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
    QgsProcessingParameterString,
)

from ...core.outputs import CHIP_FORMATS
from ...qgis_adapters.layers import source_to_labels
from .base import SegAlgorithm


class ExportTrainingDataAlgorithm(SegAlgorithm):
    ADD_MISSING = "ADD_MISSING"
    ANNOTATIONS = "ANNOTATIONS"
    AUGMENT = "AUGMENT"
    BLOCK_SIZE = "BLOCK_SIZE"
    CHIPS = "CHIPS"
    CLASS_FIELD = "CLASS_FIELD"
    COCO = "COCO"
    DATASET = "DATASET"
    DATASET_FORMAT = "DATASET_FORMAT"
    FORMAT = "FORMAT"
    INPUT = "INPUT"
    LABELS = "LABELS"
    MIN_FRACTION = "MIN_FRACTION"
    OUTPUT = "OUTPUT"
    REPORT = "REPORT"
    SEED = "SEED"
    SKIP_NODATA = "SKIP_NODATA"
    SPLIT = "SPLIT"
    SPLIT_BY = "SPLIT_BY"
    SPLIT_FIELD = "SPLIT_FIELD"

    DATASET_FORMATS = ("coco", "voc", "yolo")
    SPLIT_METHODS = ("block", "random", "field")

    ALG_ID = "exporttrainingdata"
    DISPLAY = "Export training data (COCO, VOC, YOLO; spatial splits)"
    GROUP = "Labels"
    GROUP_ID = "labels"
    HELP = ("Cuts a raster and its polygon labels into training chips for a segmentation model: images/ (GeoTIFF with all "
            "bands and original values, or 8-bit RGB PNG), masks/ (class index per pixel, 0 = background) and "
            "annotations.json (COCO instances: polygons in chip pixel coordinates, category ids = class codes: the ontology's, else "
            "integer names keep their integer and others are numbered by name).\n\nChips follow a tile grid with the given size and overlap; a chip is kept when at least "
            "the minimum labelled fraction of its pixels is labelled (0 also keeps background-only chips as negatives). "
            "The folder must be new or empty; it is filled only when the export is complete.\n\n"
            "Dataset format: COCO (as above), Pascal VOC (JPEGImages, SegmentationClass/Object PNGs, Annotations XML, "
            "ImageSets) or YOLO segmentation (images/ and labels/ per split, data.yaml). With an ontology, class ids are "
            "its codes in every format.\n\nSplit (e.g. 0.7,0.15,0.15): by block (contiguous blocks of chips with a buffer, "
            "so no pixel is in two splits), random (leaks: neighbouring chips are nearly the same picture) or by the field "
            "of the split areas layer that says train, val or test; the seed fixes the split. Writes train.json, val.json, "
            "test.json (COCO) and splits.gpkg. Augment (flips,rot90) adds exactly transformed copies of training chips "
            "only. report.json and report.html count chips, objects and labelled pixels per class and split.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_raster(self.INPUT, self.tr("Raster"))
        self.addParameter(QgsProcessingParameterFeatureSource(self.LABELS, self.tr("Labels"), [QgsProcessing.SourceType.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterField(self.CLASS_FIELD, self.tr("Class field"), "class", self.LABELS, optional=True))
        self.add_tiling(512, 0)
        self.addParameter(QgsProcessingParameterNumber(self.MIN_FRACTION, self.tr("Minimum labelled fraction of a chip (0..1)"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.01, minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterEnum(self.FORMAT, self.tr("Image format"), list(CHIP_FORMATS), defaultValue=0))
        self.add_bool(self.SKIP_NODATA, "Skip chips that are all nodata", True)
        self.addParameter(QgsProcessingParameterEnum(self.DATASET_FORMAT, self.tr("Dataset format (VOC images are JPEG)"),
                                                     ["COCO", "Pascal VOC", "YOLO segmentation"], defaultValue=0))
        self.add_ontology()
        self.add_bool(self.ADD_MISSING, "Classes not in the ontology get new codes (instead of an error)", False)
        self.addParameter(QgsProcessingParameterString(self.SPLIT, self.tr("Split TRAIN,VAL,TEST (e.g. 0.7,0.15,0.15; empty = no split)"),
                                                       optional=True))
        self.addParameter(QgsProcessingParameterEnum(self.SPLIT_BY, self.tr("Split by"),
                                                     [self.tr("Blocks with a buffer"), self.tr("Random chips (leaks)"),
                                                      self.tr("Field of the split areas")], defaultValue=0))
        self.addParameter(QgsProcessingParameterFeatureSource(self.AOI, self.tr("Split areas (polygons)"),
                                                              [QgsProcessing.SourceType.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterField(self.SPLIT_FIELD, self.tr("Field of the split areas saying train, val or test"),
                                                      None, self.AOI, optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.SEED, self.tr("Seed"), QgsProcessingParameterNumber.Type.Integer, 0))
        self.addParameter(QgsProcessingParameterNumber(self.BLOCK_SIZE, self.tr("Chips per block side (0 = auto)"),
                                                       QgsProcessingParameterNumber.Type.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterString(self.AUGMENT, self.tr("Augment training chips (flips,rot90; empty = none)"),
                                                       optional=True))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, self.tr("Training data folder")))
        self.addOutput(QgsProcessingOutputFile(self.COCO, self.tr("COCO annotations")))
        self.addOutput(QgsProcessingOutputNumber(self.CHIPS, self.tr("Number of chips")))
        self.addOutput(QgsProcessingOutputNumber(self.ANNOTATIONS, self.tr("Number of annotations")))
        self.addOutput(QgsProcessingOutputFile(self.DATASET, self.tr("Dataset index (annotations.json, ImageSets or data.yaml)")))
        self.addOutput(QgsProcessingOutputFile(self.REPORT, self.tr("Dataset report (HTML)")))

    def run_seg(self, parameters, context, feedback, progress):
        import warnings

        from ...core.errors import SegWarning
        from ...core.jobs import export_training

        raster = self.raster_path(parameters, self.INPUT, context)
        source = self.parameterAsSource(parameters, self.LABELS, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.LABELS))
        tile, overlap, gsd = self.tiling(parameters, context)
        out = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        dataset_format = self.DATASET_FORMATS[self.parameterAsEnum(parameters, self.DATASET_FORMAT, context)]
        image_format = None if dataset_format == "voc" else CHIP_FORMATS[self.parameterAsEnum(parameters, self.FORMAT, context)]
        split_by = self.SPLIT_METHODS[self.parameterAsEnum(parameters, self.SPLIT_BY, context)]
        areas, aoi = self.parameterAsSource(parameters, self.AOI, context), None
        if split_by == "field":
            split_by = self.parameterAsString(parameters, self.SPLIT_FIELD, context)
            if areas is None or not split_by:
                raise QgsProcessingException(self.tr("Splitting by a field needs the split areas and their field."))
            aoi = source_to_labels(areas, feedback)
        request = export_training.Request(
            raster, source_to_labels(source, feedback), out,
            class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context) or "class", tile=tile, overlap=overlap,
            gsd=gsd, min_labeled=self.parameterAsDouble(parameters, self.MIN_FRACTION, context),
            skip_nodata=self.parameterAsBool(parameters, self.SKIP_NODATA, context), format=dataset_format,
            image_format=image_format, split=self.parameterAsString(parameters, self.SPLIT, context) or None,
            split_by=split_by, aoi=aoi, seed=self.parameterAsInt(parameters, self.SEED, context),
            block_size=self.parameterAsInt(parameters, self.BLOCK_SIZE, context) or None,
            augment=self.parameterAsString(parameters, self.AUGMENT, context) or "",
            classes=self.parameterAsFile(parameters, self.ONTOLOGY, context) or None,
            add_missing=self.parameterAsBool(parameters, self.ADD_MISSING, context))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SegWarning)
            result = export_training.run(request, progress)
        for warning in caught:
            feedback.pushWarning(str(warning.message))
        for line in export_training.describe(request, result):
            feedback.pushInfo(line)
        summary = result.details["summary"]
        coco = os.path.join(out, "annotations.json") if dataset_format == "coco" else ""
        return {self.OUTPUT: out, self.COCO: coco, self.CHIPS: summary.chips, self.ANNOTATIONS: summary.annotations,
                self.DATASET: summary.coco_path, self.REPORT: os.path.join(out, "report.html")}
