"""Checkpoints with random weights, for tests, demos and benchmarks: the real architecture and the
real compute cost, meaningless masks. `seg models random TYPE --out PATH` writes one; the file
says so, and loading it warns."""
from __future__ import annotations

import os
import warnings

from ..errors import CheckpointError

RANDOM_MARK = "seg_random_weights"


class RandomWeightsWarning(UserWarning):
    """The checkpoint holds random weights: its masks mean nothing."""


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


def read_state(path: str) -> dict:
    """The state dict of a checkpoint file (official files keep it under "model"), loaded as data
    (`weights_only=True`); warns (RandomWeightsWarning) for a file from `write_random_checkpoint`."""
    import torch

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable SAM checkpoint ({str(exc).strip().splitlines()[0][:120]}).") from exc
    if isinstance(state, dict) and state.get(RANDOM_MARK) is True:
        warnings.warn(f"{os.path.basename(path)} holds random weights (made by `seg models random`): its masks mean nothing; "
                      "use it for tests, demos and benchmarks only.", RandomWeightsWarning, stacklevel=3)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a SAM state dict.")
    return state


def checkpoint_family(path: str) -> str:
    """"sam2" for a SAM 2 checkpoint, else "sam" (whose loader then says what is wrong with the
    file). Reads only the tensor names (memory-mapped)."""
    import torch

    from .sam2_checkpoints import is_sam2_state

    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 (not a zip checkpoint, or unreadable: the SAM loader explains)
        return "sam"
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    return "sam2" if isinstance(state, dict) and is_sam2_state(state) else "sam"
