"""seg:encoderaster: pre-compute SAM embeddings for a raster (or an area of it) into a cache folder."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsWkbTypes,
)

from ...qgis_adapters.crs import crs_from_core
from ...qgis_adapters.sinks import FeatureSinkAdapter, make_fields
from .base import SegAlgorithm

COVERAGE_FIELDS = (("window", "str"), ("scale", "int"), ("model", "str"), ("created", "str"), ("file", "str"))


class EncodeRasterAlgorithm(SegAlgorithm):
    BLOCK_TILES = "BLOCK_TILES"
    CACHE = "CACHE"
    CACHE_FOLDERS = (CACHE,)  # added to and reused, never replaced: not checked as an output (destinations.py)
    FLOAT16 = "FLOAT16"
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"
    SKIP_NODATA = "SKIP_NODATA"

    ALG_ID = "encoderaster"
    DISPLAY = "Encode raster (SAM embeddings)"
    REQUIRES = ("core",)  # SAM on torch or on ONNX Runtime: the model chosen says which, when it opens
    HELP = ("Runs SAM's image encoder on every tile of a raster (or of an area of interest) and stores the embeddings in "
            "a cache folder, so later prompts, pre-labeling and the map tools answer in milliseconds. Encoding is the "
            "expensive step: seconds per tile on a CPU, far less on a GPU; a cache made on a GPU server works on a laptop.\n\n"
            "Resumable: tiles already in the cache (same raster, bands, stretch, tile and model) are skipped, so a second "
            "run encodes only what is missing. Tiles that are all nodata are skipped.\n\n"
            "Outputs the cache folder and a coverage layer with one polygon per cached tile of this raster and model, so "
            "you can see what is ready. With a Dask scheduler (local:N, or tcp://HOST:PORT of a running cluster) the tiles "
            "are encoded by its workers, one model per worker.\n\nNeeds torch and segment-anything, and a SAM checkpoint file (vit_b, vit_l or vit_h).")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_raster(self.INPUT, self.tr("Raster"))
        self.add_model(checkpoint_optional=False)
        self.add_tiling(1024, 256)
        self.add_aoi()
        self.add_bool(self.SKIP_NODATA, "Skip tiles that are all nodata", True)
        self.add_bool(self.FLOAT16, "Store embeddings as float16 (half the disk)", False)
        self.add_scheduler()
        self.addParameter(QgsProcessingParameterNumber(self.BLOCK_TILES, self.tr("Tiles per cluster task"),
                                                       QgsProcessingParameterNumber.Type.Integer, 4, minValue=1))
        self.addParameter(QgsProcessingParameterFolderDestination(self.CACHE, self.tr("Embedding cache folder")))
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Encoded tiles (coverage)")))
        for name, text in (("ENCODED", "Tiles encoded now"), ("CACHED", "Tiles already cached"), ("NODATA", "Tiles skipped (all nodata)")):
            self.addOutput(QgsProcessingOutputNumber(name, self.tr(text)))

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.geo.raster import RasterSource
        from ...core.jobs import encode

        raster = self.raster_path(parameters, self.INPUT, context)
        request = encode.Request(
            raster, cache=self.parameterAsFileOutput(parameters, self.CACHE, context),
            float16=self.parameterAsBool(parameters, self.FLOAT16, context),
            skip_nodata=self.parameterAsBool(parameters, self.SKIP_NODATA, context),
            cluster=self.parameterAsString(parameters, self.SCHEDULER, context).strip() or None,
            block_tiles=self.parameterAsInt(parameters, self.BLOCK_TILES, context),
            **self.model_fields(parameters, context), **self.raster_fields(parameters, context, raster))
        if request.cluster:
            feedback.pushInfo(f"Encoding on the Dask cluster {request.cluster}")
        with RasterSource(raster) as src:
            crs = src.crs.to_wkt()
        fields = make_fields(COVERAGE_FIELDS)
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, fields, QgsWkbTypes.Type.Polygon, crs_from_core(crs))
        result = encode.run(request, progress, FeatureSinkAdapter(sink, fields, multi=False))
        feedback.pushInfo(f"Model {result.details['model']} on {result.details['device']}")
        for line in encode.describe(request, result):
            feedback.pushInfo(line)
        c = result.details["counts"]
        return {self.CACHE: request.cache, self.OUTPUT: dest, "ENCODED": c["encoded"], "CACHED": c["cached"], "NODATA": c["nodata"]}
