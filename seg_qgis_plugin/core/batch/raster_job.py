"""Whole-raster jobs behind the Processing algorithms (and usable from any script): encode a raster
into an embedding cache, and pre-label it. One call each; progress and cancellation through the
host protocol; memory bounded by the tile.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from ..errors import SegError
from ..engine.embedding_cache import EmbeddingCache
from ..engine.segmenter import Segmenter
from ..geo.radiometry import compute_radiometry
from .prelabel import PrelabelOptions, PrelabelResult, PromptFeature, prelabel_automatic, prelabel_from_prompts
from ..progress import NullProgress, Progress
from ..geo.raster import RasterSource
from ..engine.labels import Label
from .tile_index import TileRecord, cache_coverage, select_tiles
from ..geo.tiling import Tiling, scale_for_gsd
from ..geo.vectorize import check_cleanup


@dataclass(frozen=True)
class RasterJob:
    """Where and how a raster is seen by the model: bands (1-based, one or three), stretch
    (min, max) or None for global percentiles, tile and overlap in model pixels, the working
    resolution as a ground sampling distance `gsd` (map units per pixel) or else a decimation
    `scale`, area of interest `aoi` (shapely geometry in the raster CRS, or None), whether
    all-nodata tiles are skipped, and how many tiles one object may be followed into."""

    raster: str
    bands: Optional[Sequence[int]] = None
    stretch: Optional[Sequence[float]] = None
    tile: int = 1024
    overlap: int = 256
    gsd: Optional[float] = None
    aoi: object = None
    skip_nodata: bool = True
    max_windows: int = 16
    scale: int = 1

    def open(self, backend, cache_dir: Optional[str] = None, float16: bool = False) -> Segmenter:
        """The job's Segmenter on the raster, opened once; the working scale is decided here."""
        source = RasterSource(self.raster)
        try:
            scale = scale_for_gsd(source.info().resolution[0], self.gsd) if self.gsd else self.scale
            radiometry = compute_radiometry(source, self.bands, value_range=_pair(self.stretch))
            cache = EmbeddingCache(cache_dir, float16) if cache_dir else None
            return Segmenter(source, backend, radiometry, Tiling(self.tile, self.overlap, scale), cache, self.max_windows)
        except BaseException:
            source.close()
            raise

    def tiles(self, segmenter: Segmenter):
        """The tiles inside the area of interest, or None for the whole grid."""
        if self.aoi is None:
            return None
        return [r.tile for r in select_tiles(segmenter.source, segmenter.grid, self.aoi, False)]


@dataclass
class EncodeResult:
    counts: Dict[str, int]
    coverage: List[TileRecord]
    crs: str


def encode_raster(job: RasterJob, backend, cache_dir: str, float16: bool = False,
                  progress: Optional[Progress] = None) -> EncodeResult:
    """Encode the job's tiles into `cache_dir`; tiles already there are skipped (resumable).
    Returns the counts (encoded, cached, nodata) and the coverage of the cache for this raster
    and model (every cached tile, also from earlier runs)."""
    if not backend.cacheable:
        raise SegError(f"The {backend.model_id} backend has no embeddings to cache; choose a SAM checkpoint.")
    progress = progress or NullProgress()
    with job.open(backend, cache_dir, float16) as segmenter:
        counts = segmenter.encode(job.tiles(segmenter), job.skip_nodata, progress)
        coverage = cache_coverage(segmenter.cache, segmenter.source.transform, segmenter.source.fingerprint(), backend.model_id)
        return EncodeResult(counts, coverage, segmenter.source.crs.to_wkt())


def prelabel_raster(job: RasterJob, backend, features: Optional[Sequence[PromptFeature]] = None,
                    cache_dir: Optional[str] = None, options: PrelabelOptions = PrelabelOptions(),
                    progress: Optional[Progress] = None, on_label: Optional[Callable[[Label], None]] = None) -> PrelabelResult:
    """Prompt-layer mode when `features` is given (one object per feature), else automatic mode
    over the job's tiles. Uses `cache_dir` when given (embeddings found there are reused, new ones
    are added). on_label receives each object as it is found (then the result keeps none: memory
    stays bounded by the tile however large the raster)."""
    check_cleanup(options.simplify, options.min_area, options.fill_holes)
    with job.open(backend, cache_dir) as segmenter:
        if features is not None:
            return prelabel_from_prompts(segmenter, features, options, progress, on_label)
        return prelabel_automatic(segmenter, job.tiles(segmenter), options, progress, on_label)


def _pair(values):
    if not values:
        return None
    if len(values) != 2:
        raise SegError(f"A stretch is two numbers, min and max, not {len(values)}.")
    return float(values[0]), float(values[1])
