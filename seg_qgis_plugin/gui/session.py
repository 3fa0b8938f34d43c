"""What a labeling session is made of, as plain values the dock fills in and the controller opens.

No Qt and no QGIS here: the dock turns its widgets into a `SessionConfig`, the controller turns a
`SessionConfig` into a model session and a `Segmenter` (in a background task, since loading a SAM
checkpoint takes seconds).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple


@dataclass(frozen=True)
class SessionConfig:
    """raster: a GDAL path; backend "sam" (needs `checkpoint`) or "classic" (no weights);
    model_type None detects it from the checkpoint; bands: one or three 1-based bands, or None for
    the raster's own suggestion; value_range: a fixed stretch (min, max), or None for per-band 2-98
    percentiles of global statistics; cache_dir: where embeddings are kept (a cache made by
    `seg encode` or seg:encoderaster with the same tile, overlap, bands and stretch is reused)."""

    raster: str
    backend: str = "classic"
    checkpoint: Optional[str] = None
    model_type: Optional[str] = None
    device: str = "auto"
    bands: Optional[Tuple[int, ...]] = None
    value_range: Optional[Tuple[float, float]] = None
    cache_dir: Optional[str] = None
    tile: int = 1024
    overlap: int = 256


def open_session(config: SessionConfig, backend_factory: Optional[Callable] = None):
    """SessionConfig -> (Segmenter, raster CRS as WKT). Runs in a worker task: loading a checkpoint
    takes seconds. The raster fingerprint is computed here too, so that the UI thread can later ask
    `is_encoded` without touching the raster file (rasterio and GDAL objects stay in one thread)."""
    from ..core.engine.labeling import open_backend, open_segmenter
    from ..core.geo.tiling import Tiling

    if backend_factory is not None:
        backend = backend_factory(config)
    else:
        backend = open_backend(config.checkpoint, config.model_type, "auto" if config.backend == "sam" else config.backend,
                               config.device)
    segmenter = open_segmenter(config.raster, backend, config.bands, config.value_range, cache_dir=config.cache_dir,
                               tiling=Tiling(config.tile, config.overlap))
    segmenter.source.fingerprint()
    return segmenter, segmenter.source.crs.to_wkt()


def missing_sam_modules() -> Tuple[str, ...]:
    """What SAM on torch lacks here (found without importing anything)."""
    from .. import deps

    return tuple(deps.missing(("sam",)))


def sam_status() -> Tuple[bool, str]:
    """(SAM usable at all, one sentence for the dock): torch runs .pth checkpoints, ONNX Runtime
    runs exported models; either makes SAM usable."""
    from .. import deps

    torch_missing, onnx_missing = deps.missing(("sam",)), deps.missing(("onnx",))
    if not torch_missing:
        sam2_missing = deps.missing(("sam2",))
        sam2 = f" ({deps.sentence_for(('sam2',), sam2_missing).rstrip('.')})" if sam2_missing else ""
        return True, ("SAM is available: choose a checkpoint (.pth: vit_b, vit_l, vit_h; .pt: SAM 2.1) or an exported ONNX model, "
                      f"or Download one{sam2}.")
    if not onnx_missing:
        return True, ("SAM runs on ONNX Runtime here: choose an exported ONNX model (its folder or manifest.json). "
                      + deps.sentence_for(("sam",), torch_missing).replace("SAM on torch", "A .pth checkpoint"))
    return False, deps.sentence_for(("sam",), torch_missing) + " The classic backend works meanwhile."


@dataclass(frozen=True)
class RasterDescription:
    """What the dock pre-fills from a raster: band count, suggested bands (three, 1-based), and the
    per-band stretch from global statistics (low, high per channel)."""

    band_count: int
    bands: Tuple[int, int, int]
    low: Tuple[float, float, float]
    high: Tuple[float, float, float]
    crs_name: str

    @property
    def value_range(self) -> Tuple[float, float]:
        """One (min, max) covering all three channels, the dock's default for a fixed stretch."""
        return min(self.low), max(self.high)


def describe_raster(path: str, bands: Optional[Tuple[int, ...]] = None) -> RasterDescription:
    """Read a raster's statistics (a decimated view, at most 1024 pixels a side) for the dock.
    Raises SegError subclasses with one sentence for unreadable rasters or bad bands."""
    from ..core.geo.radiometry import compute_radiometry
    from ..core.geo.raster import RasterSource

    with RasterSource(path) as source:
        radiometry = compute_radiometry(source, bands)
        info = source.info()
    return RasterDescription(info.count, tuple(radiometry.bands), tuple(radiometry.low), tuple(radiometry.high), info.crs_name)
