"""Click-to-mask latency with a cached embedding, SAM vit_b (random weights), 2 CPU threads.

Ours: a prompt in map coordinates -> Segmenter.segment -> georeferenced mask, on ONNX Runtime (the
model exported once with core.models.onnx_export) and on torch. Bare: SamPredictor.predict on the
same embedding and click (multimask, as ours for one click). All three run in one process, in
turns: each round, each path clicks each demo scene object inside the tile once, one after the
other as a user clicks (clicks of different libraries interleaved one by one would time their
thread pools waking each other); p50 over all clicks.
mask_iou_vs_bare: the worst IoU between our mask and bare's best mask reduced by the same rule
(`_clicked_parts`: the parts under the click).
SAM 2.1 models (--model sam2.1_hiera_tiny ...): ours on ONNX Runtime and torch against bare
`SAM2ImagePredictor.predict`, the same way.
Run: .venv/bin/python bench/bench_interactive.py [--model vit_b] [--repeat 20] [--json]
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import machine, random_checkpoint  # noqa: E402
from seg_qgis_plugin.core.engine.embedding_cache import EmbeddingCache  # noqa: E402
from seg_qgis_plugin.core.engine.segmenter import Segmenter, _clicked_parts  # noqa: E402
from seg_qgis_plugin.core.geo.prompts import Prompt  # noqa: E402
from seg_qgis_plugin.core.geo.raster import RasterSource  # noqa: E402
from seg_qgis_plugin.core.geo.tiling import Tiling  # noqa: E402
from seg_qgis_plugin.core.geo.vectorize import mask_to_geometry  # noqa: E402
from seg_qgis_plugin.core.models.backend import TilePrompt  # noqa: E402
from seg_qgis_plugin.core.models.onnx_backend import OnnxBackend, is_exported_model  # noqa: E402
from seg_qgis_plugin.core.models.sam import SamBackend  # noqa: E402
from seg_qgis_plugin.demo.scene import write_scene  # noqa: E402


def exported_model(model_type: str) -> str:
    """The random-weights checkpoint exported to ONNX once, kept beside it for later runs."""
    from seg_qgis_plugin.core.models.onnx_export import export_onnx

    checkpoint = random_checkpoint(model_type)
    folder = os.path.join(os.path.dirname(checkpoint), f"onnx-{model_type}")
    if not is_exported_model(folder):
        export_onnx(checkpoint, folder)
    return folder


def iou(a, b) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 1.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--repeat", type=int, default=20, help="rounds; each clicks every object once per path")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    load_before = [round(v, 2) for v in os.getloadavg()]
    torch.set_num_threads(2)
    folder = tempfile.mkdtemp()
    raster = os.path.join(folder, "ortho.tif")
    truth = write_scene(raster, 1024, 1024)
    source = RasterSource(raster)
    cache = EmbeddingCache(os.path.join(folder, "cache"))
    sam2 = args.model.startswith("sam2")
    if sam2:
        from seg_qgis_plugin.core.models.exported import open_exported
        from seg_qgis_plugin.core.models.sam2 import Sam2Backend

        torch_model = Sam2Backend(random_checkpoint(args.model), device="cpu", threads=2)
        onnx_model = open_exported(exported_model(args.model), threads=2)
    else:
        torch_model = SamBackend(random_checkpoint(args.model), device="cpu", threads=2, precision="fp32")
        onnx_model = OnnxBackend(exported_model(args.model), threads=2)
    ours_torch = Segmenter(source, torch_model, tiling=Tiling(1024, 256), max_windows=1, cache=cache)
    ours_onnx = Segmenter(source, onnx_model, tiling=Tiling(1024, 256), max_windows=1, cache=cache)
    tile = ours_torch.grid.at(0, 0)
    embedding = ours_torch.embedding(tile)  # encoded once by torch; the ONNX session reads it from the same cache
    assert ours_onnx.is_encoded(tile)
    ours_onnx.embedding(tile)

    if sam2:
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        predictor = SAM2ImagePredictor(torch_model.model)
        predictor.set_image(ours_torch.image(tile)[0])  # the same image and weights: the same embedding
    else:
        from segment_anything import SamPredictor

        predictor = SamPredictor(torch_model.model)
        predictor.set_image(ours_torch.image(tile)[0])
        predictor.features = torch.from_numpy(embedding.arrays["features"])  # the very same embedding

    objects = [t for t in truth if 0 <= t.point[0] < 1024 and 0 <= t.point[1] < 1024]
    clicks = []
    for obj in objects:
        col, row = obj.point
        x, y = source.transform * (col, row)
        clicks.append((obj.name, Prompt("EPSG:32633", ((x, y),), (1,)), np.array([[col - 0.5, row - 0.5]])))

    def bare(pixel):
        masks, scores, _ = predictor.predict(point_coords=pixel, point_labels=np.array([1]), multimask_output=True)
        return masks[int(np.argmax(scores))].astype(bool)

    paths = {"onnx": lambda c: ours_onnx.segment(c[1]).mask, "torch": lambda c: ours_torch.segment(c[1]).mask,
             "bare": lambda c: bare(c[2])}
    for fn in paths.values():  # warm up
        fn(clicks[0])
    times = {name: [] for name in paths}
    for _ in range(args.repeat):  # each round: every path clicks every object in turn, as a user clicks
        for name, fn in paths.items():
            for click in clicks:
                start = time.perf_counter()
                fn(click)
                times[name].append(time.perf_counter() - start)
    worst = {"onnx": 1.0, "torch": 1.0}
    for click in clicks:
        pixel = click[2]
        theirs = _clicked_parts(bare(pixel), TilePrompt(points=(pixel + 0.5).astype(np.float32), labels=np.ones(1, np.int32)))
        for name in worst:
            worst[name] = min(worst[name], iou(paths[name](click), theirs))
    p50 = {name: float(np.percentile(np.asarray(v) * 1000, 50)) for name, v in times.items()}
    p95 = {name: float(np.percentile(np.asarray(v) * 1000, 95)) for name, v in times.items()}
    result = {"mask_p50_ms": round(p50["onnx"], 2), "bare_p50_ms": round(p50["bare"], 2),
              "mask_iou_vs_bare": round(worst["onnx"], 5), "ratio": round(p50["onnx"] / p50["bare"], 3),
              "torch_mask_p50_ms": round(p50["torch"], 2), "torch_mask_iou_vs_bare": round(worst["torch"], 5),
              "mask_p95_ms": round(p95["onnx"], 2), "bare_p95_ms": round(p95["bare"], 2), "clicks": len(times["bare"]),
              "objects": [c[0] for c in clicks], "model": args.model, "precision": "fp32", **machine(threads=torch.get_num_threads()),
              "load_before": load_before, "load_after": [round(v, 2) for v in os.getloadavg()]}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.model}, random weights, 2 threads, tile 1024, one positive click on each of {len(clicks)} demo objects, "
          f"{args.repeat} rounds, interleaved")
    for name, label in (("onnx", "ours, ONNX Runtime: map point -> georef. mask"), ("torch", "ours, torch:        map point -> georef. mask"),
                        ("bare", "bare SamPredictor.predict                   ")):
        print(f"{label}  p50 {p50[name]:7.1f} ms   p95 {p95[name]:7.1f} ms")
    print(f"ratio ours (ONNX) / bare: {result['ratio']:.2f}; worst mask IoU vs bare: ONNX {worst['onnx']:.4f}, torch {worst['torch']:.4f}")
    result_mask = ours_onnx.segment(clicks[0][1])
    start = time.perf_counter()
    mask_to_geometry(result_mask.mask, result_mask.transform)
    print(f"the polygon step for {clicks[0][0]}'s mask: {1000 * (time.perf_counter() - start):.1f} ms")


if __name__ == "__main__":
    main()
