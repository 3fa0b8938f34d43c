"""From Start to the first mask on a new raster, per model, side by side in one run on 2 threads.

For each model (random weights from `seg models random`, the real architecture and compute cost),
in its own process so that peak memory is its own; a model written MODEL:onnx runs its export
(`seg models export-onnx`, made once beforehand) on ONNX Runtime, in a process without torch: load the checkpoint, encode a new 1024 x 1024
tile and decode one click: "first mask" (what pressing Start on a new raster costs before the
first mask shows); "encode": one more tile; "click p50 / p95": the model's decode of single
clicks (prompt to mask at tile size). Outlines are left out: random weights give noise masks,
whose polygons cost what no real mask does. Peak memory is the process's maximum resident set.

    .venv/bin/python bench/bench_first_mask.py [--models vit_b,sam2.1_hiera_tiny,sam2.1_hiera_tiny:onnx,...] [--clicks 20] [--json]

Prints the CPU, its flags that matter, the load average before and after, and the precision.
Asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

MODELS = ("vit_b", "sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large")

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, peak_rss_mb  # noqa: E402


def prepare(name: str, folder: str) -> str:
    """The random-weight checkpoint of `name` (MODEL or MODEL:onnx), or its ONNX export; made once."""
    from seg_qgis_plugin.core.models.random_weights import write_random_checkpoint

    model_type, _, runtime = name.partition(":")
    checkpoint = os.path.join(folder, f"{model_type}.pt")
    if not os.path.exists(checkpoint):
        write_random_checkpoint(model_type, checkpoint)
    if runtime != "onnx":
        return checkpoint
    exported = os.path.join(folder, f"{model_type}-onnx")
    if not os.path.exists(os.path.join(exported, "manifest.json")):
        from seg_qgis_plugin.core.models.onnx_export import export_onnx

        warnings.simplefilter("ignore")
        export_onnx(checkpoint, exported)
    return exported


def measure(name: str, model: str, clicks: int) -> dict:
    """In this process: load, first mask, encode and click times and peak memory for `model`."""
    import numpy as np

    from seg_qgis_plugin.core.engine.labeling import open_backend
    from seg_qgis_plugin.core.models.backend import TilePrompt

    rng = np.random.default_rng(0)
    tiles = [rng.integers(0, 255, (1024, 1024, 3), dtype=np.uint8) for _ in range(2)]
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    backend = open_backend(model, backend="onnx" if name.endswith(":onnx") else "sam", device="cpu", threads=2)
    load = time.perf_counter() - start
    embedding = backend.encode(tiles[0])
    backend.decode(embedding, TilePrompt(np.array([[512, 512]], np.float32), np.array([1], np.int32)))
    first = time.perf_counter() - start
    start = time.perf_counter()
    embedding = backend.encode(tiles[1])
    encode = time.perf_counter() - start
    times = []
    for i in range(clicks):
        prompt = TilePrompt(np.array([[100 + 37 * i, 900 - 29 * i]], np.float32), np.array([1], np.int32))
        start = time.perf_counter()
        backend.decode(embedding, prompt)
        times.append(time.perf_counter() - start)
    times.sort()
    return {"model": name, "load_s": round(load, 2), "first_mask_s": round(first, 2), "encode_tile_s": round(encode, 2),
            "click_p50_ms": round(1000 * times[len(times) // 2], 1), "click_p95_ms": round(1000 * times[int(0.95 * (len(times) - 1))], 1),
            "peak_mb": round(peak_rss_mb()), "precision": getattr(backend, "precision", "fp32")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(), "seg-bench"))
    parser.add_argument("--json", action="store_true", help="one JSON object per model, with the machine's facts")
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.makedirs(args.folder, exist_ok=True)
    if args.prepare:
        print(prepare(args.prepare, args.folder))
        return
    if args.worker:
        if not args.worker.endswith(":onnx"):
            import torch

            torch.set_num_threads(2)
        print(json.dumps(measure(args.worker, args.model, args.clicks)))
        return

    names = args.models.split(",")
    models = {name: subprocess.run([sys.executable, __file__, "--prepare", name, "--folder", args.folder], check=True,
                                   capture_output=True, text=True).stdout.strip().splitlines()[-1] for name in names}
    info = dict(machine(threads=2), load_before=[round(v, 2) for v in os.getloadavg()])
    rows = []
    for name in names:
        done = subprocess.run([sys.executable, __file__, "--worker", name, "--model", models[name], "--clicks", str(args.clicks)],
                              capture_output=True, text=True)
        if done.returncode:
            rows.append({"model": name, "error": (done.stderr.strip().splitlines() or ["failed"])[-1]})
        else:
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    info["load_after"] = [round(v, 2) for v in os.getloadavg()]
    if args.json:
        for row in rows:
            print(json.dumps(dict(row, **info)))
        return
    print(f"CPU: {info['cpu']} ({info['cores']} cores; {' '.join(info['flags']) or 'no avx2'}), 2 threads, "
          f"load average {info['load_before']} before, {info['load_after']} after")
    print(f"{'model':<24} {'load s':>7} {'first mask s':>12} {'encode s':>9} {'click p50 ms':>13} {'p95 ms':>7} {'peak MB':>8}  precision")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<24} failed: {r['error']}")
            continue
        print(f"{r['model']:<24} {r['load_s']:>7} {r['first_mask_s']:>12} {r['encode_tile_s']:>9} {r['click_p50_ms']:>13} {r['click_p95_ms']:>7} "
              f"{r['peak_mb']:>8}  {r['precision']}")


if __name__ == "__main__":
    main()
