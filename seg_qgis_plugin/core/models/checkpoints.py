"""SAM checkpoints: model types, safe loading by path, sha256.

Model files are data, not code: they are loaded with `torch.load(weights_only=True)` on the CPU
first, checked against the architecture, and their sha256 is recorded with every result.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ..errors import CheckpointError, MissingDependency
from .file_digest import file_sha256


@dataclass(frozen=True)
class Architecture:
    embed_dim: int
    depth: int
    heads: int
    global_attn: Tuple[int, ...]


ARCHITECTURES: Dict[str, Architecture] = {
    "vit_b": Architecture(768, 12, 12, (2, 5, 8, 11)),
    "vit_l": Architecture(1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": Architecture(1280, 32, 16, (7, 15, 23, 31)),
    # A tiny encoder with SAM's real prompt encoder and mask decoder: for tests and demos only.
    "vit_tiny": Architecture(64, 2, 2, (1,)),
}
MODEL_TYPES = tuple(ARCHITECTURES)
DEVICES = ("auto", "cpu", "cuda", "mps")  # or cuda:N


def require_sam():
    """Say exactly what SAM lacks here (checked without importing torch), or return."""
    from ..dependencies import missing_sentence

    sentence = missing_sentence(("sam",))
    if sentence:
        raise MissingDependency(sentence)


def build_sam(model_type: str):
    """An untrained SAM of `model_type` (random weights)."""
    require_sam()
    from segment_anything.build_sam import _build_sam

    arch = ARCHITECTURES.get(model_type)
    if arch is None:
        raise CheckpointError(f"Unknown model type {model_type!r}; choose one of {', '.join(ARCHITECTURES)}.")
    return _build_sam(encoder_embed_dim=arch.embed_dim, encoder_depth=arch.depth, encoder_num_heads=arch.heads,
                      encoder_global_attn_indexes=list(arch.global_attn), checkpoint=None)


def detect_model_type(state: dict) -> Optional[str]:
    """The architecture a state dict was saved from, from its patch-embedding width and depth."""
    weight = state.get("image_encoder.patch_embed.proj.weight")
    if weight is None:
        return None
    depth = len({k.split(".")[2] for k in state if k.startswith("image_encoder.blocks.")})
    for name, arch in ARCHITECTURES.items():
        if arch.embed_dim == weight.shape[0] and arch.depth == depth:
            return name
    return None


def load_sam(path: str, model_type: Optional[str] = None, device: str = "cpu"):
    """Load a SAM checkpoint file. Returns (model in eval mode on `device`, model_type, sha256).

    model_type None detects it from the weights. Raises CheckpointError with one sentence for a
    missing, corrupt or mismatched file.
    """
    require_sam()
    from .checkpoint_files import read_state
    from .sam2_checkpoints import is_sam2_state

    path = os.fspath(path)
    state = read_state(path)
    if is_sam2_state(state):
        raise CheckpointError(f"{path} holds SAM 2.1 weights, which this step does not take (it needs SAM vit_b, vit_l or vit_h); "
                              "SAM 2.1 runs on torch with --backend sam2 or auto.")
    found = detect_model_type(state)
    if found is None:
        raise CheckpointError(f"{path} does not hold SAM weights of any known model type ({', '.join(ARCHITECTURES)}).")
    if model_type and model_type != found:
        raise CheckpointError(f"{path} holds {found} weights, not {model_type}; choose --model {found}.")
    model = build_sam(found)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not match the {found} architecture ({str(exc).splitlines()[0][:120]}).") from exc
    return model.to(device).eval(), found, file_sha256(path)


def pick_device(device: str = "auto") -> str:
    """'auto' picks cuda, then mps, then cpu."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
