"""seg:assist: learn from accepted labels (or apply a saved model) and pre-label a raster."""
from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsWkbTypes,
)

from .base import SegAlgorithm, discard_output, parse_numbers, split_tags

MEASURES = ("entropy", "margin")


class AssistAlgorithm(SegAlgorithm):
    ADD_MISSING = "ADD_MISSING"
    BACKGROUND = "BACKGROUND"
    BLOCK_TILES = "BLOCK_TILES"
    CACHE = "CACHE"
    CLASS_FIELD = "CLASS_FIELD"
    COUNT = "COUNT"
    LABELS = "LABELS"
    MEASURE = "MEASURE"
    MIN_AREA = "MIN_AREA"
    MODEL = "MODEL"
    ONLY_ACCEPTED = "ONLY_ACCEPTED"
    OUTPUT = "OUTPUT"
    PROBABILITY = "PROBABILITY"
    REFINE = "REFINE"
    SAVE_MODEL = "SAVE_MODEL"
    SIMPLIFY = "SIMPLIFY"
    SMOOTH = "SMOOTH"
    TAGS = "TAGS"
    THREADS = "THREADS"
    UNCERTAINTY = "UNCERTAINTY"

    ALG_ID = "assist"
    REQUIRES = ("core", "assist")
    DISPLAY = "Learn from labels and pre-label (assistant)"
    GROUP = "Assistant"
    GROUP_ID = "assistant"
    HELP = ("Learns the classes of a label layer from the pixels under its features (small squares or scribbles are "
            "enough; every class, the background class included) and pre-labels the whole raster, window by window.\n\n"
            "Features need no weights: the bands and their normalized differences, and, at several scales, Gaussian "
            "smoothing, Laplacian of Gaussian, gradient magnitude, structure-tensor and Hessian eigenvalues (ilastik style). "
            "An embedding cache of the raster (Encode raster) adds SAM features. The classifier is a random forest of 100 "
            "extremely randomized trees.\n\n"
            "Outputs: polygons of every class but the background, status prelabel, score = the blob's mean probability; "
            "optionally a probability raster (one band per written class) and an uncertainty raster (0 sure .. 1 unsure) "
            "on the raster's grid, and the model as a JSON file (no pickle) to apply to other rasters of the same sensor. "
            "Rejected labels are not learned from. With 'Refine with SAM' each blob's box becomes a SAM prompt. With a Dask "
            "scheduler (local:N, or tcp://HOST:PORT of a running cluster) the windows are predicted on its workers; the "
            "output is the same.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Raster")))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.LABELS, self.tr("Labels to learn from (polygons)"), [QgsProcessing.SourceType.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterField(self.CLASS_FIELD, self.tr("Class field"), "class", self.LABELS, optional=True))
        self.addParameter(QgsProcessingParameterString(self.BACKGROUND, self.tr("Background class (learned, not written)"), "background"))
        self.addParameter(QgsProcessingParameterBoolean(self.ONLY_ACCEPTED, self.tr("Learn only from accepted and reviewed labels"), False))
        self.addParameter(QgsProcessingParameterFile(self.MODEL, self.tr("Saved model to apply instead of learning (.json)"),
                                                     QgsProcessingParameterFile.Behavior.File, "json", optional=True))
        self.addParameter(QgsProcessingParameterString(self.BANDS, self.tr("Bands to learn from (e.g. 1,2,3,4; empty = all)"), optional=True))
        self.addParameter(QgsProcessingParameterFile(self.CACHE, self.tr("Embedding cache folder (adds SAM features)"),
                                                     QgsProcessingParameterFile.Behavior.Folder, optional=True))
        self.addParameter(QgsProcessingParameterBoolean(self.REFINE, self.tr("Refine each blob with SAM (needs a checkpoint)"), False))
        self.addParameter(QgsProcessingParameterFile(self.CHECKPOINT, self.tr("SAM checkpoint (.pth)"), QgsProcessingParameterFile.Behavior.File,
                                                     "pth", optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.SMOOTH, self.tr("Smoothing of the probabilities (pixels)"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0, maxValue=20.0))
        self.addParameter(QgsProcessingParameterNumber(self.MIN_AREA, self.tr("Minimum area (map units squared)"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber(self.SIMPLIFY, self.tr("Simplify tolerance (map units; 0 = pixel edges)"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterEnum(self.MEASURE, self.tr("Uncertainty"), list(MEASURES), defaultValue=0))
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Pre-labels")))
        self.addParameter(QgsProcessingParameterRasterDestination(self.PROBABILITY, self.tr("Probability raster"), optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(self.UNCERTAINTY, self.tr("Uncertainty raster"), optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(self.SAVE_MODEL, self.tr("Save the model as"), "JSON files (*.json)",
                                                                optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterString(self.TAGS, self.tr("Tags on every polygon (key=value; key=value)"), optional=True))
        self.add_ontology()
        self.add_bool(self.ADD_MISSING, "Classes not in the ontology get new codes (instead of an error)", False)
        self.addParameter(QgsProcessingParameterNumber(self.THREADS, self.tr("Threads for prediction (0 = all cores)"),
                                                       QgsProcessingParameterNumber.Type.Integer, 0, minValue=0))
        self.add_scheduler()
        self.addParameter(QgsProcessingParameterNumber(self.BLOCK_TILES, self.tr("Windows per cluster task"),
                                                       QgsProcessingParameterNumber.Type.Integer, 4, minValue=1))
        self.addOutput(QgsProcessingOutputNumber(self.COUNT, self.tr("Polygons written")))

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.geo.prompts import parse_tags
        from ...core.geo.raster import RasterSource
        from ...core.jobs import assist
        from ...qgis_adapters.crs import crs_from_core
        from ...qgis_adapters.layers import source_to_labels
        from ...qgis_adapters.sinks import FeatureSinkAdapter, label_fields

        raster = self.raster_path(parameters, self.INPUT, context)
        model_path = self.parameterAsFile(parameters, self.MODEL, context) or None
        source_layer = self.parameterAsSource(parameters, self.LABELS, context)
        if source_layer is None and not model_path:
            raise QgsProcessingException(self.tr("Give a label layer to learn from, or a saved model."))
        labels = source_to_labels(source_layer, feedback) if source_layer is not None and not model_path else None
        class_field = self.parameterAsString(parameters, self.CLASS_FIELD, context) or "class"
        if labels is not None and class_field not in source_layer.fields().names():
            raise QgsProcessingException(self.tr(f"The label layer has no field {class_field!r}; choose the class field."))
        checkpoint = self.parameterAsFile(parameters, self.CHECKPOINT, context) or None
        refine = self.parameterAsBoolean(parameters, self.REFINE, context)
        if refine and not checkpoint:
            raise QgsProcessingException(self.tr("Refining with SAM needs a SAM checkpoint file."))
        request = assist.Request(
            raster, labels=labels, model=model_path, mode="overwrite", class_field=class_field,
            background=self.parameterAsString(parameters, self.BACKGROUND, context) or "background",
            status=("accepted", "reviewed") if self.parameterAsBoolean(parameters, self.ONLY_ACCEPTED, context) else None,
            probability=self.destination(parameters, self.PROBABILITY, context),
            uncertainty=self.destination(parameters, self.UNCERTAINTY, context),
            save_model=self.parameterAsFileOutput(parameters, self.SAVE_MODEL, context) if parameters.get(self.SAVE_MODEL) else None,
            uncertainty_measure=MEASURES[self.parameterAsEnum(parameters, self.MEASURE, context)],
            bands=parse_numbers(self.parameterAsString(parameters, self.BANDS, context), int, "bands"),
            cache=self.parameterAsFile(parameters, self.CACHE, context) or None, checkpoint=checkpoint,
            refine="sam" if refine else None, smooth=self.parameterAsDouble(parameters, self.SMOOTH, context),
            min_area=self.parameterAsDouble(parameters, self.MIN_AREA, context),
            simplify=self.parameterAsDouble(parameters, self.SIMPLIFY, context),
            tags=parse_tags(split_tags(self.parameterAsString(parameters, self.TAGS, context))),
            threads=self.parameterAsInt(parameters, self.THREADS, context),
            classes=self.parameterAsFile(parameters, self.ONTOLOGY, context) or None,
            add_missing=self.parameterAsBool(parameters, self.ADD_MISSING, context),
            cluster=self.parameterAsString(parameters, self.SCHEDULER, context).strip() or None,
            block_tiles=self.parameterAsInt(parameters, self.BLOCK_TILES, context))
        if request.cluster:
            feedback.pushInfo(f"Predicting on the Dask cluster {request.cluster}")
        with RasterSource(raster) as src:
            crs = src.crs.to_wkt()
        fields = label_fields()
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, fields, QgsWkbTypes.Type.MultiPolygon, crs_from_core(crs))
        try:
            result = assist.run(request, progress, FeatureSinkAdapter(sink, fields))
        except BaseException:
            del sink  # closes the file, which the streamed features had begun to fill
            discard_output(dest)
            raise
        for line in assist.describe(request, result):
            feedback.pushInfo(line)
        outputs = result.outputs
        return {self.OUTPUT: dest, self.PROBABILITY: outputs.get("probability"), self.UNCERTAINTY: outputs.get("uncertainty"),
                self.SAVE_MODEL: outputs.get("model"), self.COUNT: result.count}

    def destination(self, parameters, name, context):
        """A raster destination's path, or None when it is not asked for."""
        return self.parameterAsOutputLayer(parameters, name, context) if parameters.get(name) else None
