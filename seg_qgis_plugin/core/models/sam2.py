"""SAM 2.1 (Hiera tiny, small, base+, large) behind the model-session interface, with Meta's `sam2`
package doing the model work.

The image encoder runs as `SAM2ImagePredictor.set_image` does (the image resized to 1024 x 1024,
the "no memory" embedding added), and its outputs are the tile's embedding: the 64 x 64 image
features and SAM 2's two high-resolution feature maps, cached together. A click runs the prompt
encoder and mask decoder once, keeps the best-scoring candidate at 256 x 256 and upsamples only
that one straight to the tile (SAM 2 does not pad), as `SAM2ImagePredictor.predict` would.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .backend import AUTOMATIC, BOXES, MASKS, POINTS, Embedding, MaskPrediction, TilePrompt, model_frame
from .checkpoints import pick_device
from .sam2_checkpoints import load_sam2, quiet_sam2
from .sam_frames import MaskUpsampler

HIGH_RES = ("high_res_0", "high_res_1")


class Sam2Backend:
    """A SAM 2.1 model session; checkpoint: an official SAM 2.1 file or one from `seg models random`."""

    cacheable = True
    capabilities = frozenset({POINTS, BOXES, MASKS, AUTOMATIC})

    def __init__(self, checkpoint: str, model_type: Optional[str] = None, device: str = "auto", threads: Optional[int] = None):
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self.device = pick_device(device)
        self.model, self.model_type, self.checkpoint_sha256 = load_sam2(checkpoint, model_type, self.device)
        self.model_id = self.model_type.replace("_", "-", 1)  # sam2.1-hiera_tiny
        self.precision = "fp32"
        with quiet_sam2():
            from sam2.sam2_image_predictor import SAM2ImagePredictor

            self.predictor = SAM2ImagePredictor(self.model)
        self.image_size = self.model.image_size
        with torch.inference_mode():
            self._image_pe = self.model.sam_prompt_encoder.get_dense_pe()

    def encode(self, image: np.ndarray) -> Embedding:
        import torch

        with torch.inference_mode():
            self.predictor.set_image(np.ascontiguousarray(image))
            features = self.predictor._features
            arrays = {"features": features["image_embed"].float().cpu().numpy()}
            arrays.update((name, f.float().cpu().numpy()) for name, f in zip(HIGH_RES, features["high_res_feats"]))
        self.predictor.reset_predictor()
        size = self.image_size
        return Embedding(image_size=image.shape[:2], arrays=arrays, meta={"input_size": [size, size]})

    def decode(self, embedding: Embedding, prompt: TilePrompt, multimask: Optional[bool] = None) -> MaskPrediction:
        import torch

        multimask, sx, sy = model_frame(embedding, prompt, multimask)
        dev = self.device
        coords, labels = np.asarray(prompt.points, np.float32) * (sx, sy), np.asarray(prompt.labels, np.int32)
        if prompt.box is not None:  # SAM 2 takes a box as two corner points labelled 2 and 3, first
            corners = np.asarray(prompt.box, np.float32).reshape(2, 2) * (sx, sy)
            coords, labels = np.concatenate([corners, coords]), np.concatenate([[2, 3], labels]).astype(np.int32)
        with torch.inference_mode():
            tensor = lambda a, dtype=torch.float32: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=dev)  # noqa: E731
            masks = tensor(np.clip(prompt.mask_input, -32.0, 32.0))[None] if prompt.mask_input is not None else None
            sparse, dense = self.model.sam_prompt_encoder(points=(tensor(coords)[None], tensor(labels, torch.int)[None]),
                                                          boxes=None, masks=masks)
            low_res, iou, _, _ = self.model.sam_mask_decoder(
                image_embeddings=tensor(embedding.arrays["features"]), image_pe=self._image_pe,
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask,
                repeat_image=False, high_res_features=[tensor(embedding.arrays[name]) for name in HIGH_RES])
            best = int(torch.argmax(iou[0]))
            low = low_res[0, best].float().cpu().numpy()
        size = self.image_size
        return MaskUpsampler(embedding.image_size, (size, size), size, direct=True)(low, float(iou[0, best]))

    def close(self) -> None:
        self.model = self.predictor = self._image_pe = None
