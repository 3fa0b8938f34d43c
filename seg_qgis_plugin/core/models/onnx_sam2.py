"""SAM 2.1 on ONNX Runtime (no torch), and the two graphs `seg models export-onnx` writes for it.

- encoder.onnx         image float32 (1, 3, 1024, 1024), resized to the square and normalised
                       -> features (1, 256, 64, 64) with the "no memory" embedding added,
                       high_res_0 (1, 32, 256, 256), high_res_1 (1, 64, 128, 128): the tile's
                       embedding, the same arrays the torch backend caches.
- decoder_prompt.onnx  those three, point_coords float32 (1, N, 2) in the 1024 frame, point_labels
                       float32 (1, N) (box corners first as 2 / 3, a padding point -1 last),
                       mask_input float32 (1, 1, 256, 256), has_mask float32 (1,)
                       -> low_res_logits (1, 4, 256, 256) and iou_predictions (1, 4) of SAM 2's
                       four output tokens; the candidate is chosen in numpy as SAM 2's decoder
                       chooses it (a single mask falls back to the best of three when unstable).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .backend import AUTOMATIC, BOXES, MASKS, POINTS, Embedding, MaskPrediction, TilePrompt, model_frame
from .onnx_backend import OnnxBackend
from .sam_frames import PIXEL_MEAN, PIXEL_STD, MaskUpsampler, resize_matrix

GRAPHS = ("encoder", "decoder_prompt")
HIGH_RES = ("high_res_0", "high_res_1")


def square_input(image: np.ndarray, size: int = 1024) -> np.ndarray:
    """image uint8 (H, W, 3) -> float32 (1, 3, size, size): resized to the square (antialiased
    bilinear, as SAM2Transforms' Resize) and normalised."""
    h, w = image.shape[:2]
    x = (resize_matrix(h, size) @ image.astype(np.float32).reshape(h, w * 3)).reshape(size, w, 3)
    x = np.einsum("ow,hwc->hoc", resize_matrix(w, size), x, optimize=True)
    return np.ascontiguousarray(((x - PIXEL_MEAN) / PIXEL_STD).transpose(2, 0, 1)[None], np.float32)


class Sam2OnnxBackend(OnnxBackend):
    """A SAM 2.1 model session on ONNX Runtime; its embeddings are the torch backend's (same model id)."""

    capabilities = frozenset({POINTS, BOXES, MASKS, AUTOMATIC})

    def encode(self, image: np.ndarray) -> Embedding:
        outputs = self.session("encoder").run(["features", *HIGH_RES], {"image": square_input(image, self.image_size)})
        size = self.image_size
        return Embedding(image_size=tuple(image.shape[:2]), arrays=dict(zip(("features", *HIGH_RES), outputs)),
                         meta={"input_size": [size, size]})

    def decode(self, embedding: Embedding, prompt: TilePrompt, multimask: Optional[bool] = None) -> MaskPrediction:
        multimask, sx, sy = model_frame(embedding, prompt, multimask)
        coords = [np.asarray(prompt.points, np.float32).reshape(-1, 2) * (sx, sy)]
        labels = [np.asarray(prompt.labels, np.float32).reshape(-1)]
        if prompt.box is not None:
            coords.insert(0, np.asarray(prompt.box, np.float32).reshape(2, 2) * (sx, sy))
            labels.insert(0, np.array([2.0, 3.0], np.float32))
        coords.append(np.zeros((1, 2), np.float32))  # SAM 2 pads prompts without a box with one "not a point"
        labels.append(np.array([-1.0], np.float32))
        low = 4 * self.image_size // 16
        has_mask = prompt.mask_input is not None
        feeds = {name: np.ascontiguousarray(embedding.arrays[name], np.float32) for name in ("features", *HIGH_RES)}
        feeds.update(point_coords=np.concatenate(coords).astype(np.float32)[None], point_labels=np.concatenate(labels)[None],
                     mask_input=(np.clip(np.asarray(prompt.mask_input, np.float32), -32.0, 32.0).reshape(1, 1, low, low)
                                 if has_mask else np.zeros((1, 1, low, low), np.float32)),
                     has_mask=np.array([1.0 if has_mask else 0.0], np.float32))
        logits, iou = self.session("decoder_prompt").run(["low_res_logits", "iou_predictions"], feeds)
        best = self._candidate(logits[0], iou[0], multimask)
        size = self.image_size
        return MaskUpsampler(embedding.image_size, (size, size), size, direct=True)(logits[0, best], float(iou[0, best]))

    def _candidate(self, logits: np.ndarray, iou: np.ndarray, multimask: bool) -> int:
        """SAM 2's choice among its four tokens: the best of 1-3 for multimask, else token 0 unless its
        stability (IoU of logits > delta and > -delta) is below the threshold the model was built with."""
        best_of_three = 1 + int(np.argmax(iou[1:]))
        if multimask:
            return best_of_three
        fallback = self.manifest.get("single_mask_fallback")
        if fallback:
            inner, outer = np.count_nonzero(logits[0] > fallback["delta"]), np.count_nonzero(logits[0] > -fallback["delta"])
            if outer and inner / outer < fallback["threshold"]:
                return best_of_three
        return 0


def manifest_facts(model) -> dict:
    """What the manifest records for the numpy side: SAM 2's single-mask fallback, when the model has it."""
    decoder = model.sam_mask_decoder
    if not decoder.dynamic_multimask_via_stability:
        return {}
    return {"single_mask_fallback": {"delta": float(decoder.dynamic_multimask_stability_delta),
                                     "threshold": float(decoder.dynamic_multimask_stability_thresh)}}


def graph_modules(model):
    """(name, module, example inputs, input names, output names, dynamic axes) of each SAM 2.1 graph."""
    import torch

    model.requires_grad_(False)
    decoder, prompts = model.sam_mask_decoder, model.sam_prompt_encoder
    with torch.no_grad():
        image_pe = prompts.get_dense_pe()

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sam2 = model  # registered, so the weights export as initializers

        def forward(self, image):
            _, feats, _, sizes = model._prepare_backbone_features(model.forward_image(image))
            feats[-1] = feats[-1] + model.no_mem_embed
            maps = [f.permute(1, 2, 0).reshape(1, -1, h, w) for f, (h, w) in zip(feats, sizes)]
            return maps[-1], maps[0], maps[1]

    class PromptDecoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sam2 = model

        def forward(self, features, high_res_0, high_res_1, point_coords, point_labels, mask_input, has_mask):
            sparse = prompts._embed_points(point_coords, point_labels, pad=False)
            gate = has_mask.reshape(1, 1, 1, 1)
            dense = gate * prompts.mask_downscaling(mask_input) + (1 - gate) * prompts.no_mask_embed.weight.reshape(1, -1, 1, 1)
            masks, iou, _, _ = decoder.predict_masks(image_embeddings=features, image_pe=image_pe, sparse_prompt_embeddings=sparse,
                                                     dense_prompt_embeddings=dense, repeat_image=False,
                                                     high_res_features=[high_res_0, high_res_1])
            return masks, iou

    size = model.image_size
    with torch.no_grad():
        embedding = Encoder()(torch.zeros(1, 3, size, size))
    low = 4 * size // 16
    points, labels = torch.tensor([[[500.0, 400.0], [0.0, 0.0]]]), torch.tensor([[1.0, -1.0]])
    return [
        ("encoder", Encoder(), (torch.zeros(1, 3, size, size),), ["image"], ["features", *HIGH_RES], None),
        ("decoder_prompt", PromptDecoder(), (*embedding, points, labels, torch.zeros(1, 1, low, low), torch.zeros(1)),
         ["features", *HIGH_RES, "point_coords", "point_labels", "mask_input", "has_mask"], ["low_res_logits", "iou_predictions"],
         {"point_coords": {1: "points"}, "point_labels": {1: "points"}}),
    ]
