"""seg:encoderaster: pre-compute SAM embeddings for a raster (or an area of it) into a cache folder."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFolderDestination,
    QgsWkbTypes,
)

from ...qgis_adapters.crs import crs_from_core
from ...qgis_adapters.sinks import add_features, make_fields
from .base import SegAlgorithm

COVERAGE_FIELDS = (("window", "str"), ("scale", "int"), ("model", "str"), ("created", "str"), ("file", "str"))


class EncodeRasterAlgorithm(SegAlgorithm):
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
        self.addParameter(QgsProcessingParameterFolderDestination(self.CACHE, self.tr("Embedding cache folder")))
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Encoded tiles (coverage)")))
        for name, text in (("ENCODED", "Tiles encoded now"), ("CACHED", "Tiles already cached"), ("NODATA", "Tiles skipped (all nodata)")):
            self.addOutput(QgsProcessingOutputNumber(name, self.tr(text)))

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.batch.raster_job import RasterJob, encode_raster

        raster = self.raster_path(parameters, self.INPUT, context)
        tile, overlap, gsd = self.tiling(parameters, context)
        bands, stretch = self.radiometry_choice(parameters, context)
        cache = self.parameterAsFileOutput(parameters, self.CACHE, context)
        job = RasterJob(raster, bands, stretch, tile, overlap, gsd, self.aoi(parameters, context, raster),
                        self.parameterAsBool(parameters, self.SKIP_NODATA, context))
        backend = self.sam_backend(parameters, context)
        feedback.pushInfo(f"Model {backend.model_id} on {getattr(backend, 'device', 'cpu')}")
        float16 = self.parameterAsBool(parameters, self.FLOAT16, context)
        scheduler = self.parameterAsString(parameters, self.SCHEDULER, context).strip()
        encoded = 0
        if scheduler:  # the workers fill the cache; the run below then only reports it
            from ...core.scale.runs import encode_blocks

            feedback.pushInfo(f"Encoding on the Dask cluster {scheduler}")
            encoded = encode_blocks(job, backend, self.model_spec(parameters, context), cache, scheduler, float16,
                                    job.skip_nodata, progress=progress)["encoded"]
        result = encode_raster(job, backend, cache, float16, progress)
        result.counts["encoded"] += encoded
        result.counts["cached"] -= encoded
        fields = make_fields(COVERAGE_FIELDS)
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, fields, QgsWkbTypes.Type.Polygon, crs_from_core(result.crs))
        add_features(sink, fields, result.coverage, multi=False)
        c = result.counts
        feedback.pushInfo(f"{c['encoded']} tiles encoded, {c['cached']} already cached, {c['nodata']} skipped (all nodata).")
        return {self.CACHE: cache, self.OUTPUT: dest, "ENCODED": c["encoded"], "CACHED": c["cached"], "NODATA": c["nodata"]}
