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

from .base import SegAlgorithm, discard_output, parse_numbers

MEASURES = ("entropy", "margin")


class AssistAlgorithm(SegAlgorithm):
    BACKGROUND = "BACKGROUND"
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
        self.add_scheduler()
        self.addOutput(QgsProcessingOutputNumber(self.COUNT, self.tr("Polygons written")))

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.assist.classifier import top_importances
        from ...core.assist.pipeline import obtain_model
        from ...core.assist.predict import predict_raster
        from ...core.geo.raster import RasterSource
        from ...qgis_adapters.crs import crs_from_core
        from ...qgis_adapters.layers import source_to_labels
        from ...qgis_adapters.sinks import add_features, label_fields

        raster = self.raster_path(parameters, self.INPUT, context)
        model_path = self.parameterAsFile(parameters, self.MODEL, context) or None
        source_layer = self.parameterAsSource(parameters, self.LABELS, context)
        if source_layer is None and not model_path:
            raise QgsProcessingException(self.tr("Give a label layer to learn from, or a saved model."))
        labels = source_to_labels(source_layer, feedback) if source_layer is not None and not model_path else None
        class_field = self.parameterAsString(parameters, self.CLASS_FIELD, context) or "class"
        if labels is not None and class_field not in source_layer.fields().names():
            raise QgsProcessingException(self.tr(f"The label layer has no field {class_field!r}; choose the class field."))
        statuses = ("accepted", "reviewed") if self.parameterAsBoolean(parameters, self.ONLY_ACCEPTED, context) else None
        bands = parse_numbers(self.parameterAsString(parameters, self.BANDS, context), int, "bands")
        cache = self.parameterAsFile(parameters, self.CACHE, context) or None
        checkpoint = self.parameterAsFile(parameters, self.CHECKPOINT, context) or None
        refine = self.parameterAsBoolean(parameters, self.REFINE, context)
        if refine and not checkpoint:
            raise QgsProcessingException(self.tr("Refining with SAM needs a SAM checkpoint file."))
        probability = self.parameterAsOutputLayer(parameters, self.PROBABILITY, context) if parameters.get(self.PROBABILITY) else None
        uncertainty = self.parameterAsOutputLayer(parameters, self.UNCERTAINTY, context) if parameters.get(self.UNCERTAINTY) else None
        save_model = self.parameterAsFileOutput(parameters, self.SAVE_MODEL, context) if parameters.get(self.SAVE_MODEL) else None
        simplify = self.parameterAsDouble(parameters, self.SIMPLIFY, context)
        min_area = self.parameterAsDouble(parameters, self.MIN_AREA, context)
        with RasterSource(raster) as src:
            embedding = None
            if cache:
                from ...core.assist.embedding_features import EmbeddingFeatures

                embedding = EmbeddingFeatures.open(cache, src, checkpoint)
            model = obtain_model(src, labels, model_path, class_field, self.parameterAsString(parameters, self.BACKGROUND, context) or "background",
                                 bands, embedding, statuses, progress)
            if save_model:
                model.save(save_model)
            fields = label_fields()
            sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, fields, QgsWkbTypes.Type.MultiPolygon,
                                              crs_from_core(src.crs.to_wkt()))

            def on_label(label):
                add_features(sink, fields, [label])

            target = on_label
            if refine:
                from ...core.assist.refine import sam_refiner

                target = sam_refiner(raster, checkpoint, cache, on_label, simplify, min_area)
            try:
                measure = MEASURES[self.parameterAsEnum(parameters, self.MEASURE, context)]
                smooth = self.parameterAsDouble(parameters, self.SMOOTH, context)
                runner = None
                scheduler = self.parameterAsString(parameters, self.SCHEDULER, context).strip()
                if scheduler:
                    from ...core.scale.assist_runs import BlockRunner

                    feedback.pushInfo(f"Predicting on the Dask cluster {scheduler}")
                    runner = BlockRunner(cluster=scheduler, cache=cache, checkpoint=checkpoint)
                result = predict_raster(src, model, target, probability, uncertainty, measure, smooth, min_area, simplify,
                                        embedding=embedding, overwrite=True, progress=progress.slice(0 if model_path else 15, 100),
                                        runner=runner)
            except BaseException:
                del sink
                discard_output(dest)
                raise
            finally:
                if refine:
                    target.close()  # the SAM segmenter: its raster and model
        if labels is not None:
            feedback.pushInfo("Most important features: " + ", ".join(f"{n} {s:.1%}" for n, s in top_importances(model, 8)))
        feedback.pushInfo(f"{result.count} polygons: " + ", ".join(f"{k} {v}" for k, v in result.per_class.items()))
        return {self.OUTPUT: dest, self.PROBABILITY: probability, self.UNCERTAINTY: uncertainty, self.SAVE_MODEL: save_model, self.COUNT: result.count}
