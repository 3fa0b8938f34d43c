"""Pre-labeling from a prompt layer in blocks: serially or on a cluster, resumable or not.

The prompts are put in the serial run's order (prelabel.order_prompts: by start tile, then feature
number) and cut into blocks holding the prompts of `block_tiles` consecutive start tiles (at most
`block_prompts` prompts), so a block encodes each of its tiles about once wherever it runs; a worker
keeps its model and segmenter for the next block (cluster._session). Blocks finish in any order and
are stored in the resume manifest as they do (labels as WKB + attributes, skipped prompts with their
reason); their outcomes are handed on in block order, which is the serial order, so the features and
the skipped prompts equal the serial run's (only the `created` time differs). Memory holds the
blocks that finished ahead of the next one due, not the layer.
"""
from __future__ import annotations

import hashlib
import json
from typing import Callable, Dict, List, Optional, Sequence

from ..batch.prelabel import PrelabelOptions, PrelabelResult, PromptFeature, add_outcome, order_prompts, prompt_outcome
from ..geo.vectorize import check_cleanup
from ..progress import Progress, check_canceled
from .block_run import BlockRun
from .cluster import block_prompt_outcomes, open_client, run_blocks
from .manifest import ResumeGuard, ResumeManifest, run_fingerprint


def prompts_fingerprint(features: Sequence[PromptFeature]) -> str:
    """sha256 (hex) of the prompt layer as this run sees it: every feature's geometry (WKB), CRS,
    class and tags, in order."""
    from ..geo.wkb import to_wkb

    digest = hashlib.sha256()
    for feature in features:
        empty = feature.geometry is None or feature.geometry.is_empty
        digest.update(b"" if empty else to_wkb(feature.geometry, hex=False))
        digest.update(json.dumps([feature.crs, feature.class_name, sorted(feature.tags.items())]).encode())
    return digest.hexdigest()


def split_prompt_blocks(segmenter, items: List, block_tiles: int = 4, block_prompts: int = 256) -> Dict[int, List]:
    """{block number: items} from order_prompts' items (in order): a new block starts when a block
    would reach a (block_tiles + 1)-th start tile or hold more than `block_prompts` prompts."""
    blocks: Dict[int, List] = {}
    current: List = []
    tiles: set = set()
    for item in items:
        tile = segmenter.start_tile(segmenter.to_pixels(item[2]))
        if current and ((tile not in tiles and len(tiles) >= max(1, block_tiles)) or len(current) >= max(1, block_prompts)):
            blocks[len(blocks)] = current
            current, tiles = [], set()
        current.append(item)
        tiles.add(tile)
    if current:
        blocks[len(blocks)] = current
    return blocks


class _InOrder:
    """Hands blocks of outcomes to the result in block order, whatever order they finish in;
    blocks the manifest holds are read back when their turn comes."""

    def __init__(self, blocks: Dict[int, List], result: PrelabelResult, manifest: Optional[ResumeManifest]):
        self.order, self.result, self.manifest = sorted(blocks), result, manifest
        self.waiting: Dict[int, List] = {}
        self.next = 0

    def add(self, block: int, outcomes: List) -> None:
        self.waiting[block] = outcomes
        self.flush()

    def flush(self) -> None:
        while self.next < len(self.order):
            block = self.order[self.next]
            if block in self.waiting:
                outcomes = self.waiting.pop(block)
            elif self.manifest is not None and self.manifest.done(block):
                outcomes = self.manifest.load_outcomes(block)
            else:
                return
            for outcome in outcomes:
                add_outcome(self.result, outcome)
            self.next += 1


def prelabel_prompt_blocks(job, backend, features: Sequence[PromptFeature], options: PrelabelOptions = PrelabelOptions(),
                           run=None, progress: Optional[Progress] = None, on_label: Optional[Callable] = None):
    """One object per prompt feature of `job` (RasterJob), as prelabel_from_prompts does, in blocks
    (run: runs.BlockRun: cluster, resume manifest beside its output, block sizes). backend: the
    model here (prompt order, provenance, serial work). Returns (PrelabelResult, manifest or
    None); call manifest.finish() once the output is written."""
    run = run or BlockRun()
    check_cleanup(options.simplify, options.min_area, options.fill_holes)
    if run.cluster and run.model is None:
        raise ValueError("prelabel_prompt_blocks needs a ModelSpec to run on a cluster")
    cleanup = options.cleanup()
    with job.open(backend, run.cache_dir) as segmenter, ResumeGuard() as guard:
        items, skipped = order_prompts(segmenter, features)
        blocks = split_prompt_blocks(segmenter, items, run.block_tiles, run.block_prompts)
        result = PrelabelResult(skipped=list(skipped), on_label=on_label, grid=segmenter.level_transform)
        manifest = None
        if run.output is not None:
            fingerprint = run_fingerprint(segmenter, list(segmenter.grid), dict(
                cleanup, mode="prompts", block_tiles=run.block_tiles, block_prompts=run.block_prompts))
            fingerprint.update(prompts=prompts_fingerprint(features), request=run.request)
            manifest = guard.keep(ResumeManifest(run.output, fingerprint, run.resume))
        in_order = _InOrder(blocks, result, manifest)
        todo = {b: block for b, block in blocks.items() if manifest is None or not manifest.done(b)}
        answered = [len(items) - sum(len(block) for block in todo.values())]

        def finished(block: int, outcomes: List) -> None:
            if manifest is not None:
                manifest.save_outcomes(block, outcomes)
            in_order.add(block, outcomes)
            if run.cluster:
                answered[0] += len(outcomes)
                _report(progress, answered[0], len(items))

        in_order.flush()
        if run.cluster and todo:
            with open_client(run.cluster) as client:
                run_blocks(client, block_prompt_outcomes, todo, (job, run.model, run.cache_dir, cleanup), finished, progress)
        else:
            for block, block_items in todo.items():
                outcomes = []
                for item in block_items:
                    check_canceled(progress)
                    outcomes.append(prompt_outcome(segmenter, item, **cleanup))
                    answered[0] += 1
                    _report(progress, answered[0], len(items))
                finished(block, outcomes)
    _report(progress, 1, 1)
    return result, manifest


def _report(progress: Optional[Progress], done: int, total: int) -> None:
    if progress is not None:
        progress.set_progress(100.0 * done / max(total, 1))
