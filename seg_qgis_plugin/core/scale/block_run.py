"""How a run in blocks of tiles is done: where, with what cache, and what it leaves for a resume."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .cluster import ModelSpec


@dataclass(frozen=True)
class BlockRun:
    """Where blocks run and what they leave: `model` says how cluster workers open the model
    (needed with `cluster`), `cache_dir` the embedding cache, `output` the file the result goes to
    (a resume manifest is kept beside it; resume=True reuses the finished blocks of the same run),
    and blocks of `block_tiles` tiles (prompt runs: at most `block_prompts` prompts). `request`:
    the fingerprint of the job's request (core.jobs.base.fingerprint), kept in the manifest so that
    only the same request resumes."""

    model: Optional[ModelSpec] = None
    cache_dir: Optional[str] = None
    cluster: Optional[str] = None
    output: Optional[str] = None
    resume: bool = False
    block_tiles: int = 4
    block_prompts: int = 256
    request: str = ""
