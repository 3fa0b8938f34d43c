"""SAM 2.1 on ONNX Runtime (no torch), and the three graphs `seg models export-onnx` writes for it.

- encoder.onnx         image float32 (1, 3, 1024, 1024), resized to the square and normalised
                       -> features (1, 256, 64, 64) with the "no memory" embedding added,
                       high_res_0 (1, 32, 256, 256), high_res_1 (1, 64, 128, 128): the tile's
                       embedding, the same arrays the torch backend caches. Each Hiera attention
                       is ONNX Runtime's fused MultiHeadAttention (`fuse_attention`).
- decoder_tile.onnx    features, mask_input float32 (1, 1, 256, 256), has_mask float32 (1,)
                       -> keys and block 0's image projections, as SAM's (sam_decoder.tile_graph).
- decoder_prompt.onnx  those four, the high-resolution maps in the decoder's pixel-block order
                       (`sam_decoder.high_res_blocks`, once per tile), point_coords float32
                       (1, N, 2) in the 1024 frame, point_labels float32 (1, N) (box corners first
                       as 2 / 3, a padding point -1 last)
                       -> low_res_blocks (1, 65536, 16): the low-resolution logits of SAM 2's four
                       output tokens in pixel-block order (`sam_decoder.block_image`), and
                       iou_predictions (1, 4); the candidate is chosen in numpy as SAM 2's decoder
                       chooses it (a single mask falls back to the best of three when unstable).
Exports without decoder_tile.onnx (made before it existed) run the whole decoder per prompt from the
encoder's arrays; they still load.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .backend import AUTOMATIC, BOXES, MASKS, POINTS, Embedding, MaskPrediction, TilePrompt, model_frame
from .onnx_backend import OnnxBackend
from .sam_decoder import block_image, high_res_blocks
from .sam_frames import PIXEL_MEAN, PIXEL_STD, MaskUpsampler, resize_matrix

HIGH_RES = ("high_res_0", "high_res_1")
TILE_STATE = ("keys", "first_k", "first_v", "first_image_q")
BLOCKS = ("high_res_0_blocks", "high_res_1_blocks")


def square_input(image: np.ndarray, size: int = 1024) -> np.ndarray:
    """image uint8 (H, W, 3) -> float32 (1, 3, size, size): resized to the square (antialiased
    bilinear, as SAM2Transforms' Resize) and normalised."""
    h, w = image.shape[:2]
    x = image.astype(np.float32)
    if h != size:  # (a tile of the model's size needs no resampling: its matrix is the identity)
        x = (resize_matrix(h, size) @ x.reshape(h, w * 3)).reshape(size, w, 3)
    if w != size:
        x = np.einsum("ow,hwc->hoc", resize_matrix(w, size), x, optimize=True)
    return np.ascontiguousarray(((x - PIXEL_MEAN) / PIXEL_STD).transpose(2, 0, 1)[None], np.float32)


class Sam2OnnxBackend(OnnxBackend):
    """A SAM 2.1 model session on ONNX Runtime; its embeddings are the torch backend's (same model id)."""

    capabilities = frozenset({POINTS, BOXES, MASKS, AUTOMATIC})
    _blocks_of: tuple = (None, None)

    def encode(self, image: np.ndarray) -> Embedding:
        self.open_meanwhile()
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
        feeds = self._tile_feeds(embedding, prompt.mask_input)
        feeds.update(point_coords=np.concatenate(coords).astype(np.float32)[None], point_labels=np.concatenate(labels)[None])
        if "decoder_tile" in self.manifest["files"]:
            blocks, iou = self.session("decoder_prompt").run(["low_res_blocks", "iou_predictions"], feeds)
            masks = iou.shape[1]
            best = self._candidate(blocks[0][:, 0::masks], iou[0], multimask)
            chosen = block_image(blocks[0], low // 4, low // 4, best, masks)
        else:  # exported before the decoder had a per-tile part
            has_mask = prompt.mask_input is not None
            feeds.update(mask_input=(np.clip(np.asarray(prompt.mask_input, np.float32), -32.0, 32.0).reshape(1, 1, low, low)
                                     if has_mask else np.zeros((1, 1, low, low), np.float32)),
                         has_mask=np.array([1.0 if has_mask else 0.0], np.float32))
            logits, iou = self.session("decoder_prompt").run(["low_res_logits", "iou_predictions"], feeds)
            best = self._candidate(logits[0, 0], iou[0], multimask)
            chosen = logits[0, best]
        size = self.image_size
        return MaskUpsampler(embedding.image_size, (size, size), size, direct=True)(np.ascontiguousarray(chosen), float(iou[0, best]))

    def _tile_feeds(self, embedding: Embedding, mask_input) -> dict:
        """The prompt graph's tile inputs: the per-tile part of the decoder and the high-resolution
        maps in pixel-block order, both kept for the embedding prompted last."""
        if "decoder_tile" not in self.manifest["files"]:  # exported before the decoder had a per-tile part
            return {name: np.ascontiguousarray(embedding.arrays[name], np.float32) for name in ("features", *HIGH_RES)}
        if self._blocks_of[0] is not embedding:
            self._blocks_of = (embedding, dict(zip(BLOCKS, high_res_blocks(*(embedding.arrays[name] for name in HIGH_RES)))))
        state = self.tile_state(embedding, None if mask_input is None else np.clip(np.asarray(mask_input, np.float32), -32.0, 32.0))
        return {**state, **self._blocks_of[1]}

    def close(self) -> None:
        super().close()
        self._blocks_of = (None, None)

    def _candidate(self, first: np.ndarray, iou: np.ndarray, multimask: bool) -> int:
        """SAM 2's choice among its four tokens: the best of 1-3 for multimask, else token 0 unless its
        stability (IoU of logits > delta and > -delta) is below the threshold the model was built with."""
        best_of_three = 1 + int(np.argmax(iou[1:]))
        if multimask:
            return best_of_three
        fallback = self.manifest.get("single_mask_fallback")
        if fallback:
            inner, outer = np.count_nonzero(first > fallback["delta"]), np.count_nonzero(first > -fallback["delta"])
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


def fuse_attention(encoder) -> None:
    """Give each Hiera attention of `encoder` (this model instance only) ONNX Runtime's fused
    MultiHeadAttention in the export, with q, k and v from three MatMuls and their bias added inside
    it: one kernel instead of an Add, a Split, two MatMuls, a Softmax and their transposes, and no
    4096 x 4096 score matrices in memory. (The bias of a pooled q is added after the max pool: a
    per-channel constant passes through a max unchanged.) On 2 AVX2 cores, Hiera-Tiny's first mask
    took 2.9-3.2 s instead of 3.4-3.7 s and peaked at 0.8 GB instead of 1.1 GB (bench_first_mask)."""
    import types

    import torch
    import torch.nn.functional as F
    from sam2.modeling.backbones.hieradet import MultiScaleAttention, do_pool

    class Attention(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k, v, bias, heads):
            b, n, width = q.shape
            q, k, v = (t.reshape(b, t.shape[1], heads, -1).transpose(1, 2) for t in (q + bias[:width], k + bias[width:2 * width], v + bias[2 * width:]))
            return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, width)

        @staticmethod
        def symbolic(g, q, k, v, bias, heads):
            out = g.op("com.microsoft::MultiHeadAttention", q, k, v, bias, num_heads_i=heads)
            out.setType(q.type())  # the shape of its query, which ONNX's shape inference would not know
            return out

    def forward(self, x):  # MultiScaleAttention.forward of sam2 1.1.0, the attention fused
        b, h, w, _ = x.shape
        q, k, v = (F.linear(x, weight).reshape(b, h * w, -1) for weight in self.qkv.weight.chunk(3))
        if self.q_pool:
            q = do_pool(q.reshape(b, h, w, -1), self.q_pool)
            h, w = q.shape[1:3]
        x = Attention.apply(q.reshape(b, h * w, -1), k, v, self.qkv.bias, self.num_heads)
        return self.proj(x.reshape(b, h, w, -1))

    for module in encoder.modules():
        if isinstance(module, MultiScaleAttention):
            module.forward = types.MethodType(forward, module)


def graph_modules(model):
    """(name, module, example inputs, input names, output names, dynamic axes) of each SAM 2.1 graph."""
    import torch

    from .sam_decoder import tile_graph, two_way, upscaled_logits

    model.requires_grad_(False)
    fuse_attention(model.image_encoder)
    decoder, prompts = model.sam_mask_decoder, model.sam_prompt_encoder
    with torch.no_grad():
        image_pe = prompts.get_dense_pe()
        grid = image_pe.shape[-1]  # 64 image tokens a side
        key_pe = image_pe.flatten(2).transpose(1, 2).contiguous()
    TileGraph = tile_graph(model, decoder, prompts, key_pe)

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

        def forward(self, keys, first_k, first_v, first_image_q, high_res_0_blocks, high_res_1_blocks, point_coords, point_labels):
            sparse = prompts._embed_points(point_coords, point_labels, pad=False)
            first = 1 if decoder.pred_obj_scores else 0  # SAM 2.1's object-score token comes first
            tokens = [decoder.obj_score_token.weight] if first else []
            tokens = torch.cat([*tokens, decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)[None]
            queries, keys = two_way(decoder, torch.cat((tokens, sparse), dim=1), keys, key_pe, (first_k, first_v, first_image_q))
            iou = decoder.iou_prediction_head(queries[:, first, :])
            hypers = torch.cat([mlp(queries[:, first + 1 + j, :]) for j, mlp in enumerate(decoder.output_hypernetworks_mlps)])
            blocks = upscaled_logits(decoder.output_upscaling, keys, hypers, grid, grid, (high_res_0_blocks, high_res_1_blocks),
                                     as_image=False)
            return blocks[None], iou

    size = model.image_size
    with torch.no_grad():
        embedding = Encoder()(torch.zeros(1, 3, size, size))
        low = 4 * size // 16
        tile_inputs = (embedding[0], torch.zeros(1, 1, low, low), torch.zeros(1))
        tile = TileGraph()(*tile_inputs)
    blocks = [torch.from_numpy(a) for a in high_res_blocks(embedding[1].numpy(), embedding[2].numpy())]
    points, labels = torch.tensor([[[500.0, 400.0], [0.0, 0.0]]]), torch.tensor([[1.0, -1.0]])
    return [
        ("encoder", Encoder(), (torch.zeros(1, 3, size, size),), ["image"], ["features", *HIGH_RES], None),
        ("decoder_tile", TileGraph(), tile_inputs, ["features", "mask_input", "has_mask"], list(TILE_STATE), None),
        ("decoder_prompt", PromptDecoder(), (*tile, *blocks, points, labels),
         [*TILE_STATE, *BLOCKS, "point_coords", "point_labels"], ["low_res_blocks", "iou_predictions"],
         {"point_coords": {1: "points"}, "point_labels": {1: "points"}}),
    ]
