"""SAM behind the model-session interface, with a decoder path tuned for clicks.

`SamPredictor.predict` upsamples every candidate mask to the padded 1024 frame and then to the
image size. A click needs one mask: the decoder runs split into a per-tile part computed once
(`sam_decoder.TileDecoder`) and a per-prompt part, picks the best-scoring candidate at 256 x 256,
and only that one is upsampled. The dense positional encoding is computed once per session.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .checkpoints import load_sam, pick_device
from ..errors import PromptError
from .backend import Embedding, MaskPrediction, TilePrompt, stability_score
from .sam_decoder import TileDecoder


class SamBackend:
    """A SAM model session.

    precision "bf16" runs the image encoder under CPU/GPU autocast (about 2x faster on CPUs with
    AMX/AVX-512 bf16, embeddings within ~1 % of fp32); the decoder always runs in fp32.
    """

    cacheable = True

    def __init__(self, checkpoint: str, model_type: Optional[str] = None, device: str = "auto",
                 threads: Optional[int] = None, precision: str = "fp32"):
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self.device = pick_device(device)
        self.model, self.model_type, self.checkpoint_sha256 = load_sam(checkpoint, model_type, self.device)
        self.model_id = f"sam-{self.model_type}"
        self.precision = precision
        self.image_size = self.model.image_encoder.img_size
        with torch.inference_mode():
            self._image_pe = self.model.prompt_encoder.get_dense_pe()
        self._decoder_of: tuple = (None, None)

    def input_size(self, height: int, width: int):
        """SAM's ResizeLongestSide: the (h, w) the image is resized to before padding to 1024."""
        scale = self.image_size / max(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)

    def encode(self, image: np.ndarray) -> Embedding:
        import torch
        import torch.nn.functional as F

        h, w = image.shape[:2]
        h_in, w_in = self.input_size(h, w)
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1)[None].float()
            x = F.interpolate(x, (h_in, w_in), mode="bilinear", align_corners=False, antialias=True) if (h_in, w_in) != (h, w) else x
            x = self.model.preprocess(x)
            if self.precision == "bf16":
                with torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16):
                    features = self.model.image_encoder(x)
            else:
                features = self.model.image_encoder(x)
        return Embedding(image_size=(h, w), arrays={"features": features.float().cpu().numpy()}, meta={"input_size": [h_in, w_in]})

    def _tile_decoder(self, embedding: Embedding) -> TileDecoder:
        """The per-tile part of the decoder, kept for the embedding prompted last."""
        import torch

        if self._decoder_of[0] is not embedding:
            features = torch.from_numpy(embedding.arrays["features"]).float().to(self.device)
            with torch.inference_mode():
                self._decoder_of = (embedding, TileDecoder(self.model, features, self._image_pe))
        return self._decoder_of[1]

    def decode(self, embedding: Embedding, prompt: TilePrompt, multimask: Optional[bool] = None) -> MaskPrediction:
        import torch
        import torch.nn.functional as F

        if prompt.is_empty:
            raise PromptError("The prompt is empty for this tile; give at least one point or a box.")
        if multimask is None:
            multimask = len(prompt.points) == 1 and prompt.box is None and prompt.mask_input is None
        h, w = embedding.image_size
        h_in, w_in = embedding.meta["input_size"]
        sx, sy = w_in / w, h_in / h
        dev = self.device
        with torch.inference_mode():
            points = None
            if len(prompt.points):
                coords = torch.as_tensor(prompt.points * (sx, sy), dtype=torch.float32, device=dev)[None]
                points = (coords, torch.as_tensor(prompt.labels, dtype=torch.int, device=dev)[None])
            boxes = None
            if prompt.box is not None:
                boxes = torch.as_tensor(np.asarray(prompt.box) * (sx, sy, sx, sy), dtype=torch.float32, device=dev)[None]
            tile = self._tile_decoder(embedding)
            if prompt.mask_input is None:
                sparse, _ = self.model.prompt_encoder(points=points, boxes=boxes, masks=None)
                chosen, score = tile.predict(sparse, multimask)
            else:  # refinement: the dense prompt changes, so the generic decoder path
                masks = torch.as_tensor(prompt.mask_input, dtype=torch.float32, device=dev)[None]
                sparse, dense = self.model.prompt_encoder(points=points, boxes=boxes, masks=masks)
                low_res, iou = self.model.mask_decoder(
                    image_embeddings=tile.features, image_pe=self._image_pe,
                    sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
                best = int(torch.argmax(iou[0]))
                chosen, score = low_res[:, best:best + 1], float(iou[0, best])
            size = self.image_size
            up = F.interpolate(chosen, (size, size), mode="bilinear", align_corners=False)[..., :h_in, :w_in]
            if (h_in, w_in) != (h, w):
                up = F.interpolate(up, (h, w), mode="bilinear", align_corners=False)
            logits = up[0, 0].float().cpu().numpy()
            low = chosen[0].float().cpu().numpy()
        probability = (1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))).astype(np.float32)
        return MaskPrediction(mask=logits > 0, probability=probability, score=score,
                              stability=stability_score(logits), low_res_logits=low)
