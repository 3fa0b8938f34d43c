"""Pre-labeling and encoding in blocks of tiles: serially or on a cluster, resumable or not.

The tile list is cut into blocks of `block_tiles` consecutive tiles (grid order). Each block gives
the pieces of its tiles (prelabel.tile_pieces), wherever it runs; blocks are stored in the resume
manifest as they finish (any order), and the merge takes all pieces in block order, which is the
serial run's order, through the same labels_from_pieces. So serial, `--cluster` and `--resume`
runs give the same features (only the `created` time differs).
"""
from __future__ import annotations

import warnings
from typing import Callable, Dict, List, Optional

from ..batch.prelabel import PrelabelOptions, check_automatic, labels_from_pieces, tile_pieces
from ..errors import SegWarning
from ..geo.vectorize import check_cleanup
from ..progress import Progress, check_canceled
from .block_run import BlockRun
from .cluster import ModelSpec, block_encode, block_pieces, open_client, run_blocks
from .manifest import ResumeGuard, ResumeManifest, run_fingerprint


def split_blocks(tiles: List, block_tiles: int) -> Dict[int, List]:
    """{block number: tiles} of `block_tiles` consecutive tiles each (the last may be shorter)."""
    size = max(1, int(block_tiles))
    return {i // size: tiles[i:i + size] for i in range(0, len(tiles), size)}


def prelabel_blocks(job, backend, options: PrelabelOptions = PrelabelOptions(), run: BlockRun = BlockRun(),
                    progress: Optional[Progress] = None, on_label: Optional[Callable] = None):
    """Automatic pre-labeling of `job` (RasterJob) as prelabel_automatic does, in blocks.
    backend: the model here (for provenance and serial work). Returns (PrelabelResult, manifest or
    None); call manifest.finish() once the output is written."""
    check_cleanup(options.simplify, options.min_area, options.fill_holes)
    check_automatic(backend)
    grid = options.grid()
    with job.open(backend, run.cache_dir) as segmenter, ResumeGuard() as guard:
        tiles = list(job.tiles(segmenter) or segmenter.grid)
        blocks = split_blocks(tiles, run.block_tiles)
        manifest = None
        if run.output is not None:
            fp_options = dict(grid, block_tiles=run.block_tiles, merge_iou=options.merge_iou)
            fingerprint = dict(run_fingerprint(segmenter, tiles, fp_options), request=run.request)
            manifest = guard.keep(ResumeManifest(run.output, fingerprint, run.resume))
        done: Dict[int, List] = {b: manifest.load(b) for b in blocks if manifest and manifest.done(b)}

        def finished(block: int, pieces: List) -> None:
            if manifest is not None:
                manifest.save(block, pieces)
            done[block] = pieces
            if progress is not None:
                progress.set_progress(95.0 * len(done) / max(len(blocks), 1))

        todo = {b: t for b, t in blocks.items() if b not in done}
        if run.cluster and todo:
            if run.model is None:
                raise ValueError("prelabel_blocks needs a ModelSpec to run on a cluster")
            with open_client(run.cluster) as client:
                run_blocks(client, block_pieces, todo, (job, run.model, run.cache_dir, grid), finished, progress)
        else:
            for block, block_list in todo.items():
                pieces = []
                for tile in block_list:
                    check_canceled(progress)
                    pieces.extend(tile_pieces(segmenter, tile, **grid))
                finished(block, pieces)
        pieces = [p for b in sorted(done) for p in done[b]]
        result = labels_from_pieces(segmenter, pieces, options, on_label)
    if progress is not None:
        progress.set_progress(100.0)
    if not result.count and tiles:
        warnings.warn(SegWarning("Automatic pre-labeling found no object; lower the score or stability thresholds."))
    return result, manifest


def encode_blocks(job, backend, model: ModelSpec, cache_dir: str, cluster: str, float16: bool = False,
                  block_tiles: int = 4, progress: Optional[Progress] = None) -> Dict[str, int]:
    """Encode `job`'s tiles into `cache_dir` on a cluster (resumable by nature: cached tiles are
    skipped; all-nodata tiles too when job.skip_nodata). Returns the summed counts (encoded,
    cached, nodata)."""
    from ..errors import SegError

    if not backend.cacheable:
        raise SegError(f"The {backend.model_id} backend has no embeddings to cache; choose a SAM checkpoint.")
    with job.open(backend, cache_dir, float16) as segmenter:
        tiles = list(job.tiles(segmenter) or segmenter.grid)
    blocks = split_blocks(tiles, block_tiles)
    counts: Dict[str, int] = {}
    finished = set()

    def add(block: int, block_counts: Dict[str, int]) -> None:
        finished.add(block)
        for k, v in block_counts.items():
            counts[k] = counts.get(k, 0) + v
        if progress is not None:
            progress.set_progress(100.0 * len(finished) / max(len(blocks), 1))

    with open_client(cluster) as client:
        run_blocks(client, block_encode, blocks, (job, model, cache_dir, job.skip_nodata, float16), add, progress)
    return counts


def prelabel_scaled(job, backend, features=None, options: PrelabelOptions = PrelabelOptions(),
                    run: BlockRun = BlockRun(), progress: Optional[Progress] = None, on_label: Optional[Callable] = None):
    """raster_job.prelabel_raster in blocks: prompt-layer mode when `features` is given (their own
    fields and tags travel on them; see prompt_runs.py), else automatic mode (prelabel_blocks).
    Returns (PrelabelResult, manifest or None); call manifest.finish() once the output is written."""
    if features is not None:
        from .prompt_runs import prelabel_prompt_blocks

        return prelabel_prompt_blocks(job, backend, features, options, run, progress, on_label)
    return prelabel_blocks(job, backend, options, run, progress, on_label)
