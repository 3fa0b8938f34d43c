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
from ...qgis_adapters.sinks import FeatureSinkAdapter, label_fields
from .base import SegAlgorithm, discard_output, split_tags

MODES = ("prompt layer: points and boxes", "automatic: point grid on every tile",
         "find all: every instance of a text or of exemplars")


class PrelabelAlgorithm(SegAlgorithm):
    ADD_MISSING = "ADD_MISSING"
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
    NO_OVERLAP = "NO_OVERLAP"
    OUTPUT = "OUTPUT"
    POINTS_PER_SIDE = "POINTS_PER_SIDE"
    PROMPTS = "PROMPTS"
    SIMPLIFY = "SIMPLIFY"
    SKIPPED = "SKIPPED"
    SNAP = "SNAP"
    TAGS = "TAGS"
    TEXT = "TEXT"
    EXEMPLARS = "EXEMPLARS"

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
            "Find all: every instance of the phrases in Text (e.g. pond=water; building: the phrase, and its class after =) "
            "with SAM 3 (a facebook/sam3 folder as the checkpoint, Meta's SAM License), and/or of the Exemplars "
            "(boxes or polygons: SAM 3 exemplar prompts, or with any other backend the look-alikes of their features). "
            "The minimum score applies to each instance.\n\n"
            "Backend: classic (the default) needs nothing but is slower and coarser; sam needs torch, segment-anything and a checkpoint. "
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
        self.addParameter(QgsProcessingParameterString(self.TEXT, self.tr("Find all: text (phrase or phrase=class; separate with ;)"),
                                                       optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.EXEMPLARS, self.tr("Find all: exemplars (like these)"),
            [QgsProcessing.SourceType.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterString(self.DEFAULT_CLASS, self.tr("Class (when the prompt has none)"), "object"))
        self.add_ontology()
        self.addParameter(QgsProcessingParameterString(self.TAGS, self.tr("Tags for every result (key=value; separated by ; as in the dock)"), optional=True))
        self.add_backend()
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
        self.add_bool(self.ADD_MISSING, "Classes the ontology lacks get new codes (instead of an error)", False)
        self.add_bool(self.NO_OVERLAP, "Shared borders: new objects do not overlap (the higher score wins)", False)
        self.addParameter(QgsProcessingParameterNumber(self.SNAP, self.tr("Shared borders: snap to vertices within (map units)"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Pre-labels")))
        self.addParameter(QgsProcessingParameterRasterDestination(self.CLASS_RASTER, self.tr("Class raster"), optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.COUNT, self.tr("Objects found")))
        self.addOutput(QgsProcessingOutputNumber(self.SKIPPED, self.tr("Prompts skipped")))

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.geo.prompts import parse_tags
        from ...core.jobs import prelabel

        raster = self.raster_path(parameters, self.INPUT, context)
        mode = self.parameterAsEnum(parameters, self.MODE, context)
        automatic, find_all = mode == 1, mode == 2
        texts = tuple(t.strip() for t in self.parameterAsString(parameters, self.TEXT, context).split(";") if t.strip())
        tags = parse_tags(split_tags(self.parameterAsString(parameters, self.TAGS, context)))
        class_raster = self.parameterAsOutputLayer(parameters, self.CLASS_RASTER, context) if parameters.get(self.CLASS_RASTER) else None
        classic = self.backend_is_classic(parameters, context)
        request = prelabel.Request(
            raster, prompts=None if automatic or find_all else self.prompt_features(parameters, context, feedback),
            texts=texts if find_all else (), exemplars=self.exemplars(parameters, context, feedback) if find_all else None,
            class_name=self.parameterAsString(parameters, self.DEFAULT_CLASS, context) or "object", tags=tags,
            points_per_side=self.parameterAsInt(parameters, self.POINTS_PER_SIDE, context),
            min_score=self.parameterAsDouble(parameters, self.MIN_SCORE, context),
            min_stability=self.parameterAsDouble(parameters, self.MIN_STABILITY, context),
            simplify=self.parameterAsDouble(parameters, self.SIMPLIFY, context),
            min_area=self.parameterAsDouble(parameters, self.MIN_AREA, context),
            no_overlap=self.parameterAsBool(parameters, self.NO_OVERLAP, context),
            snap=self.parameterAsDouble(parameters, self.SNAP, context),
            mode="overwrite", class_raster=class_raster, classes=self.parameterAsFile(parameters, self.ONTOLOGY, context) or None,
            add_missing=self.parameterAsBool(parameters, self.ADD_MISSING, context),
            cluster=self.parameterAsString(parameters, self.SCHEDULER, context).strip() or None,
            **self.model_fields(parameters, context, classic), **self.raster_fields(parameters, context, raster),
            cache=self.parameterAsFile(parameters, self.CACHE, context) or None)
        if request.cluster:
            feedback.pushInfo(f"Pre-labeling on the Dask cluster {request.cluster}")
        from ...core.geo.raster import RasterSource

        with RasterSource(raster) as src:
            crs = src.crs.to_wkt()
        fields = label_fields()
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, fields, QgsWkbTypes.Type.MultiPolygon, crs_from_core(crs))
        try:
            result = prelabel.run(request, progress, FeatureSinkAdapter(sink, fields))
        except BaseException:
            del sink  # closes the file, which the streamed features had begun to fill
            discard_output(dest)
            raise
        skipped = result.details["skipped"]
        for number, reason in skipped:
            feedback.reportError(f"Prompt feature {number} skipped: {reason}", False)
        feedback.pushInfo(f"{result.count} objects, {len(skipped)} prompts skipped")
        return {self.OUTPUT: dest, self.CLASS_RASTER: class_raster, self.COUNT: result.count, self.SKIPPED: len(skipped)}

    def exemplars(self, parameters, context, feedback):
        from ...core.batch.concepts import Example

        source = self.parameterAsSource(parameters, self.EXEMPLARS, context)
        if source is None:
            if not self.parameterAsString(parameters, self.TEXT, context).strip():
                raise QgsProcessingException(self.tr("Find all needs a text or an exemplar layer."))
            return None
        return [Example(lab.geometry, lab.crs) for lab in source_to_labels(source, feedback)]

    def prompt_features(self, parameters, context, feedback):
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
            features.append(PromptFeature(lab.geometry, lab.crs, "" if name in (None, "") else str(name), own))
        if not features:
            raise QgsProcessingException(self.tr("The prompt layer has no features with a geometry."))
        return features
