"""seg:prelabel: pre-label an orthomosaic from a prompt layer or automatically."""
from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsWkbTypes,
)

from ...qgis_adapters.crs import crs_from_core
from ...qgis_adapters.layers import source_to_labels
from ...qgis_adapters.sinks import add_features, label_fields
from .base import SegAlgorithm, discard_output, split_tags

MODES = ("prompt layer: points and boxes", "automatic: point grid on every tile")
BACKENDS = ("sam", "classic")


class PrelabelAlgorithm(SegAlgorithm):
    BACKEND = "BACKEND"
    CACHE = "CACHE"
    CLASS_FIELD = "CLASS_FIELD"
    CLASS_RASTER = "CLASS_RASTER"
    COUNT = "COUNT"
    DEFAULT_CLASS = "DEFAULT_CLASS"
    INPUT = "INPUT"
    MIN_AREA = "MIN_AREA"
    MIN_SCORE = "MIN_SCORE"
    MIN_STABILITY = "MIN_STABILITY"
    MODE = "MODE"
    OUTPUT = "OUTPUT"
    POINTS_PER_SIDE = "POINTS_PER_SIDE"
    PROMPTS = "PROMPTS"
    SIMPLIFY = "SIMPLIFY"
    SKIPPED = "SKIPPED"
    TAGS = "TAGS"

    ALG_ID = "prelabel"
    DISPLAY = "Pre-label raster"
    HELP = ("Finds many objects at once and writes them as polygons with Seg's full attribute schema and status prelabel, "
            "ready for review.\n\n"
            "Prompt layer: each feature is one object. Points (or multipoints: several clicks on one object) become point "
            "prompts; polygons become box prompts on their bounding box (box to instance), e.g. rough outlines or detector "
            "boxes. The class comes from the chosen class field (else the default class) and every other field of the "
            "prompt feature travels on as a tag. Features outside the raster are skipped and reported.\n\n"
            "Automatic: SAM's point grid (points per side squared prompts) on every tile with data; masks found twice in a "
            "tile overlap are kept once and objects that cross tiles are merged. Needs SAM (the classic backend needs a "
            "prompt per object).\n\n"
            "Backend: sam needs torch, segment-anything and a checkpoint; classic needs nothing but is slower and coarser. "
            "An embedding cache folder (from Encode raster) is used when it matches and filled otherwise. Memory stays "
            "bounded by the tile. Optionally also writes a class raster on the input raster's grid.\n\n"
            "Dask scheduler: local:N starts N worker processes here, tcp://HOST:PORT uses a running cluster (workers need Seg, "
            "the checkpoint and the raster at the same paths); each worker loads the model once and the result is the same "
            "as without a scheduler, feature for feature.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_raster(self.INPUT, self.tr("Raster"))
        self.addParameter(QgsProcessingParameterEnum(self.MODE, self.tr("Mode"), list(MODES), defaultValue=0))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.PROMPTS, self.tr("Prompt layer (points or polygons)"),
            [QgsProcessing.SourceType.TypeVectorPoint, QgsProcessing.SourceType.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterField(self.CLASS_FIELD, self.tr("Class field of the prompts"), None, self.PROMPTS, optional=True))
        self.addParameter(QgsProcessingParameterString(self.DEFAULT_CLASS, self.tr("Class (when the prompt has none)"), "object"))
        self.add_ontology()
        self.addParameter(QgsProcessingParameterString(self.TAGS, self.tr("Tags for every result (key=value; separated by ; as in the dock)"), optional=True))
        self.addParameter(QgsProcessingParameterEnum(self.BACKEND, self.tr("Backend"), list(BACKENDS), defaultValue=0))
        self.add_model(checkpoint_optional=True)
        self.add_tiling(1024, 256)
        self.add_aoi()
        self.addParameter(QgsProcessingParameterFile(self.CACHE, self.tr("Embedding cache folder"), QgsProcessingParameterFile.Behavior.Folder, optional=True))
        self.add_scheduler()
        self.addParameter(QgsProcessingParameterNumber(self.POINTS_PER_SIDE, self.tr("Automatic: points per side of each tile"),
                                                       QgsProcessingParameterNumber.Type.Integer, 16, minValue=1, maxValue=64))
        self.addParameter(QgsProcessingParameterNumber(self.MIN_SCORE, self.tr("Automatic: minimum predicted IoU"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.7, minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(self.MIN_STABILITY, self.tr("Automatic: minimum stability"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.85, minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(self.SIMPLIFY, self.tr("Simplify tolerance (map units; 0 = pixel edges)"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber(self.MIN_AREA, self.tr("Minimum area (map units squared)"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Pre-labels")))
        self.addParameter(QgsProcessingParameterRasterDestination(self.CLASS_RASTER, self.tr("Class raster"), optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.COUNT, self.tr("Objects found")))
        self.addOutput(QgsProcessingOutputNumber(self.SKIPPED, self.tr("Prompts skipped")))

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.batch.raster_job import RasterJob, prelabel_raster
        from ...core.outputs.label_rasters import rasterize_labels
        from ...core.geo.prompts import parse_tags

        raster = self.raster_path(parameters, self.INPUT, context)
        automatic = self.parameterAsEnum(parameters, self.MODE, context) == 1
        tags = parse_tags(split_tags(self.parameterAsString(parameters, self.TAGS, context)))
        features = None if automatic else self.prompt_features(parameters, context, feedback, tags)
        default_class = self.parameterAsString(parameters, self.DEFAULT_CLASS, context) or "object"
        ontology = self.ontology(parameters, context)
        if ontology is not None:  # a class the ontology does not know is refused before any work
            from ...core.engine.ontology import class_codes

            class_codes([f.class_name or default_class for f in features or []] or [default_class], ontology)
        backend = self.backend(parameters, context)
        tile, overlap, gsd = self.tiling(parameters, context)
        bands, stretch = self.radiometry_choice(parameters, context)
        job = RasterJob(raster, bands, stretch, tile, overlap, gsd, self.aoi(parameters, context, raster))
        class_raster = self.parameterAsOutputLayer(parameters, self.CLASS_RASTER, context) if parameters.get(self.CLASS_RASTER) else ""
        from ...core.geo.raster import RasterSource

        with RasterSource(raster) as src:
            crs = src.crs.to_wkt()
        fields = label_fields()
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, fields, QgsWkbTypes.Type.MultiPolygon, crs_from_core(crs))
        kept = []  # only for the class raster: the sink alone needs no memory per object

        def on_label(label):
            add_features(sink, fields, [label])
            if class_raster:
                kept.append(label)

        cache = self.parameterAsFile(parameters, self.CACHE, context) or None
        values = (default_class, tags, self.parameterAsInt(parameters, self.POINTS_PER_SIDE, context),
                  self.parameterAsDouble(parameters, self.MIN_SCORE, context),
                  self.parameterAsDouble(parameters, self.MIN_STABILITY, context),
                  self.parameterAsDouble(parameters, self.SIMPLIFY, context), self.parameterAsDouble(parameters, self.MIN_AREA, context))
        scheduler = self.parameterAsString(parameters, self.SCHEDULER, context).strip()
        steps = progress.slice(0, 90 if class_raster else 100)
        try:
            if scheduler:
                from ...core.scale.runs import prelabel_scaled

                feedback.pushInfo(f"Pre-labeling on the Dask cluster {scheduler}")
                result, _ = prelabel_scaled(job, backend, features, self.worker_model(parameters, context), cache, *values,
                                            cluster=scheduler, progress=steps, on_label=on_label)
            else:
                result = prelabel_raster(job, backend, features, cache, *values, progress=steps, on_label=on_label)
        except BaseException:
            del sink  # closes the file, which the streamed features had begun to fill
            discard_output(dest)
            raise
        for number, reason in result.skipped:
            feedback.reportError(f"Prompt feature {number} skipped: {reason}", False)
        if class_raster:
            rasterize_labels(kept, raster, class_raster, "class", "class", overwrite=True, progress=progress.slice(90, 100),
                             ontology=ontology)
        feedback.pushInfo(f"{result.count} objects, {len(result.skipped)} prompts skipped")
        return {self.OUTPUT: dest, self.CLASS_RASTER: class_raster or None, self.COUNT: result.count, self.SKIPPED: len(result.skipped)}

    def prompt_features(self, parameters, context, feedback, tags):
        from ...core.batch.prelabel import PromptFeature

        source = self.parameterAsSource(parameters, self.PROMPTS, context)
        if source is None:
            raise QgsProcessingException(self.tr("Prompt-layer mode needs a prompt layer of points or polygons; "
                                                 "give one or choose automatic mode."))
        class_field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
        if class_field and class_field not in source.fields().names():
            raise QgsProcessingException(self.tr("The prompt layer has no field {!r}.").format(class_field))
        features = []
        for lab in source_to_labels(source, feedback):
            own = {k: str(v) for k, v in lab.attributes.items() if k != class_field and v not in (None, "")}
            name = lab.attributes.get(class_field) if class_field else None
            features.append(PromptFeature(lab.geometry, lab.crs, "" if name in (None, "") else str(name), {**tags, **own}))
        if not features:
            raise QgsProcessingException(self.tr("The prompt layer has no features with a geometry."))
        return features

    def worker_model(self, parameters, context):
        """How the cluster's workers open the chosen backend (core.scale.cluster.ModelSpec)."""
        if BACKENDS[self.parameterAsEnum(parameters, self.BACKEND, context)] == "classic":
            from ...core.scale.cluster import ModelSpec

            return ModelSpec(backend="classic")
        return self.model_spec(parameters, context)

    def backend(self, parameters, context):
        if BACKENDS[self.parameterAsEnum(parameters, self.BACKEND, context)] == "classic":
            from ...core.engine.labeling import open_backend

            return open_backend(backend="classic")
        return self.sam_backend(parameters, context)  # torch or ONNX Runtime, as the model needs
