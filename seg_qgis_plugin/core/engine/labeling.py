"""The engine's front door: one call per job, shared by the CLI, Processing and the map tools."""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

from .embedding_cache import EmbeddingCache
from ..errors import PromptError
from ..progress import Progress, check_canceled
from ..geo.prompts import Prompt
from ..geo.radiometry import compute_radiometry
from ..geo.raster import RasterSource
from ..geo.tiling import Tiling
from ..geo.vectorize import Cleanup
from .labels import Label, attributes
from .segmenter import Segmentation, Segmenter


def open_backend(checkpoint: Optional[str] = None, model_type: Optional[str] = None, backend: str = "auto",
                 device: str = "auto", threads: Optional[int] = None, precision: str = "auto"):
    """backend "sam" (torch) needs a checkpoint file, SAM's or SAM 2.1's (told apart by its
    weights); "sam2" insists on SAM 2.1; "onnx" (ONNX Runtime, no torch) needs a folder from `seg
    models export-onnx`; "sam3" needs a SAM 3 folder (facebook/sam3; concept prompts only); "classic"
    needs nothing; "auto" is sam3 for a SAM 3 folder, onnx for an exported folder, sam for a
    checkpoint file, else classic. precision (SAM's encoder): "auto" is bf16
    where the CPU computes it natively (AMX / AVX512-bf16) or on a GPU, else fp32."""
    from ..models.onnx_backend import is_exported_model, model_folder
    from ..models.sam3 import is_sam3_folder

    if backend == "sam3" or (backend in ("auto", "sam") and is_sam3_folder(checkpoint)):
        if not is_sam3_folder(checkpoint):
            raise PromptError("The sam3 backend needs the folder of a SAM 3 model (facebook/sam3 from Hugging Face) as --checkpoint.")
        from ..models.sam3 import Sam3Backend

        return Sam3Backend(checkpoint, device, threads)
    if checkpoint and is_exported_model(checkpoint):
        checkpoint = model_folder(checkpoint)
    if backend == "auto":
        backend = ("onnx" if is_exported_model(checkpoint) else "sam") if checkpoint else "classic"
    if backend == "classic":
        from ..models.classic import ClassicBackend

        return ClassicBackend()
    if backend not in ("sam", "sam2", "onnx"):
        raise PromptError(f"Unknown backend {backend!r}; choose sam, sam2, sam3, onnx or classic.")
    if backend == "onnx":
        if not checkpoint or not is_exported_model(checkpoint):
            raise PromptError("The onnx backend needs a model folder from `seg models export-onnx`; give it as --checkpoint.")
        from ..models.exported import open_exported

        return open_exported(checkpoint, threads)
    if not checkpoint:
        raise PromptError("The SAM backend needs a checkpoint file; give --checkpoint or choose --backend classic.")
    if is_exported_model(checkpoint):
        raise PromptError(f"{checkpoint} is an exported ONNX model; choose --backend onnx (or auto).")
    from ..models.checkpoint_files import checkpoint_family

    if backend == "sam2" or (os.path.isfile(checkpoint) and checkpoint_family(checkpoint) == "sam2"):
        from ..models.sam2 import Sam2Backend

        return Sam2Backend(checkpoint, model_type, device, threads)
    from ..models.sam import SamBackend

    return SamBackend(checkpoint, model_type, device, threads, precision)


def open_segmenter(raster: str, model, bands: Optional[Sequence[int]] = None,
                   value_range: Optional[Tuple[float, float]] = None, cache_dir: Optional[str] = None,
                   float16: bool = False, tiling: Tiling = Tiling(), max_windows: int = 16) -> Segmenter:
    """A Segmenter on `raster` seen through `bands` stretched over `value_range` (None: the global
    2-98 percentiles), with an embedding cache in `cache_dir` (float16: half the disk)."""
    source = RasterSource(raster)
    radiometry = compute_radiometry(source, bands, value_range=value_range)
    cache = EmbeddingCache(cache_dir, float16) if cache_dir else None
    return Segmenter(source, model, radiometry, tiling, cache, max_windows)


def provenance(segmenter: Segmenter) -> Dict[str, str]:
    """The attributes every feature from this segmenter shares: model, checkpoint, raster, radiometry."""
    model = segmenter.backend
    return {"model": model.model_id, "checkpoint_sha256": model.checkpoint_sha256 or "",
            "source": os.path.basename(segmenter.source.path), "radiometry": segmenter.radiometry.to_json()}


def to_label(segmentation: Segmentation, segmenter: Segmenter, class_name: str, tags: Optional[Dict[str, str]] = None,
             status: str = "prelabel", cleanup: Cleanup = Cleanup(), geometry=None) -> Optional[Label]:
    """A Segmentation as a Label with full provenance, or None when nothing is left after clean-up.
    `geometry`: the mask's polygon when the caller has already made it (a previewed click), so a
    mask is vectorized once."""
    if geometry is None:
        geometry = cleanup.geometry(segmentation.mask, segmentation.transform)
    if geometry is None:
        return None
    attrs = attributes(class_name, tags, score=segmentation.score, stability=segmentation.stability,
                       prompt_type=segmentation.prompt_type, prompt_count=segmentation.prompt_count,
                       window=segmentation.window_label, status=status, **provenance(segmenter))
    return Label(geometry, segmentation.crs, attrs)


def segment_prompts(segmenter: Segmenter, prompts: Sequence[Prompt], class_name: str, tags: Optional[Dict[str, str]] = None,
                    cleanup: Cleanup = Cleanup(), status: str = "prelabel",
                    progress: Optional[Progress] = None) -> Tuple[List[Label], List[Segmentation]]:
    """Segment each prompt as one object. Returns the labels (empty results dropped) and the raw
    segmentations (for probability rasters)."""
    labels, segmentations = [], []
    for i, prompt in enumerate(prompts):
        check_canceled(progress)
        segmentation = segmenter.segment(prompt, progress=progress)
        segmentations.append(segmentation)
        label = to_label(segmentation, segmenter, class_name, tags, status, cleanup)
        if label is not None:
            labels.append(label)
        if progress is not None:
            progress.set_progress(100.0 * (i + 1) / len(prompts))
    return labels, segmentations
