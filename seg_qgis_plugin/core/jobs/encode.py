"""Pre-compute SAM embeddings of a raster (or of an area of it) into a cache folder, so later
prompts, pre-labeling and the assistant's SAM features answer in milliseconds.

Resumable by nature: tiles already in the cache (same raster, bands, stretch, tile and model) are
skipped. With `cluster` the tiles are encoded by Dask workers in blocks of `block_tiles`, one
model per worker; the cache is the same.
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, replace
from typing import List

from ..errors import SettingError
from .base import JobResult, ModelFields, RasterFields, ScaleFields, check_request_outputs, validate

RETURNS = "path"


@dataclass(frozen=True)
class Request(ModelFields, RasterFields, ScaleFields):
    """raster: any GDAL raster with a CRS; checkpoint: the SAM checkpoint (or exported model) whose
    embeddings are cached, in `cache` (None: the cache_folder setting), made or reused. float16:
    store embeddings as float16 (half the disk); skip_nodata: skip all-nodata tiles. aoi (shapely
    geometry in the raster CRS): encode only the tiles it touches."""

    raster: str
    _: KW_ONLY
    float16: bool = False
    skip_nodata: bool = True

    OUTPUTS = ()
    INPUTS = ("raster", "checkpoint")
    FOLDERS = ()

    def __post_init__(self):
        validate(self)
        if not self.checkpoint:
            raise SettingError("Encoding needs a SAM checkpoint; give --checkpoint (the classic backend has nothing to cache).")


def run(request: Request, progress=None, sink=None) -> JobResult:
    """Encode the tiles into the cache; the coverage (one square per cached tile of this raster and
    model, also from earlier runs) goes to `sink.add` when given. JobResult.outputs["cache"]: the
    folder; details["counts"]: tiles encoded, already cached, skipped (nodata)."""
    import os

    from ..batch.raster_job import encode_raster
    from ..progress import Part
    from ..settings import load_settings

    check_request_outputs(request)
    settings = load_settings()
    cache = request.cache or settings.cache_folder
    spec = request.model_spec()
    backend = spec.open()
    job = replace(request.raster_job(request.raster), skip_nodata=request.skip_nodata)
    encoded = 0
    if request.cluster:  # the workers fill the cache; the run below then only reports it
        from ..scale.runs import encode_blocks

        encoded = encode_blocks(job, backend, spec, cache, request.cluster, request.float16, request.block_tiles,
                                Part(progress, 0, 95)).get("encoded", 0)
    result = encode_raster(job, backend, cache, request.float16, Part(progress, 95, 100) if request.cluster else progress)
    counts = dict(result.counts)
    counts["encoded"], counts["cached"] = counts.get("encoded", 0) + encoded, counts.get("cached", 0) - encoded
    if settings.cache_size_limit_mb:  # keep the cache folder within the setting
        from ..engine.embedding_cache import EmbeddingCache

        EmbeddingCache(cache, request.float16).prune(settings.cache_size_limit_mb * 2 ** 20)
    if sink is not None:
        for record in result.coverage:
            sink.add(record)
    details = {"crs": result.crs, "counts": counts, "model": backend.model_id, "device": getattr(backend, "device", "cpu")}
    return JobResult(count=counts["encoded"], outputs={"cache": os.path.abspath(cache)}, details=details)


def describe(request: Request, result: JobResult) -> List[str]:
    """The line every door shows."""
    c = result.details["counts"]
    return [f"{c.get('encoded', 0)} tiles encoded, {c.get('cached', 0)} already cached, {c.get('nodata', 0)} skipped "
            f"(all nodata) in {result.outputs['cache']}"]
