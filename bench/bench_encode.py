"""Encoding: pipeline throughput versus bare SamPredictor.set_image, and peak memory by raster size.

Throughput: the same tiles through Segmenter.encode (read window, stretch, encode, write the cache)
and through bare set_image on images already in memory, SAM vit_b random weights, 2 threads.
Memory: each raster size in a fresh process encoding the whole grid (tiny model: memory is about
the pipeline, not the encoder), peak RSS printed.
Run: .venv/bin/python bench/bench_encode.py [--tiles 3] [--sizes 2500,10000] [--precision fp32]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

from common import peak_rss_mb, random_checkpoint, write_big_scene  # noqa: E402


def throughput(model_type: str, tiles: int, precision: str) -> None:
    import torch
    from segment_anything import SamPredictor

    from seg_qgis_plugin.core.engine.embedding_cache import EmbeddingCache
    from seg_qgis_plugin.core.geo.raster import RasterSource
    from seg_qgis_plugin.core.models.sam import SamBackend
    from seg_qgis_plugin.core.engine.segmenter import Segmenter

    torch.set_num_threads(2)
    folder = tempfile.mkdtemp()
    raster = write_big_scene(os.path.join(folder, "ortho.tif"), 4096)
    model = SamBackend(random_checkpoint(model_type), device="cpu", threads=2, precision=precision)
    segmenter = Segmenter(RasterSource(raster), model, cache=EmbeddingCache(os.path.join(folder, "cache")))
    chosen = list(segmenter.grid)[:tiles]
    images = [segmenter.image(t)[0] for t in chosen]
    predictor = SamPredictor(model.model)
    predictor.set_image(images[0])  # warm up both paths once
    model.encode(images[0])
    start = time.perf_counter()
    for image in images:
        if precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                predictor.set_image(image)
        else:
            predictor.set_image(image)
    bare = time.perf_counter() - start
    start = time.perf_counter()
    counts = segmenter.encode(chosen)
    ours = time.perf_counter() - start
    assert counts["encoded"] == tiles
    print(f"SAM {model_type} {precision}, 2 threads, {tiles} tiles of 1024 x 1024")
    print(f"  bare set_image        : {bare / tiles:6.2f} s/tile  ({tiles / bare:.3f} tiles/s)")
    print(f"  pipeline (read+cache) : {ours / tiles:6.2f} s/tile  ({tiles / ours:.3f} tiles/s)")
    print(f"  pipeline overhead     : {100 * (ours - bare) / bare:+.1f} %")


def memory(size: int) -> None:
    """Runs in its own process: encode the whole grid of a size x size raster, print peak RSS."""
    from seg_qgis_plugin.core.engine.embedding_cache import EmbeddingCache
    from seg_qgis_plugin.core.geo.raster import RasterSource
    from seg_qgis_plugin.core.models.sam import SamBackend
    from seg_qgis_plugin.core.engine.segmenter import Segmenter

    folder = os.path.join(tempfile.gettempdir(), "seg-bench")
    raster = write_big_scene(os.path.join(folder, f"scene_{size}.tif"), size)
    baseline = peak_rss_mb()
    model = SamBackend(random_checkpoint("vit_tiny"), device="cpu", threads=2)
    segmenter = Segmenter(RasterSource(raster), model, cache=EmbeddingCache(tempfile.mkdtemp(), float16=True))
    start = time.perf_counter()
    counts = segmenter.encode()
    elapsed = time.perf_counter() - start
    raw_mb = size * size * 3 / 2 ** 20
    print(f"  {size:>6} x {size:<6} ({raw_mb:7.0f} MB of pixels): {counts['encoded']:4d} tiles in {elapsed:6.1f} s "
          f"({counts['encoded'] / elapsed:.2f} tiles/s), peak RSS {peak_rss_mb():7.0f} MB (at start {baseline:.0f} MB)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--tiles", type=int, default=3)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--sizes", default="2500,10000")
    parser.add_argument("--memory-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only:
        memory(args.memory_only)
        return
    if args.tiles:
        throughput(args.model, args.tiles, args.precision)
    print("peak memory while encoding a whole raster (vit_tiny, tile 1024, overlap 256):")
    for size in (int(s) for s in args.sizes.split(",") if s):
        subprocess.run([sys.executable, __file__, "--memory-only", str(size)], check=True)


if __name__ == "__main__":
    main()
