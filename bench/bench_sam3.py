"""SAM 3 on this machine: seconds and memory per 1008 x 1008 tile, and what a 10,000 x 10,000
orthomosaic costs.

The model is the official configuration (848 M parameters) with random weights, from
`seg models random sam3` (kept in /tmp/seg-bench/sam3-random): real compute cost, meaningless masks.
Per tile: the vision encoder once, then each phrase (text encoder, DETR encoder/decoder, mask
decoder, the library's post-processing). The whole-raster estimate counts Seg's tiles (1008 with
256 overlap) and assumes one phrase.

    .venv/bin/python bench/bench_sam3.py [--tiles 2] [--phrases 2] [--threads 2] [--json]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings

import numpy as np

from common import machine, peak_rss_mb

FOLDER = "/tmp/seg-bench/sam3-random"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=2)
    parser.add_argument("--phrases", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    load_before = os.getloadavg()[0]
    from seg_qgis_plugin.core.models.random_weights import write_random_sam3
    from seg_qgis_plugin.core.models.sam3 import Sam3Backend

    if not os.path.exists(os.path.join(FOLDER, "config.json")):
        os.makedirs(os.path.dirname(FOLDER), exist_ok=True)
        write_random_sam3(FOLDER)
    start = time.perf_counter()
    backend = Sam3Backend(FOLDER, args.device, args.threads)
    load_s = time.perf_counter() - start
    params = sum(p.numel() for p in backend.model.parameters())
    rng = np.random.default_rng(0)
    encode, find = [], []
    for _ in range(args.tiles):
        image = (rng.random((1008, 1008, 3)) * 255).astype(np.uint8)
        start = time.perf_counter()
        encoded = backend.vision(image)
        _sync(backend)
        encode.append(time.perf_counter() - start)
        for phrase in ("pond", "building", "tree", "road")[:args.phrases]:
            start = time.perf_counter()
            backend.find(encoded, phrase, min_score=0.5)
            _sync(backend)
            find.append(time.perf_counter() - start)
    tile_s = float(np.median(encode) + np.median(find))
    tiles = math.ceil((10000 - 256) / (1008 - 256)) ** 2
    row = dict(model="sam3 (random weights, official configuration)", parameters=params, device=backend.device,
               precision="fp32", load_s=round(load_s, 1), encode_s=round(float(np.median(encode)), 2),
               phrase_s=round(float(np.median(find)), 2), tile_s=round(tile_s, 2), peak_mb=round(peak_rss_mb()),
               tiles_10k=tiles, raster_10k_h=round(tiles * tile_s / 3600, 2), **machine(args.threads),
               load_before=round(load_before, 2), load_after=round(os.getloadavg()[0], 2))
    if args.json:
        print(json.dumps(row))
    else:
        print(f"# {row['cpu']} | {row['flags']} | threads {row['threads']} | {row['device']} {row['precision']} | "
              f"load {row['load_before']} -> {row['load_after']}")
        print(f"SAM 3 {params / 1e6:.0f} M parameters: open {row['load_s']} s; per 1008 tile encode {row['encode_s']} s "
              f"+ {row['phrase_s']} s per phrase; peak {row['peak_mb']} MB; 10,000 x 10,000 = {tiles} tiles "
              f"= {row['raster_10k_h']} h for one phrase")


def _sync(backend) -> None:
    if str(backend.device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
