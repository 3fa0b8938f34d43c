"""The assistant's options as values: what it learns from, how it predicts, and one whole run.

Each is a small frozen dataclass, so a run's options travel as one value (to a Dask worker, into a
resume fingerprint) instead of a long list of loose arguments. The request of `seg assist`
(core.jobs.assist) is translated into these at the job's entry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

from .features import SIGMAS


@dataclass(frozen=True)
class LearnOptions:
    """What to learn from: the field holding the class, the class learned but not written out,
    the 1-based bands (None: all), the statuses of the labels learned from (None: all but
    rejected) and the Gaussian scales of the features."""

    class_field: str = "class"
    background: str = "background"
    bands: Optional[Sequence[int]] = None
    statuses: Optional[Sequence[str]] = None
    sigmas: Sequence[float] = SIGMAS


@dataclass(frozen=True)
class PredictOptions:
    """How the raster is pre-labelled: probability and uncertainty GeoTIFF paths (None: not
    written; `overwrite` replaces existing ones), the uncertainty measure (entropy or margin),
    Gaussian smoothing of the probabilities in pixels, polygons smaller than `min_area` (map
    units^2) dropped and simplified by `simplify` (map units), a pixel `region` (col, row, width,
    height; None: the whole raster) and tags on every polygon."""

    probability: Optional[str] = None
    uncertainty: Optional[str] = None
    measure: str = "entropy"
    smooth: float = 0.0
    min_area: float = 0.0
    simplify: float = 0.0
    region: Optional[Tuple[int, int, int, int]] = None
    tags: Optional[Dict[str, str]] = None
    overwrite: bool = False


@dataclass(frozen=True)
class AssistOptions:
    """One assistant run. out: the pre-label layer (None: the polygons only go to the caller) in
    `mode` create/append/overwrite; model_path: a saved model applied instead of learning;
    save_model: where the learned model goes; cache + checkpoint: an embedding cache adding SAM
    features; refine "sam" sends each blob's box to SAM; threads for prediction (0: all cores);
    windows run in blocks of `block_windows`, on `cluster` when given, and `resume` skips the
    blocks a killed run finished (its manifest lies beside `out`)."""

    out: Optional[str] = None
    mode: str = "create"
    model_path: Optional[str] = None
    save_model: Optional[str] = None
    cache: Optional[str] = None
    checkpoint: Optional[str] = None
    refine: Optional[str] = None
    threads: int = 0
    cluster: Optional[str] = None
    resume: bool = False
    block_windows: int = 4
    learn: LearnOptions = field(default_factory=LearnOptions)
    predict: PredictOptions = field(default_factory=PredictOptions)
