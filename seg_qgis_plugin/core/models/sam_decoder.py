"""SAM's mask decoder, split into what is fixed for a tile and what changes with each prompt.

For a tile without a mask prompt, the image side of the decoder's first attention block does not
depend on the prompt: the flattened embedding with its dense prompt embedding, the positional
encoding, and the three projections of the image tokens in block 0 (keys and values for the
token-to-image attention, queries for the image-to-token attention). `TileDecoder` computes them
once, so a click pays only for the prompt-dependent part: about a quarter fewer FLOPs and none of
the repeats, permutes and positional adds that dominate the decoder on a CPU. It also forms only
the chosen mask instead of all four. The arithmetic is segment-anything's own (same modules, same
order of operations), so results match `SamPredictor.predict`.
"""
from __future__ import annotations

import math
from typing import Tuple


def _heads(x, n: int):
    b, tokens, c = x.shape
    return x.reshape(b, tokens, n, c // n).transpose(1, 2)


def _attend(attention, q, k, v):
    """segment_anything's Attention.forward after its input projections."""
    import torch

    attn = q @ k.permute(0, 1, 3, 2)
    attn = attn / math.sqrt(q.shape[-1])
    attn = torch.softmax(attn, dim=-1)
    out = attn @ v
    b, n, tokens, c = out.shape
    return attention.out_proj(out.transpose(1, 2).reshape(b, tokens, n * c))


class TileDecoder:
    """The decoder for one tile's embedding (features: float tensor (1, 256, 64, 64)); image_pe is
    the prompt encoder's dense positional encoding (the same for every tile)."""

    def __init__(self, model, features, image_pe):
        decoder, prompt_encoder = model.mask_decoder, model.prompt_encoder
        self.model = model
        first = decoder.transformer.layers[0]
        self.heads = first.cross_attn_token_to_image.num_heads
        dense = prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        self.features = features
        self.shape = features.shape
        self.keys = (features + dense).flatten(2).permute(0, 2, 1).contiguous()
        self.key_pe = image_pe.flatten(2).permute(0, 2, 1).contiguous()
        k = self.keys + self.key_pe
        self.first_k = _heads(first.cross_attn_token_to_image.k_proj(k), self.heads)
        self.first_v = _heads(first.cross_attn_token_to_image.v_proj(self.keys), self.heads)
        self.first_image_q = _heads(first.cross_attn_image_to_token.q_proj(k), self.heads)

    def predict(self, sparse, multimask: bool) -> Tuple[object, float]:
        """sparse: prompt tokens (1, N, 256). Returns the best mask's low-resolution logits
        (1, 1, 256, 256) and its predicted IoU."""
        import torch

        decoder = self.model.mask_decoder
        transformer = decoder.transformer
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)[None]
        tokens = torch.cat((output_tokens, sparse), dim=1)
        queries, query_pe, keys = tokens, tokens, self.keys
        for i, layer in enumerate(transformer.layers):
            if layer.skip_first_layer_pe:
                queries = layer.self_attn(q=queries, k=queries, v=queries)
            else:
                q = queries + query_pe
                queries = queries + layer.self_attn(q=q, k=q, v=queries)
            queries = layer.norm1(queries)

            t2i = layer.cross_attn_token_to_image
            if i == 0:
                k_heads, v_heads = self.first_k, self.first_v
            else:
                k = keys + self.key_pe
                k_heads, v_heads = _heads(t2i.k_proj(k), self.heads), _heads(t2i.v_proj(keys), self.heads)
            q = _heads(t2i.q_proj(queries + query_pe), self.heads)
            queries = layer.norm2(queries + _attend(t2i, q, k_heads, v_heads))
            queries = layer.norm3(queries + layer.mlp(queries))

            i2t = layer.cross_attn_image_to_token
            image_q = self.first_image_q if i == 0 else _heads(i2t.q_proj(k), self.heads)
            q = queries + query_pe
            token_k, token_v = _heads(i2t.k_proj(q), self.heads), _heads(i2t.v_proj(queries), self.heads)
            keys = layer.norm4(keys + _attend(i2t, image_q, token_k, token_v))

        final = transformer.final_attn_token_to_image
        k = keys + self.key_pe
        q = _heads(final.q_proj(queries + query_pe), self.heads)
        queries = transformer.norm_final_attn(queries + _attend(final, q, _heads(final.k_proj(k), self.heads), _heads(final.v_proj(keys), self.heads)))

        iou = decoder.iou_prediction_head(queries[:, 0, :])[0]
        candidates = range(1, decoder.num_mask_tokens) if multimask else range(0, 1)
        best = max(candidates, key=lambda j: float(iou[j]))
        b, c, h, w = self.shape
        upscaled = decoder.output_upscaling(keys.transpose(1, 2).reshape(b, c, h, w))
        hyper = decoder.output_hypernetworks_mlps[best](queries[:, 1 + best, :])
        _, c_up, h_up, w_up = upscaled.shape
        mask = (hyper[:, None, :] @ upscaled.reshape(1, c_up, h_up * w_up)).reshape(1, 1, h_up, w_up)
        return mask, float(iou[best])
