"""Encoding: pipeline throughput versus bare SamPredictor.set_image, and peak memory by raster size.

Throughput: the same tiles through Segmenter.encode (read window, stretch, encode, write the cache)
and through bare set_image on images already in memory, SAM vit_b random weights, 2 threads.
Memory: each raster size in a fresh process encoding the whole grid (tiny model: memory is about
the pipeline, not the encoder), peak RSS printed.
Run: .venv/bin/python bench/bench_encode.py [--tiles 3] [--sizes 2500,10000] [--precision fp32]

--json: ours (the default encoder: SamBackend with precision "auto", chunked global attention; or
--ours onnx: the ONNX Runtime encoder) against bare fp32 `SamPredictor.set_image`, each in its own
worker process, tile by tile in alternation (so both see the same machine load), and prints one
JSON line: ours_s_per_tile, bare_s_per_tile (p50), embedding_rel_error (L2, ours vs bare, tile 1),
peak_rss_mb (ours' worker: VmHWM) and bare_peak_rss_mb.
--variants: the encoder options side by side in one process, interleaved, on the same tiles.
--json --model sam2.1_hiera_tiny (or _small, _base_plus, _large): SAM 2.1's encoder through Seg
against bare `SAM2ImagePredictor.set_image` (Seg runs that same encoder: the ratio shows the
pipeline's overhead).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))

from common import machine, peak_rss_mb, random_checkpoint, write_big_scene  # noqa: E402


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


def worker(side: str, model_type: str, tiles: int, features_path: str) -> None:
    """A worker process for --json: waits for a line on stdin, encodes the next tile, answers with
    its seconds and this process's peak RSS; saves the first tile's features to features_path."""
    import numpy as np
    import torch

    from seg_qgis_plugin.core.engine.segmenter import Segmenter
    from seg_qgis_plugin.core.geo.raster import RasterSource

    torch.set_num_threads(2)
    raster = write_big_scene(os.path.join(tempfile.gettempdir(), "seg-bench", "scene_4096.tif"), 4096)
    checkpoint = random_checkpoint(model_type)
    warnings.simplefilter("ignore")  # random weights: the loaders say so on every load
    if side == "bare" and model_type.startswith("sam2"):
        from seg_qgis_plugin.core.models.sam2_checkpoints import load_sam2, quiet_sam2

        with quiet_sam2():
            from sam2.sam2_image_predictor import SAM2ImagePredictor

            predictor = SAM2ImagePredictor(load_sam2(checkpoint)[0])

        def encode(image):
            predictor.set_image(image)
            return predictor._features["image_embed"].numpy()
        model = None
    elif side == "bare":
        from segment_anything import SamPredictor

        from seg_qgis_plugin.core.models.checkpoints import load_sam

        predictor = SamPredictor(load_sam(checkpoint)[0])

        def encode(image):
            predictor.set_image(image)
            return predictor.features.numpy()
        model = None
    else:
        if side == "onnx":
            from bench_interactive import exported_model

            from seg_qgis_plugin.core.models.exported import open_exported

            model = open_exported(exported_model(model_type), threads=2)
        else:
            from seg_qgis_plugin.core.engine.labeling import open_backend

            model = open_backend(checkpoint, backend="sam", device="cpu", threads=2, precision="auto")  # SAM or SAM 2.1

        def encode(image):
            return model.encode(image).arrays["features"]
    segmenter = Segmenter(RasterSource(raster), model or _Dummy())
    images = [segmenter.image(t)[0] for t in list(segmenter.grid)[:tiles]]
    print("ready", getattr(model, "precision", "fp32"), flush=True)
    for i, image in enumerate(images):
        sys.stdin.readline()
        start = time.perf_counter()
        features = encode(image)
        elapsed = time.perf_counter() - start
        if i == 0:
            np.save(features_path, features)
        print(f"{elapsed} {peak_rss_mb()}", flush=True)


class _Dummy:
    model_id, checkpoint_sha256, cacheable = "none", None, False


def side_by_side(model_type: str, tiles: int, ours: str) -> dict:
    """Run ours and bare in two worker processes, alternating tile by tile."""
    import numpy as np

    folder = tempfile.mkdtemp()
    procs, precision = {}, {}
    for side in (ours, "bare"):
        procs[side] = subprocess.Popen([sys.executable, __file__, "--worker", side, "--model", model_type, "--tiles", str(tiles),
                                        "--features", os.path.join(folder, side + ".npy")],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        word, precision[side] = procs[side].stdout.readline().split()
        assert word == "ready"
    seconds = {side: [] for side in procs}
    peak = {}
    for _ in range(tiles):
        for side, proc in procs.items():
            proc.stdin.write("go\n")
            proc.stdin.flush()
            elapsed, rss = proc.stdout.readline().split()
            seconds[side].append(float(elapsed))
            peak[side] = float(rss)
    for proc in procs.values():
        proc.stdin.close()
        proc.wait()
    a, b = np.load(os.path.join(folder, "bare.npy")), np.load(os.path.join(folder, ours + ".npy"))
    return {"ours_s_per_tile": round(float(np.median(seconds[ours])), 3), "bare_s_per_tile": round(float(np.median(seconds["bare"])), 3),
            "embedding_rel_error": float(np.linalg.norm(a - b) / np.linalg.norm(a)), "peak_rss_mb": round(peak[ours]),
            "bare_peak_rss_mb": round(peak["bare"]), "ours": ours, "precision": precision[ours], "model": model_type, "tiles": tiles, "threads": 2,
            "ours_s": [round(v, 3) for v in seconds[ours]], "bare_s": [round(v, 3) for v in seconds["bare"]]}


def variants(model_type: str, tiles: int, names) -> None:
    """Encoder options on the same random inputs, interleaved in one process; error vs reference."""
    import numpy as np
    import torch

    from seg_qgis_plugin.core.models.checkpoints import load_sam
    from seg_qgis_plugin.core.models.sam_encoder import EncoderOptions, EncoderRunner

    torch.set_num_threads(2)
    model = load_sam(random_checkpoint(model_type))[0]
    runners = {"reference": EncoderRunner(model, "cpu", EncoderOptions(attention="reference")),
               "chunked": EncoderRunner(model, "cpu", EncoderOptions()),
               "sdpa": EncoderRunner(model, "cpu", EncoderOptions(attention="sdpa")),
               "channels_last": EncoderRunner(model, "cpu", EncoderOptions(channels_last=True)),
               "bf16": EncoderRunner(model, "cpu", EncoderOptions(precision="bf16")),
               "bf16-weights": EncoderRunner(model, "cpu", EncoderOptions(precision="bf16-weights"))}
    if "onnx" in names:
        from bench_interactive import exported_model

        from seg_qgis_plugin.core.models.onnx_backend import OnnxBackend

        session = OnnxBackend(exported_model(model_type), threads=2).session("encoder")
        runners["onnx"] = lambda x: torch.from_numpy(session.run(["features"], {"image": x.numpy()})[0])
    runners = {k: v for k, v in runners.items() if k in names or k == "reference"}
    torch.manual_seed(0)
    inputs = [torch.randn(1, 3, 1024, 1024) for _ in range(tiles)]
    seconds = {k: [] for k in runners}
    errors = {k: 0.0 for k in runners}
    for x in inputs:
        ref = None
        for name, run in runners.items():
            start = time.perf_counter()
            y = run(x)
            seconds[name].append(time.perf_counter() - start)
            ref = y if name == "reference" else ref
            errors[name] = max(errors[name], float((y - ref).norm() / ref.norm()))
    print(f"encoder variants, SAM {model_type}, 2 threads, {tiles} inputs, interleaved (p50 s, worst relative error vs reference)")
    for name in runners:
        print(f"  {name:<14} {np.median(seconds[name]):7.2f} s   error {100 * errors[name]:.4f} %")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--tiles", type=int, default=3)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--sizes", default="2500,10000")
    parser.add_argument("--memory-only", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="ours vs bare side by side; one JSON line")
    parser.add_argument("--ours", default="torch", choices=["torch", "onnx"], help="with --json: our encoder to measure")
    parser.add_argument("--variants", help="comma list of reference,chunked,sdpa,channels_last,bf16,bf16-weights,onnx")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--features", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.model, args.tiles, args.features)
        return
    if args.json:
        load_before = [round(v, 2) for v in os.getloadavg()]
        result = side_by_side(args.model, args.tiles, args.ours)
        print(json.dumps(dict(result, **machine(threads=2), load_before=load_before, load_after=[round(v, 2) for v in os.getloadavg()])))
        return
    if args.variants:
        variants(args.model, args.tiles, args.variants.split(","))
        return
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
