"""What every Seg algorithm shares: naming, help, error translation, and the model and raster
parameters the SAM algorithms have in common."""
from __future__ import annotations

import os
import re

from typing import Optional, Tuple

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsRasterLayer,
    QgsSettings,
)
from qgis.PyQt.QtCore import QCoreApplication

from ...core.errors import Canceled, SegError
from ...core.models import checkpoints
from ...qgis_adapters.feedback import FeedbackProgress
from ...qgis_adapters.layers import raster_layer_path

MODEL_TYPES = ("auto",) + checkpoints.MODEL_TYPES
DEVICES = checkpoints.DEVICES
# Every algorithm with a BACKEND parameter offers these, in this order; the default (the first)
# works without downloads.
BACKENDS = ("classic", "sam")
DEFAULT_BACKEND = 0


class SegAlgorithm(QgsProcessingAlgorithm):
    """Subclasses set ALG_ID, DISPLAY, GROUP, GROUP_ID, HELP and implement `run_seg` (QgsProcessingAlgorithm already has a `run`).

    `run_seg(parameters, context, feedback, progress)` returns the outputs dict; a SegError (a user
    mistake or a cancellation) becomes a QgsProcessingException with its one sentence.
    REQUIRES: the deps groups it needs (deps.PINS); canExecute() names what of them is missing.
    No algorithm sets FlagNoThreading: Processing runs them in the background, and the work itself
    goes to one long-lived thread where pyproj is safe (engine_thread).
    """

    AOI = "AOI"
    BACKEND = "BACKEND"
    BANDS = "BANDS"
    CHECKPOINT = "CHECKPOINT"
    DEVICE = "DEVICE"
    GSD = "GSD"
    ONTOLOGY = "ONTOLOGY"
    INPUT = "INPUT"
    MODEL_TYPE = "MODEL_TYPE"
    OVERLAP = "OVERLAP"
    SCHEDULER = "SCHEDULER"
    STRETCH = "STRETCH"
    TILE = "TILE"

    ALG_ID = ""
    DISPLAY = ""
    GROUP = "Large rasters"
    GROUP_ID = "largerasters"
    HELP = ""
    REQUIRES = ("core",)

    def name(self):
        return self.ALG_ID

    def displayName(self):  # noqa: N802 (QGIS API)
        return self.tr(self.DISPLAY)

    def group(self):
        return self.tr(self.GROUP)

    def groupId(self):  # noqa: N802
        return self.GROUP_ID

    def shortHelpString(self):  # noqa: N802
        return self.tr(self.HELP)

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("SegProcessing", text)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def canExecute(self):  # noqa: N802
        from ... import deps

        sentence = deps.missing_sentence(self.REQUIRES)
        return (False, sentence) if sentence else (True, "")

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        able, sentence = self.canExecute()  # qgis_process runs an algorithm without asking
        if not able:
            raise QgsProcessingException(sentence)
        from .engine_thread import run_in_engine_thread

        from .output_styles import style_when_loaded

        return style_when_loaded(run_in_engine_thread(lambda: self._process(parameters, context, feedback)), context)

    def _process(self, parameters, context, feedback):
        from .destinations import guarded_run
        from .parameter_ranges import check_numbers, check_scheduler

        check_numbers(self, parameters, context)  # NaN, infinity, out of range: one sentence, before any work
        check_scheduler(self, parameters, context)
        try:
            with guarded_run(self, parameters, context):  # no destination names an input; all appear or none
                return self.run_seg(parameters, context, feedback, FeedbackProgress(feedback))
        except Canceled as exc:
            raise QgsProcessingException(str(exc)) from exc
        except SegError as exc:
            raise QgsProcessingException(str(exc)) from exc
        except ValueError as exc:  # e.g. a tile size the grid refuses: already one sentence
            raise QgsProcessingException(str(exc)) from exc

    def run_seg(self, parameters, context, feedback, progress: FeedbackProgress) -> dict:
        raise NotImplementedError

    def addParameter(self, definition, createOutput=True):  # noqa: N802,N803 (QGIS API)
        """Numeric parameters take their minimum and maximum from core.ranges (parameter_ranges)."""
        if isinstance(definition, QgsProcessingParameterNumber):
            from .parameter_ranges import apply_range

            apply_range(definition)
        return super().addParameter(definition, createOutput)

    # Layers and sinks QGIS binds to the thread that runs the algorithm are made there (engine_thread).
    def parameterAsSink(self, *args, **kwargs):  # noqa: N802
        return _on_caller(super().parameterAsSink, *args, **kwargs)

    def parameterAsSource(self, *args, **kwargs):  # noqa: N802
        return _on_caller(super().parameterAsSource, *args, **kwargs)

    def parameterAsLayer(self, *args, **kwargs):  # noqa: N802
        return _on_caller(super().parameterAsLayer, *args, **kwargs)

    def parameterAsLayerList(self, *args, **kwargs):  # noqa: N802
        return _on_caller(super().parameterAsLayerList, *args, **kwargs)

    def parameterAsRasterLayer(self, *args, **kwargs):  # noqa: N802
        return _on_caller(super().parameterAsRasterLayer, *args, **kwargs)

    def parameterAsVectorLayer(self, *args, **kwargs):  # noqa: N802
        return _on_caller(super().parameterAsVectorLayer, *args, **kwargs)

    # -- shared parameter helpers -----------------------------------------------------------------

    def add_backend(self) -> None:
        """The BACKEND enum, the same in every algorithm that has one (BACKENDS, default classic)."""
        self.addParameter(QgsProcessingParameterEnum(self.BACKEND, self.tr("Backend"), list(BACKENDS), defaultValue=DEFAULT_BACKEND))

    def backend_is_classic(self, parameters, context) -> bool:
        return BACKENDS[self.parameterAsEnum(parameters, self.BACKEND, context)] == "classic"

    def raster_path(self, parameters, name, context) -> str:
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, name))
        return raster_layer_path(layer)

    def add_tiling(self, tile: int, overlap: int, gsd: bool = True) -> None:
        self.addParameter(QgsProcessingParameterNumber(self.TILE, self.tr("Tile size (pixels)"), QgsProcessingParameterNumber.Type.Integer, tile, minValue=16))
        self.addParameter(QgsProcessingParameterNumber(self.OVERLAP, self.tr("Tile overlap (pixels)"), QgsProcessingParameterNumber.Type.Integer, overlap, minValue=0))
        if gsd:
            self.addParameter(QgsProcessingParameterNumber(
                self.GSD, self.tr("Working resolution (map units per pixel; 0 = full resolution)"), QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0))

    def tiling(self, parameters, context) -> Tuple[int, int, Optional[float]]:
        tile = self.parameterAsInt(parameters, self.TILE, context)
        overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
        if overlap >= tile:
            raise QgsProcessingException(self.tr("The overlap ({}) must be smaller than the tile size ({}).").format(overlap, tile))
        gsd = self.parameterAsDouble(parameters, self.GSD, context) if self.parameterDefinition(self.GSD) is not None else 0.0
        return tile, overlap, gsd or None

    def add_aoi(self) -> None:
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.AOI, self.tr("Area of interest (polygons; empty = whole raster)"), [QgsProcessing.SourceType.TypeVectorPolygon], optional=True))

    def aoi(self, parameters, context, raster: str):
        """The union of the AOI polygons in the raster CRS (shapely), or None."""
        source = self.parameterAsSource(parameters, self.AOI, context)
        if source is None:
            return None
        from shapely import union_all

        from ...core.geo.raster import RasterSource
        from ...core.geo.vectorize import reproject_geometry
        from ...qgis_adapters.layers import source_to_labels

        labels = source_to_labels(source)
        if not labels:
            raise QgsProcessingException(self.tr("The area of interest has no polygons."))
        with RasterSource(raster) as src:
            crs = src.crs.to_wkt()
        return reproject_geometry(union_all([lab.geometry for lab in labels]), labels[0].crs, crs)

    def add_model(self, checkpoint_optional: bool) -> None:
        self.addParameter(QgsProcessingParameterFile(
            self.CHECKPOINT, self.tr("SAM model: a checkpoint (.pth) or an exported ONNX model (its folder or manifest.json)"),
            QgsProcessingParameterFile.Behavior.File, "", QgsSettings().value("seg/dock/checkpoint", "") or None,
            optional=checkpoint_optional))
        self.addParameter(QgsProcessingParameterEnum(self.MODEL_TYPE, self.tr("Model type"), list(MODEL_TYPES), defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, self.tr("Device"), list(DEVICES), defaultValue=0))
        self.addParameter(QgsProcessingParameterBand(
            self.BANDS, self.tr("Bands for SAM's red, green, blue (one band is repeated; none = suggested)"),
            parentLayerParameterName=self.INPUT, optional=True, allowMultiple=True))
        self.addParameter(QgsProcessingParameterString(self.STRETCH, self.tr("Stretch min,max (empty = 2-98 percentiles of the whole raster)"), optional=True))

    def sam_backend(self, parameters, context):
        from ...core.engine.labeling import open_backend

        spec = self.model_spec(parameters, context)
        return open_backend(spec.checkpoint, spec.model_type, spec.backend, spec.device)

    def model_spec(self, parameters, context):
        """The SAM model these parameters name, as cluster workers open it (core.scale.cluster.ModelSpec)."""
        from ...core.scale.cluster import ModelSpec

        from ...core.models.onnx_backend import is_exported_model, model_folder

        checkpoint = self.parameterAsFile(parameters, self.CHECKPOINT, context)
        if not checkpoint:
            raise QgsProcessingException(self.tr("This needs a SAM model: a checkpoint (.pth) or an exported ONNX model."))
        model_type = MODEL_TYPES[self.parameterAsEnum(parameters, self.MODEL_TYPE, context)]
        device = DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)]
        backend = "onnx" if is_exported_model(checkpoint) else "sam"
        return ModelSpec(os.path.abspath(model_folder(checkpoint)), None if model_type == "auto" else model_type, backend, device)

    def model_fields(self, parameters, context, classic: bool = False) -> dict:
        """The model parameters as a request's ModelFields (core.jobs.base); classic: the
        weights-free backend instead of the SAM model the parameters name."""
        if classic:
            return dict(backend="classic")
        spec = self.model_spec(parameters, context)
        return dict(checkpoint=spec.checkpoint, model_type=spec.model_type, backend=spec.backend, device=spec.device)

    def raster_fields(self, parameters, context, raster: str) -> dict:
        """The tiling, radiometry and area-of-interest parameters as a request's RasterFields."""
        tile, overlap, gsd = self.tiling(parameters, context)
        bands, stretch = self.radiometry_choice(parameters, context)
        aoi = self.aoi(parameters, context, raster) if self.parameterDefinition(self.AOI) is not None else None
        return dict(bands=bands, stretch=stretch, tile=tile, overlap=overlap, gsd=gsd, aoi=aoi)

    def add_scheduler(self) -> None:
        self.addParameter(QgsProcessingParameterString(
            self.SCHEDULER, self.tr("Dask scheduler: local:N worker processes or tcp://HOST:PORT (empty = here)"), optional=True))

    def radiometry_choice(self, parameters, context):
        """(bands or None, stretch or None) from the BANDS and STRETCH strings."""
        bands = tuple(self.parameterAsInts(parameters, self.BANDS, context)) or None
        if bands is not None and len(bands) not in (1, 3):
            raise QgsProcessingException(self.tr("Choose one band or three bands, not {}.").format(len(bands)))
        return bands, parse_numbers(self.parameterAsString(parameters, self.STRETCH, context), float, "stretch")

    def add_raster(self, name: str, description: str) -> None:
        """A raster input that starts on the active raster layer, as a user expects."""
        self.addParameter(QgsProcessingParameterRasterLayer(name, description, _active_raster_id()))

    def add_ontology(self) -> None:
        self.addParameter(QgsProcessingParameterFile(
            self.ONTOLOGY, self.tr("Ontology: classes with stable codes (JSON or YAML; empty = codes for this file only)"),
            QgsProcessingParameterFile.Behavior.File, fileFilter="Ontology (*.json *.yaml *.yml)", optional=True))

    def ontology(self, parameters, context):
        """The ontology file's classes, or None."""
        path = self.parameterAsFile(parameters, self.ONTOLOGY, context)
        if not path:
            return None
        from ...core.engine.ontology import load_ontology

        return load_ontology(path)

    def add_bool(self, name: str, text: str, default: bool) -> None:
        self.addParameter(QgsProcessingParameterBoolean(name, self.tr(text), default))


def _on_caller(function, *args, **kwargs):
    from .engine_thread import on_caller

    return on_caller(function, *args, **kwargs)


def _active_raster_id():
    try:
        from qgis.utils import iface
    except ImportError:
        return None
    layer = iface.activeLayer() if iface is not None else None
    return layer.id() if isinstance(layer, QgsRasterLayer) else None


def split_tags(text: str):
    """'date=2024-06-01; season=summer' (the dock's ;) or with commas -> ['date=2024-06-01', 'season=summer']."""
    return [t.strip() for t in re.split(r"[;,\n]", text or "") if t.strip()]


def parse_numbers(text: str, kind, what: str):
    """"1,2;3" -> (1, 2, 3) of `kind`, or None for an empty text; one sentence for anything else."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return tuple(kind(v) for v in text.replace(";", ",").split(","))
    except ValueError:
        raise QgsProcessingException(f"Cannot read the {what} {text!r}; write numbers separated by commas.") from None


def discard_output(dest: str) -> None:
    """Remove a sink's file output ("path" or "path|layername=..."), e.g. after a cancellation;
    memory layers and other providers are left to QGIS."""
    path = dest.split("|")[0]
    if os.path.isfile(path):
        os.remove(path)
