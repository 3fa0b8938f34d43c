"""Checkpoint files as data: read with `weights_only=True`, the model family told by a tensor name,
and the mark `seg models random` leaves in a file with random weights."""
from __future__ import annotations

import os
import warnings

from ..errors import CheckpointError

RANDOM_MARK = "seg_random_weights"
SAM2_PATCH_EMBED = "image_encoder.trunk.patch_embed.proj.weight"  # SAM 2's Hiera trunk; SAM's ViT has no trunk


class RandomWeightsWarning(UserWarning):
    """The checkpoint holds random weights: its masks mean nothing."""


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

    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 (not a zip checkpoint, or unreadable: the SAM loader explains)
        return "sam"
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    return "sam2" if isinstance(state, dict) and SAM2_PATCH_EMBED in state else "sam"
