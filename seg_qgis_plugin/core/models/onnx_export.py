"""Export a SAM checkpoint to ONNX, so SAM can run with ONNX Runtime and numpy alone (no torch).

    export_onnx("sam_vit_b_01ec64.pth", "models/onnx/vit_b-onnx")   # needs torch, once, anywhere

writes three graphs and a manifest into the folder:
- encoder.onnx         image float32 (1, 3, 1024, 1024), normalised and zero-padded
                       -> features float32 (1, 256, 64, 64); global attention in query chunks
                       (sam_encoder), so ONNX Runtime never holds a 4096 x 4096 score matrix per head.
- decoder_tile.onnx    the per-tile part of the mask decoder (as sam_decoder.TileDecoder):
                       features, mask_input float32 (1, 1, 256, 256), has_mask float32 (1,)
                       -> keys (1, 4096, 256), first_k, first_v, first_image_q (1, heads, 4096, 128/heads).
- decoder_prompt.onnx  the per-prompt part: those four, point_coords float32 (1, N, 2) in the 1024
                       input frame, point_labels float32 (1, N) (1 object, 0 background, -1 padding,
                       2 / 3 box corners), multimask float32 (1,) -> low_res_logits (1, 1, 256, 256) of
                       the best candidate, score (1,), iou_predictions (1, 4).
- manifest.json        format, family, model type, model id, sha256 of the source checkpoint and
                       of each .onnx file, quantisation, and the error measured against the torch model.

A SAM 2.1 checkpoint (told by its weights) exports as onnx_sam2 describes: encoder.onnx with the
high-resolution features, and decoder_prompt.onnx.

int8=True quantises the MatMul weights of all three graphs (ONNX Runtime dynamic quantisation);
the manifest then records the measured error of the quantised model against torch fp32.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
import warnings
from typing import Optional

import numpy as np

from ..errors import OutputError
from ..progress import Progress, check_canceled
from .checkpoints import load_sam
from .download import sha256_file

FORMAT = "seg-onnx/1"
MANIFEST = "manifest.json"
OPSET = 17


def _graph_modules(model):
    """The three torch Modules that are exported (they share `model`'s weights)."""
    import torch

    from .sam_decoder import tile_graph, two_way, upscaled_logits
    from .sam_encoder import EncoderOptions, fast_encoder_module

    model.requires_grad_(False)
    decoder, prompt_encoder = model.mask_decoder, model.prompt_encoder
    with torch.no_grad():
        key_pe = prompt_encoder.get_dense_pe().flatten(2).permute(0, 2, 1).contiguous()

    TileGraph = tile_graph(model, decoder, prompt_encoder, key_pe)

    class PromptGraph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sam = model

        def embed(self, coords, labels):
            pe = prompt_encoder.pe_layer
            size = prompt_encoder.input_image_size
            xy = (coords + 0.5) / torch.tensor([size[1], size[0]], dtype=torch.float32)
            xy = (2 * xy - 1) @ pe.positional_encoding_gaussian_matrix * (2 * math.pi)
            out = torch.cat([torch.sin(xy), torch.cos(xy)], dim=-1)
            lab = labels[..., None]
            out = out * (lab != -1).float() + prompt_encoder.not_a_point_embed.weight * (lab == -1).float()
            for i, embedding in enumerate(prompt_encoder.point_embeddings):
                out = out + embedding.weight * (lab == i).float()
            return out

        def forward(self, keys, first_k, first_v, first_image_q, point_coords, point_labels, multimask):
            sparse = self.embed(point_coords, point_labels)
            output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)[None]
            tokens = torch.cat((output_tokens, sparse), dim=1)
            queries, keys = two_way(decoder, tokens, keys, key_pe, (first_k, first_v, first_image_q))
            iou = decoder.iou_prediction_head(queries[:, 0, :])
            best = torch.where(multimask > 0.5, torch.argmax(iou[:, 1:], dim=1) + 1, torch.zeros_like(multimask).long())
            hyper = torch.stack([mlp(queries[:, 1 + j, :]) for j, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=1)
            chosen = torch.index_select(hyper, 1, best)[:, 0]
            low_res = upscaled_logits(decoder.output_upscaling, keys, chosen, 64, 64)
            return low_res, torch.index_select(iou, 1, best).reshape(1), iou

    return fast_encoder_module(model.image_encoder, EncoderOptions(chunk=512)), TileGraph(), PromptGraph()


def _sam_graphs(model) -> list:
    """(name, module, example inputs, input names, output names, dynamic axes) of each SAM graph."""
    import torch

    encoder, tile, prompt = _graph_modules(model)
    size = model.image_encoder.img_size
    features = torch.zeros(1, 256, size // 16, size // 16)
    mask, has_mask = torch.zeros(1, 1, 4 * size // 16, 4 * size // 16), torch.zeros(1)
    with torch.no_grad():
        tile_out = tile(features, mask, has_mask)
    points, labels = torch.tensor([[[500.0, 400.0], [0.0, 0.0]]]), torch.tensor([[1.0, -1.0]])
    return [
        ("encoder", encoder, (torch.zeros(1, 3, size, size),), ["image"], ["features"], None),
        ("decoder_tile", tile, (features, mask, has_mask), ["features", "mask_input", "has_mask"],
         ["keys", "first_k", "first_v", "first_image_q"], None),
        ("decoder_prompt", prompt, (*tile_out, points, labels, torch.ones(1)),
         ["keys", "first_k", "first_v", "first_image_q", "point_coords", "point_labels", "multimask"],
         ["low_res_logits", "score", "iou_predictions"], {"point_coords": {1: "points"}, "point_labels": {1: "points"}}),
    ]


def _export_graphs(specs: list, folder: str, progress: Optional[Progress]) -> None:
    import torch

    for i, (name, module, args, inputs, outputs, dynamic) in enumerate(specs):
        check_canceled(progress)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python ints in segment-anything's shapes
            torch.onnx.export(module, args, os.path.join(folder, name + ".onnx"), input_names=inputs, output_names=outputs,
                              dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, do_constant_folding=True)
        if progress is not None:
            progress.set_progress(10 + 50 * (i + 1) / len(specs))


def _quantize(folder: str, out: str, graphs) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for name in graphs:
        quantize_dynamic(os.path.join(folder, name + ".onnx"), os.path.join(out, name + ".onnx"),
                         op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)


def measure_error(checkpoint: str, folder: str, family: str = "sam", seed: int = 0) -> dict:
    """The exported model in `folder` against the torch fp32 model of `checkpoint`, on one random
    700 x 900 image and three prompts (a click, two clicks, a box): embedding relative error (L2);
    decoder alone (both from the torch embedding): max |low-res logit| difference and worst mask
    IoU; end to end (each from its own embedding): worst mask IoU at full resolution."""
    import torch

    from .backend import TilePrompt
    from .exported import open_exported

    image = np.random.default_rng(seed).integers(0, 256, (700, 900, 3), dtype=np.uint8)
    ours = open_exported(folder, threads=torch.get_num_threads())
    if family == "sam2":
        from .sam2 import Sam2Backend

        reference = Sam2Backend(checkpoint, device="cpu")
    else:
        from .sam import SamBackend

        reference = SamBackend(checkpoint, device="cpu", precision="fp32")
    torch_emb, onnx_emb = reference.encode(image), ours.encode(image)
    a, b = torch_emb.arrays["features"], onnx_emb.arrays["features"]
    result = {"embedding_rel_error": float(np.linalg.norm(a - b) / np.linalg.norm(a)),
              "decoder_logits_max_abs": 0.0, "decoder_mask_iou_min": 1.0, "end_to_end_mask_iou_min": 1.0}
    prompts = [TilePrompt(points=np.array([[300.0, 200.0]], np.float32), labels=np.array([1], np.int32)),
               TilePrompt(points=np.array([[100.0, 500.0], [600.0, 300.0]], np.float32), labels=np.array([1, 0], np.int32)),
               TilePrompt(box=(120.0, 80.0, 640.0, 500.0))]
    for prompt in prompts:
        p, q = reference.decode(torch_emb, prompt), ours.decode(torch_emb, prompt)
        result["decoder_logits_max_abs"] = max(result["decoder_logits_max_abs"], float(np.abs(p.low_res_logits - q.low_res_logits).max()))
        result["decoder_mask_iou_min"] = min(result["decoder_mask_iou_min"], mask_iou(p.low_res_logits > 0, q.low_res_logits > 0))
        e2e = ours.decode(onnx_emb, prompt)
        result["end_to_end_mask_iou_min"] = min(result["end_to_end_mask_iou_min"], mask_iou(p.mask, e2e.mask))
    return result


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 1.0


def export_onnx(checkpoint: str, out: str, model_type: Optional[str] = None, int8: bool = False,
                progress: Optional[Progress] = None) -> dict:
    """Export `checkpoint` into the new folder `out` (written whole or not at all); returns the
    manifest. Takes about a minute for vit_b, plus two encodes to measure the error."""
    out = os.path.abspath(os.fspath(out))
    if os.path.exists(os.path.join(out, MANIFEST)):
        raise OutputError(f"{out} already holds an exported model; remove it or choose another folder.")
    from .checkpoint_files import checkpoint_family

    family = checkpoint_family(checkpoint) if os.path.isfile(checkpoint) else "sam"
    if family == "sam2":
        from .onnx_sam2 import graph_modules, manifest_facts
        from .sam2_checkpoints import load_sam2

        model, found, sha = load_sam2(checkpoint, model_type, "cpu")
        specs, size, model_id, facts = graph_modules(model), model.image_size, found.replace("_", "-", 1), manifest_facts(model)
    else:
        model, found, sha = load_sam(checkpoint, model_type, "cpu")
        specs, size, model_id, facts = _sam_graphs(model), model.image_encoder.img_size, f"sam-{found}", {}
    graphs = [spec[0] for spec in specs]
    if progress is not None:
        progress.set_progress(10)
    parent = os.path.dirname(out)
    try:
        os.makedirs(parent, exist_ok=True)
        work = tempfile.mkdtemp(prefix=".export-", dir=parent)
    except OSError as exc:
        raise OutputError(f"Cannot write into {parent} ({exc.strerror or exc}).") from exc
    try:
        fp32 = os.path.join(work, "fp32")
        final = os.path.join(work, "final")
        os.makedirs(fp32)
        _export_graphs(specs, fp32, progress)
        if int8:
            os.makedirs(final)
            _quantize(fp32, final, graphs)
        else:
            final = fp32
        manifest = {"format": FORMAT, "family": family, "model_type": found, "model_id": model_id + ("-int8" if int8 else ""),
                    "checkpoint": os.path.basename(checkpoint), "checkpoint_sha256": sha,
                    "image_size": size, "quantization": "int8" if int8 else "none", "opset": OPSET,
                    "files": {name: {"path": name + ".onnx", "sha256": sha256_file(os.path.join(final, name + ".onnx")),
                                     "size": os.path.getsize(os.path.join(final, name + ".onnx"))} for name in graphs},
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **facts}
        _write_json(os.path.join(final, MANIFEST), manifest)
        check_canceled(progress)
        manifest["error_vs_torch_fp32"] = measure_error(checkpoint, final, family)
        _write_json(os.path.join(final, MANIFEST), manifest)
        if os.path.isdir(out) and not os.listdir(out):
            os.rmdir(out)
        os.replace(final, out)
    except OSError as exc:
        raise OutputError(f"Cannot write the exported model to {out} ({exc.strerror or exc}).") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if progress is not None:
        progress.set_progress(100)
    return manifest


def _write_json(path: str, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
