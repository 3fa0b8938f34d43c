"""SAM's image encoder run leaner: global attention in query chunks, optional bf16, channels-last.

segment-anything's `Attention` forms the whole (heads, 4096, 4096) score matrix of a global block,
adds the decomposed relative-position terms to a second copy and soft-maxes a third: about 0.8 GB
each for vit_b, so encoding one 1024 tile peaks near 3.7 GB. `FastImageEncoder` runs the very same
modules and weights, but forms the scores for `chunk` queries at a time (`chunk` x 4096 per head),
so peak memory is the weights plus a few activations, and the scores stay in cache while they are
biased, soft-maxed and multiplied. Results equal the reference up to float rounding.

Choose with `EncoderOptions`:
- precision "fp32"; "bf16" (autocast: matmuls in bf16, ~1 % embedding error, 2x faster where the
  CPU has AMX or AVX512-bf16, slower where it emulates bf16); "bf16-weights" (the encoder's
  weights cast to bf16: a little faster than autocast, ~1.1 % error).
- attention "chunked" (default), "sdpa" (torch's fused scaled_dot_product_attention per chunk with
  the relative-position bias as its float mask) or "reference" (segment-anything's own forward).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

PRECISION_ENV = "SEG_PRECISION"  # "fp32", "bf16" or "bf16-weights": overrides the automatic choice
PRECISIONS = ("fp32", "bf16", "bf16-weights")
ATTENTIONS = ("chunked", "sdpa", "reference")


@dataclass(frozen=True)
class EncoderOptions:
    precision: str = "fp32"
    attention: str = "chunked"
    channels_last: bool = False
    chunk: int = 512


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset:
    """The CPU's instruction-set flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True where the CPU computes bf16 natively (AMX or AVX512-bf16 flags in /proc/cpuinfo);
    elsewhere bf16 is emulated and slower than fp32."""
    return bool(cpu_flags(cpuinfo) & {"amx_bf16", "avx512_bf16"})


def default_precision(device: str = "cpu") -> str:
    """The precision that measured fastest within 1 % embedding error: bf16 autocast on CPUs with
    AMX / AVX512-bf16 (about 2x fp32 there, 0.8 % error) and on GPUs; fp32 elsewhere.
    SEG_PRECISION in the environment overrides it (the tests pin fp32 so results agree on every CPU)."""
    forced = os.environ.get(PRECISION_ENV, "")
    if forced in PRECISIONS:
        return forced
    if device.startswith("cuda"):
        return "bf16"
    if device == "cpu" and cpu_has_fast_bf16():
        return "bf16"
    return "fp32"


def _qkv(attention, x):
    """x (B, H, W, C) -> q, k, v each (B * heads, H * W, C // heads)."""
    b, h, w, _ = x.shape
    qkv = attention.qkv(x).reshape(b, h * w, 3, attention.num_heads, -1).permute(2, 0, 3, 1, 4)
    return qkv.reshape(3, b * attention.num_heads, h * w, -1).unbind(0)


def _rel_terms(attention, q, h: int, w: int):
    """The decomposed relative-position terms of segment-anything: rel_h (BH, h*w, h) and
    rel_w (BH, h*w, w), added to the score of key (kh, kw) as rel_h[.., kh] + rel_w[.., kw]."""
    import torch
    from segment_anything.modeling.image_encoder import get_rel_pos

    rh = get_rel_pos(h, h, attention.rel_pos_h)
    rw = get_rel_pos(w, w, attention.rel_pos_w)
    r_q = q.reshape(q.shape[0], h, w, q.shape[-1])
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rh).reshape(q.shape[0], h * w, h)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rw).reshape(q.shape[0], h * w, w)
    return rel_h, rel_w


def chunked_attention(attention, x, chunk: int = 512, fused: bool = False):
    """segment-anything's Attention.forward on x (B, H, W, C), computing `chunk` queries at a time.
    fused: use scaled_dot_product_attention with the relative-position bias as a float mask."""
    import torch
    import torch.nn.functional as F

    b, h, w, _ = x.shape
    q, k, v = _qkv(attention, x)
    bh, tokens, _ = q.shape
    rel_h, rel_w = _rel_terms(attention, q, h, w) if attention.use_rel_pos else (None, None)
    k_t = k.transpose(-2, -1)
    outs = []
    for start in range(0, tokens, chunk):
        stop = min(start + chunk, tokens)
        q_c = q[:, start:stop]
        if fused:
            bias = None
            if rel_h is not None:
                bias = (rel_h[:, start:stop, :, None] + rel_w[:, start:stop, None, :]).reshape(bh, stop - start, tokens)
                bias = bias.to(q_c.dtype)
            outs.append(F.scaled_dot_product_attention(q_c, k, v, attn_mask=bias))
            continue
        scores = (q_c * attention.scale) @ k_t
        if rel_h is not None:
            scores = (scores.view(bh, stop - start, h, w) + rel_h[:, start:stop, :, None]
                      + rel_w[:, start:stop, None, :]).view(bh, stop - start, tokens)
        outs.append(scores.softmax(dim=-1) @ v)
    out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
    out = out.view(b, attention.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    return attention.proj(out)


def _block(block, x, chunk: int, fused: bool):
    """segment-anything's Block.forward with the attention above."""
    from segment_anything.modeling.image_encoder import window_partition, window_unpartition

    shortcut = x
    x = block.norm1(x)
    if block.window_size > 0:
        h, w = x.shape[1], x.shape[2]
        x, pad_hw = window_partition(x, block.window_size)
        x = window_unpartition(chunked_attention(block.attn, x, chunk, fused), block.window_size, pad_hw, (h, w))
    else:
        x = chunked_attention(block.attn, x, chunk, fused)
    x = shortcut + x
    return x + block.mlp(block.norm2(x))


def fast_encoder_module(encoder, options: EncoderOptions = EncoderOptions()):
    """A torch Module over `encoder`'s own submodules (shared weights) that runs the forward above;
    input float (1, 3, 1024, 1024) normalised and padded, output float (1, 256, 64, 64)."""
    import torch

    class FastImageEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder

        def forward(self, x):
            e = self.encoder
            if options.attention == "reference":
                return e(x)
            x = e.patch_embed(x)
            if e.pos_embed is not None:
                x = x + e.pos_embed
            for block in e.blocks:
                x = _block(block, x, options.chunk, options.attention == "sdpa")
            return e.neck(x.permute(0, 3, 1, 2))

    return FastImageEncoder()


class EncoderRunner:
    """Runs SAM's image encoder with `options` on `device`. The model is not changed: bf16 weights
    go to a private copy of the encoder."""

    def __init__(self, model, device: str = "cpu", options: Optional[EncoderOptions] = None):
        import copy

        import torch

        self.options = options or EncoderOptions(precision=default_precision(device))
        if self.options.precision not in PRECISIONS or self.options.attention not in ATTENTIONS:
            raise ValueError(f"Unknown encoder options {self.options}.")
        self.device = device
        encoder = model.image_encoder
        if self.options.precision == "bf16-weights":
            encoder = copy.deepcopy(encoder).to(torch.bfloat16)
        if self.options.channels_last:
            encoder = copy.deepcopy(encoder) if encoder is model.image_encoder else encoder
            encoder = encoder.to(memory_format=torch.channels_last)
        self.module = fast_encoder_module(encoder, self.options).eval()

    def __call__(self, x):
        """x: float (1, 3, 1024, 1024) normalised and padded -> float32 (1, 256, 64, 64)."""
        import torch

        with torch.inference_mode():
            if self.options.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.options.precision == "bf16-weights":
                return self.module(x.to(torch.bfloat16)).float()
            if self.options.precision == "bf16":
                with torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16):
                    return self.module(x).float()
            return self.module(x).float()
