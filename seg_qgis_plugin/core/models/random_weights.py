"""Checkpoints with random weights, for tests, demos and benchmarks: the real architecture and the
real compute cost, meaningless masks. `seg models random TYPE --out PATH` writes one; the file
says so, and loading it warns."""
from __future__ import annotations

import os

from ..errors import CheckpointError
from .checkpoint_files import RANDOM_MARK


def model_types():
    from .checkpoints import MODEL_TYPES
    from .sam2_checkpoints import SAM2_TYPES

    return tuple(MODEL_TYPES) + tuple(SAM2_TYPES)


def write_random_checkpoint(model_type: str, out: str, seed: int = 0) -> str:
    """A random-weight checkpoint of `model_type` (SAM vit_* or SAM 2.1 sam2.1_hiera_*) at `out`,
    written atomically and never over an existing file. Returns `out`."""
    import torch

    from ..outputs.atomic import atomic_path
    from .checkpoints import MODEL_TYPES, build_sam
    from .sam2_checkpoints import SAM2_TYPES, build_sam2_model

    if model_type not in MODEL_TYPES and model_type not in SAM2_TYPES:
        raise CheckpointError(f"Unknown model type {model_type!r}; choose one of {', '.join(model_types())}.")
    if os.path.exists(out):
        raise CheckpointError(f"{out} exists; choose another name (Seg never overwrites a file).")
    torch.manual_seed(seed)
    model = build_sam(model_type) if model_type in MODEL_TYPES else build_sam2_model(model_type)
    with atomic_path(out) as tmp:
        torch.save({"model": model.state_dict(), RANDOM_MARK: True, "model_type": model_type}, tmp)
    return out
