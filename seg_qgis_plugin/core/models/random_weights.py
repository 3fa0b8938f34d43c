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

    return tuple(MODEL_TYPES) + tuple(SAM2_TYPES) + ("sam3",)


def write_random_checkpoint(model_type: str, out: str, seed: int = 0) -> str:
    """A random-weight checkpoint of `model_type` (SAM vit_* or SAM 2.1 sam2.1_hiera_*) at `out`,
    written atomically and never over an existing file. Returns `out`."""
    import torch

    from ..outputs.atomic import atomic_path
    from .checkpoints import MODEL_TYPES, build_sam
    from .sam2_checkpoints import SAM2_TYPES, build_sam2_model

    if model_type == "sam3":
        return write_random_sam3(out, seed=seed)
    if model_type not in MODEL_TYPES and model_type not in SAM2_TYPES:
        raise CheckpointError(f"Unknown model type {model_type!r}; choose one of {', '.join(model_types())}.")
    if os.path.exists(out):
        raise CheckpointError(f"{out} exists; choose another name (Seg never overwrites a file).")
    torch.manual_seed(seed)
    model = build_sam(model_type) if model_type in MODEL_TYPES else build_sam2_model(model_type)
    with atomic_path(out) as tmp:
        torch.save({"model": model.state_dict(), RANDOM_MARK: True, "model_type": model_type}, tmp)
    return out


SAM3_TINY = dict(hidden=64, layers=2, heads=2, queries=20)  # tests: the official architecture, narrow


def write_random_sam3(out: str, tiny: bool = False, seed: int = 0) -> str:
    """A random-weight SAM 3 folder at `out` as transformers saves one (config.json marked random,
    model.safetensors, processor and tokenizer files): the official configuration (840 M
    parameters, real compute cost), or `tiny` (the same modules, 64 wide, for tests). The
    tokenizer spells words letter by letter: SAM 3's CLIP vocabulary ships only with the gated
    weights. Written into a new folder, never over an existing one. Returns `out`."""
    import string

    import torch
    from transformers import CLIPTokenizer, Sam3Config, Sam3ImageProcessor, Sam3Model, Sam3Processor

    from ..outputs.atomic import atomic_folder

    if os.path.exists(out):
        raise CheckpointError(f"{out} exists; choose another name (Seg never overwrites a file).")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase + string.digits + " -'":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    text = dict(bos_token_id=0, eos_token_id=1, pad_token_id=1)
    if tiny:
        h, layers, heads = SAM3_TINY["hidden"], SAM3_TINY["layers"], SAM3_TINY["heads"]
        block = dict(hidden_size=h, num_attention_heads=heads, intermediate_size=2 * h)
        config = Sam3Config(
            vision_config=dict(backbone_config=dict(model_type="sam3_vit_model", num_hidden_layers=layers,
                                                    global_attn_indexes=[layers - 1], **block), fpn_hidden_size=h),
            text_config=dict(vocab_size=len(vocab), num_hidden_layers=layers, projection_dim=h, max_position_embeddings=32,
                             **block, **text),
            geometry_encoder_config=dict(num_layers=1, **block), detr_encoder_config=dict(num_layers=1, **block),
            detr_decoder_config=dict(num_layers=1, num_queries=SAM3_TINY["queries"], **block),
            mask_decoder_config=dict(hidden_size=h, num_attention_heads=heads))
    else:
        config = Sam3Config()  # the official sizes; its text encoder keeps CLIP's 49,408-token embedding
        for key, value in text.items():
            setattr(config.text_config, key, value)
    setattr(config, RANDOM_MARK, True)
    torch.manual_seed(seed)
    model = Sam3Model(config).eval()
    processor = Sam3Processor(Sam3ImageProcessor(), CLIPTokenizer(vocab=vocab, merges=[]))
    with atomic_folder(out) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
    return out
