"""SAM 2.1 checkpoints: the four Hiera sizes, told apart by their weights, built from the official
configurations that ship with Meta's `sam2` package and loaded safely (`weights_only=True`)."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Dict, Optional, Tuple

from ..errors import CheckpointError
from .checkpoint_files import SAM2_PATCH_EMBED as PATCH_EMBED
from .file_digest import file_sha256

# model type -> (config in the sam2 package, Hiera embed width, Hiera blocks)
SAM2_TYPES: Dict[str, Tuple[str, int, int]] = {
    "sam2.1_hiera_tiny": ("configs/sam2.1/sam2.1_hiera_t.yaml", 96, 12),
    "sam2.1_hiera_small": ("configs/sam2.1/sam2.1_hiera_s.yaml", 96, 16),
    "sam2.1_hiera_base_plus": ("configs/sam2.1/sam2.1_hiera_b+.yaml", 112, 24),
    "sam2.1_hiera_large": ("configs/sam2.1/sam2.1_hiera_l.yaml", 144, 48),
}


def require_sam2() -> None:
    """One sentence, not an ImportError, where SAM 2 is missing."""
    from ..dependencies import missing_sentence

    sentence = missing_sentence(("sam",)) or missing_sentence(("sam2",))
    if sentence:
        from ..errors import MissingDependency

        raise MissingDependency(sentence)


def is_sam2_state(state: dict) -> bool:
    return PATCH_EMBED in state


def detect_sam2_type(state: dict) -> Optional[str]:
    """The Hiera size a SAM 2 state dict was saved from, by its patch-embedding width and block count."""
    weight = state.get(PATCH_EMBED)
    if weight is None:
        return None
    blocks = len({k.split(".")[3] for k in state if k.startswith("image_encoder.trunk.blocks.")})
    for name, (_, width, depth) in SAM2_TYPES.items():
        if width == weight.shape[0] and depth == blocks:
            return name
    return None


def build_sam2_model(model_type: str):
    """An untrained SAM 2.1 of `model_type` (random weights) from its official configuration."""
    require_sam2()
    if model_type not in SAM2_TYPES:
        raise CheckpointError(f"Unknown SAM 2 model type {model_type!r}; choose one of {', '.join(SAM2_TYPES)}.")
    with quiet_sam2():
        from sam2.build_sam import build_sam2

        return build_sam2(SAM2_TYPES[model_type][0], None, device="cpu", mode="eval")


@contextmanager
def quiet_sam2():
    """sam2 1.1 scripts helpers with torch.jit.script, which torch 2.13 deprecates: not Seg's to fix."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*")
        yield


def load_sam2(path: str, model_type: Optional[str] = None, device: str = "cpu"):
    """Load a SAM 2.1 checkpoint file. Returns (model in eval mode on `device`, model_type, sha256);
    raises CheckpointError with one sentence for a missing, corrupt or mismatched file."""
    from .checkpoint_files import read_state

    require_sam2()
    state = read_state(path)
    found = detect_sam2_type(state)
    if found is None:
        raise CheckpointError(f"{path} does not hold SAM 2.1 weights of any known size ({', '.join(SAM2_TYPES)}).")
    if model_type and model_type != found:
        raise CheckpointError(f"{path} holds {found} weights, not {model_type}; choose --model {found}.")
    model = build_sam2_model(found)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not match the {found} architecture ({str(exc).splitlines()[0][:120]}).") from exc
    return model.to(device).eval(), found, file_sha256(os.fspath(path))
