"""SAM 3 ("Segment Anything with Concepts", Meta, 2025) through transformers' `Sam3Model`: every
instance of a short noun phrase on a tile, optionally guided by exemplar boxes (positive and
negative), each with a mask and a score.

The weights are gated under Meta's SAM License: a user downloads the Hugging Face folder
`facebook/sam3` (config.json, model.safetensors, the tokenizer and processor files) and gives that
folder as the checkpoint. Nothing is downloaded here. The masks, boxes and scores are the library's
own post-processing (`Sam3Processor.post_process_instance_segmentation`) at the tile's size, so
Seg's polygons are exactly what the library answers on that image.

Exemplars on other tiles: SAM 3 reads an exemplar box off the image it is drawn on. An exemplar's
prompt tokens are therefore computed once on its own tile and handed to the model on every other
tile (a forward hook on the geometry encoder), as a user who drew one box expects every tile to
be searched for things like it.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import CheckpointError
from .checkpoint_files import RANDOM_MARK, RandomWeightsWarning

CONCEPTS = "concepts"
LICENCE = "Meta's SAM License (gated: accept it on huggingface.co/facebook/sam3, then download the folder)"
WEIGHTS_FILE = "model.safetensors"


def is_sam3_folder(path: Optional[str]) -> bool:
    """Whether `path` is a folder holding a transformers SAM 3 model (config.json of model_type sam3)."""
    if not path or not os.path.isdir(path):
        return False
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            return json.load(f).get("model_type") == "sam3"
    except (OSError, ValueError):
        return False


def require_transformers():
    try:
        import transformers  # noqa: F401
    except ImportError as exc:
        raise CheckpointError("SAM 3 needs the transformers package: pip install 'transformers==5.24.0' "
                              "(or the dock's Install button).") from exc


@dataclass(frozen=True)
class Found:
    """One instance on a tile: mask bool (H, W) at the tile's size, score in [0, 1] (the query's
    probability times the phrase's presence), box (x0, y0, x1, y1) in tile pixels."""

    mask: np.ndarray
    score: float
    box: Tuple[float, float, float, float]


@dataclass(frozen=True)
class ExemplarBox:
    """An exemplar in tile pixels (x0, y0, x1, y1), positive (like this) or negative (not this)."""

    box: Tuple[float, float, float, float]
    positive: bool = True


class Sam3Backend:
    """A SAM 3 session: `vision(image)` encodes a tile once, `find` answers a phrase (and
    exemplars) on it. model_id "sam3"; checkpoint_sha256 of model.safetensors."""

    cacheable = False
    capabilities = frozenset({CONCEPTS})

    def __init__(self, folder: str, device: str = "auto", threads: Optional[int] = None):
        if not is_sam3_folder(folder):
            raise CheckpointError(f"{folder} is not a SAM 3 folder (config.json with model_type \"sam3\"); "
                                  f"download facebook/sam3 from Hugging Face ({LICENCE}).")
        require_transformers()
        import torch
        from transformers import Sam3Model, Sam3Processor

        from .checkpoints import pick_device
        from .file_digest import file_sha256

        if threads:
            torch.set_num_threads(int(threads))
        self.folder = os.path.abspath(folder)
        self.device = pick_device(device or "auto")
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            if json.load(f).get(RANDOM_MARK):
                warnings.warn(f"{os.path.basename(self.folder)} holds random weights (made by `seg models random`): its masks "
                              "mean nothing; use it for tests, demos and benchmarks only.", RandomWeightsWarning, stacklevel=2)
        try:
            self.processor = Sam3Processor.from_pretrained(self.folder, local_files_only=True)
            self.model = Sam3Model.from_pretrained(self.folder, local_files_only=True).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{folder} is not a readable SAM 3 model ({str(exc).strip().splitlines()[0][:160]}).") from exc
        self.model_id = "sam3"
        weights = os.path.join(self.folder, WEIGHTS_FILE)
        self.checkpoint_sha256 = file_sha256(weights) if os.path.isfile(weights) else None
        self._carried = None

    def vision(self, image: np.ndarray):
        """image uint8 (H, W, 3) -> (the model's vision embeddings, the processor's inputs)."""
        import torch

        inputs = self.processor(images=image, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            return self.model.get_vision_features(pixel_values=inputs["pixel_values"]), inputs

    def find(self, encoded, phrase: Optional[str], exemplars: Sequence[ExemplarBox] = (), min_score: float = 0.5,
             carried=None) -> List[Found]:
        """Every instance of `phrase` (None: exemplars only) on the tile `encoded` by `vision`.
        carried: exemplar prompt tokens from `exemplar_tokens` on another tile (used when this
        tile has no exemplar of its own)."""
        import torch

        vision, inputs = encoded
        height, width = (int(v) for v in inputs["original_sizes"][0])
        boxes = [[list(e.box) for e in exemplars]] if exemplars else None
        labels = [[int(e.positive) for e in exemplars]] if exemplars else None
        if carried is not None and not exemplars:
            boxes, labels = [[[0.0, 0.0, 1.0, 1.0]]], [[1]]  # runs the geometry encoder; the hook swaps its tokens
        prompt = self.processor(text=phrase, input_boxes=boxes, input_boxes_labels=labels,
                                original_sizes=[[height, width]], return_tensors="pt").to(self.device)
        prompt.pop("original_sizes", None)
        hook = self.model.geometry_encoder.register_forward_hook(_replace_with(carried)) if carried is not None and not exemplars else None
        try:
            with torch.inference_mode():
                outputs = self.model(vision_embeds=vision, **prompt)
        finally:
            if hook is not None:
                hook.remove()
        result = self.processor.post_process_instance_segmentation(outputs, threshold=min_score, mask_threshold=0.5,
                                                                   target_sizes=[(height, width)])[0]
        return [Found(m.bool().cpu().numpy(), float(s), tuple(float(v) for v in b))
                for m, s, b in zip(result["masks"], result["scores"], result["boxes"])]

    def exemplar_tokens(self, encoded, exemplars: Sequence[ExemplarBox]):
        """The geometry encoder's tokens (features, mask) for `exemplars` on the tile `encoded`:
        what `find(..., carried=...)` hands to other tiles."""
        captured = {}

        def keep(module, args, output):
            captured["tokens"] = (output.last_hidden_state.detach(), output.attention_mask.detach())

        hook = self.model.geometry_encoder.register_forward_hook(keep)
        try:
            self.find(encoded, None, exemplars, min_score=1.0)
        finally:
            hook.remove()
        return captured["tokens"]

    def close(self) -> None:
        self.model = None


def _replace_with(carried):
    features, mask = carried

    def replace(module, args, output):
        output.last_hidden_state = features
        output.attention_mask = mask
        return output

    return replace
