"""SAM behind the model-session interface, with a decoder path tuned for clicks.

`SamPredictor.predict` upsamples every candidate mask to the padded 1024 frame and then to the
image size. A click needs one mask: the decoder runs split into a per-tile part computed once
(`sam_decoder.TileDecoder`) and a per-prompt part, picks the best-scoring candidate at 256 x 256,
and only that one is upsampled (`sam_frames.MaskUpsampler`: OpenCV, sigmoid only where the mask
can be). The dense positional encoding is computed once per session. The image encoder runs
through `sam_encoder.EncoderRunner` (global attention in query chunks: same result, a fraction of
the memory; bf16 where the CPU computes it natively).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from .checkpoints import load_sam, pick_device, require_sam
from .backend import (AUTOMATIC, BATCHED, BOXES, MASKS, POINTS, Embedding, MaskPrediction, TilePrompt, model_frame,
                      stability_score)
from .sam_decoder import TileDecoder
from .sam_encoder import EncoderOptions, EncoderRunner, default_precision
from .sam_frames import MaskUpsampler


class SamBackend:
    """A SAM model session.

    precision "bf16" runs the image encoder under CPU/GPU autocast (about 2x faster on CPUs with
    AMX/AVX-512 bf16, embeddings within ~1 % of fp32; many times slower on CPUs without them);
    "bf16-weights" casts the encoder's weights; "auto" (default) is bf16 where the CPU has AMX or
    AVX512-bf16 or on a GPU, else fp32. The decoder always runs in fp32. encoder: other
    `EncoderOptions` (attention, channels_last, chunk) for benchmarks.
    """

    cacheable = True
    capabilities = frozenset({POINTS, BOXES, MASKS, AUTOMATIC, BATCHED})

    def __init__(self, checkpoint: str, model_type: Optional[str] = None, device: str = "auto",
                 threads: Optional[int] = None, precision: str = "auto", encoder: Optional[EncoderOptions] = None):
        require_sam()  # one sentence, not an ImportError, where torch is missing
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self.device = pick_device(device)
        self.model, self.model_type, self.checkpoint_sha256 = load_sam(checkpoint, model_type, self.device)
        self.model_id = f"sam-{self.model_type}"
        self.precision = default_precision(self.device) if precision == "auto" else precision
        options = encoder or EncoderOptions()
        self.encoder = EncoderRunner(self.model, self.device, EncoderOptions(self.precision, options.attention, options.channels_last, options.chunk))
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
            features = self.encoder(self.model.preprocess(x))
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

        multimask, sx, sy = model_frame(embedding, prompt, multimask)
        h, w = embedding.image_size
        h_in, w_in = embedding.meta["input_size"]
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
            low = chosen[0, 0].float().cpu().numpy()
        return MaskUpsampler((h, w), (h_in, w_in), self.image_size)(low, score)

    def decode_points(self, embedding: Embedding, points: np.ndarray, batch: int = 16) -> List[Tuple[np.ndarray, float, float]]:
        """(mask bool (h, w), score, stability) for each single-point prompt of `points` float32
        (N, 2), the best of three candidates each; `batch` points share one decoder pass (peak
        memory about batch x tile pixels x 5 bytes)."""
        import torch
        import torch.nn.functional as F

        model, dev = self.model, self.device
        h, w = embedding.image_size
        h_in, w_in = embedding.meta["input_size"]
        sx, sy = w_in / w, h_in / h
        size = model.image_encoder.img_size
        out = []
        with torch.inference_mode():
            features = torch.from_numpy(np.ascontiguousarray(embedding.arrays["features"])).float().to(dev)
            image_pe = model.prompt_encoder.get_dense_pe()
            for start in range(0, len(points), batch):
                chunk = points[start:start + batch]
                coords = torch.as_tensor(chunk * (sx, sy), dtype=torch.float32, device=dev)[:, None, :]
                labels = torch.ones((len(chunk), 1), dtype=torch.int, device=dev)
                sparse, dense = model.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
                low_res, iou = model.mask_decoder(image_embeddings=features, image_pe=image_pe, sparse_prompt_embeddings=sparse,
                                                  dense_prompt_embeddings=dense, multimask_output=True)
                best = torch.argmax(iou, dim=1)
                chosen = low_res[torch.arange(len(chunk)), best][:, None]
                up = F.interpolate(chosen, (size, size), mode="bilinear", align_corners=False)[..., :h_in, :w_in]
                if (h_in, w_in) != (h, w):
                    up = F.interpolate(up, (h, w), mode="bilinear", align_corners=False)
                logits = up[:, 0].float().cpu().numpy()
                scores = iou[torch.arange(len(chunk)), best].float().cpu().numpy()
                out += [(logits[k] > 0, float(scores[k]), stability_score(logits[k])) for k in range(len(chunk))]
        return out

    def close(self) -> None:
        self.model, self._image_pe, self._decoder_of = None, None, (None, None)
