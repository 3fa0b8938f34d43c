"""--cluster local:2 against serial, memory per worker, scheduler overhead per task, and an
estimate for a 50,000 x 50,000 orthomosaic on 8 GPU workers.

    .venv/bin/python bench/bench_cluster.py [--size 1536] [--tile 512]
    .venv/bin/python bench/bench_cluster.py --assist [--size 2048]   # seg assist: serial, resumable, local:2

Uses a vit_tiny SAM with random weights (real encoder compute, made here) on a demo scene; on a
2-core machine local:2 cannot beat serial (torch already uses both cores): expect about 1x.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
import time


def noop(x):
    return x


def rss_mb():
    import psutil

    return psutil.Process().memory_info().rss / 2 ** 20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1536)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--tasks", type=int, default=400)
    ap.add_argument("--assist", action="store_true", help="measure seg assist instead of SAM encoding")
    a = ap.parse_args()
    if a.assist:
        return bench_assist(a.size)
    import torch
    from distributed import Client, LocalCluster

    from seg_qgis_plugin.core.batch.raster_job import RasterJob
    from seg_qgis_plugin.core.engine.labeling import open_backend
    from seg_qgis_plugin.core.models.checkpoints import build_sam
    from seg_qgis_plugin.core.scale.cluster import ModelSpec
    from seg_qgis_plugin.core.scale.runs import encode_blocks
    from seg_qgis_plugin.demo.scene import write_scene

    tmp = tempfile.mkdtemp(prefix="bench-cluster-")
    torch.manual_seed(0)
    ckpt = os.path.join(tmp, "sam_vit_tiny.pth")
    torch.save(build_sam("vit_tiny").state_dict(), ckpt)
    raster = os.path.join(tmp, "scene.tif")
    write_scene(raster, a.size, a.size)
    job = RasterJob(raster, tile=a.tile, overlap=a.tile // 4)
    cores = os.cpu_count()

    backend = open_backend(ckpt, "vit_tiny", "sam", "cpu", cores)
    with job.open(backend, os.path.join(tmp, "serial")) as seg:
        tiles = len(seg.grid)
        t = time.perf_counter()
        seg.encode()
        serial = time.perf_counter() - t
    print(f"tiles: {tiles} ({a.size}x{a.size}, tile {a.tile}); cores: {cores}")
    print(f"serial encode ({cores} torch threads): {serial:.2f} s, {serial / tiles:.3f} s/tile")

    spec = ModelSpec(ckpt, "vit_tiny", "sam", "cpu", 1)
    t = time.perf_counter()
    encode_blocks(job, backend, spec, os.path.join(tmp, "local2"), "local:2", block_tiles=1)
    clustered = time.perf_counter() - t
    print(f"--cluster local:2 encode (1 thread per worker, incl. cluster start + model load): {clustered:.2f} s "
          f"-> speed-up {serial / clustered:.2f}x (2 cores: about 1x expected)")

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        idle = client.run(rss_mb)
        from seg_qgis_plugin.core.scale.cluster import _session

        client.run(lambda: _session(job, spec, None) and None)
        loaded = client.run(rss_mb)
        for w in idle:
            print(f"worker memory: idle {idle[w]:.0f} MB, with vit_tiny + raster open {loaded[w]:.0f} MB")
        client.gather(client.map(noop, range(20), pure=False))
        t = time.perf_counter()
        client.gather(client.map(noop, range(a.tasks), pure=False))
        per_task = (time.perf_counter() - t) / a.tasks
        t = time.perf_counter()
        for i in range(50):
            client.submit(noop, i, pure=False).result()
        round_trip = (time.perf_counter() - t) / 50
    print(f"scheduler overhead, no-op task: {per_task * 1e3:.2f} ms/task in bulk, {round_trip * 1e3:.2f} ms one-at-a-time round trip")

    side, tile, overlap = 50_000, 1024, 256
    per_side = math.ceil((side - overlap) / (tile - overlap))
    n = per_side ** 2
    gpu_encode, gpu_decode = 0.15, 0.6  # s/tile on one GPU: vit_b encode (fp16), 32x32-point automatic decode
    workers, block = 8, 4
    compute = n * (gpu_encode + gpu_decode) / workers
    overhead = (n / block) * per_task / workers
    print(f"estimate 50,000 x 50,000, tile {tile}/{overlap}: {n} tiles; {workers} GPU workers at "
          f"{gpu_encode + gpu_decode:.2f} s/tile -> {compute / 60:.1f} min compute + {overhead:.1f} s scheduler "
          f"overhead (blocks of {block}); the serial CPU run at ~8 s/tile encode would take {n * 8 / 3600:.1f} h")


def bench_assist(size: int) -> None:
    """The assistant's prediction three ways, side by side: windows one after another with no
    manifest, in blocks with the resume manifest (what `seg assist` does), and on local:2."""
    import numpy as np

    from seg_qgis_plugin.core.assist.pipeline import learn
    from seg_qgis_plugin.core.assist.options import PredictOptions
    from seg_qgis_plugin.core.assist.predict import predict_raster
    from seg_qgis_plugin.core.engine.labels import Label, attributes
    from seg_qgis_plugin.core.geo.raster import RasterSource
    from seg_qgis_plugin.core.scale.assist_runs import BlockRunner
    from seg_qgis_plugin.core.scale.manifest import ResumeManifest
    from seg_qgis_plugin.demo.scene import CRS, pixel_square, write_scene

    tmp = tempfile.mkdtemp(prefix="bench-assist-cluster-")
    raster = os.path.join(tmp, "scene.tif")
    truth = write_scene(raster, size, size, seed=1)

    taken = np.any([o.mask for o in truth], axis=0)
    labels = [Label(pixel_square(int(o.point[0]) - 6, int(o.point[1]) - 6), CRS, attributes(o.class_name)) for o in truth[:12]]
    rng = np.random.default_rng(0)
    for col, row in rng.integers(0, size - 12, (40, 2)):
        if not taken[row:row + 12, col:col + 12].any():
            labels.append(Label(pixel_square(col, row), CRS, attributes("background")))
    with RasterSource(raster) as src:
        model = learn(src, labels)
        runs = {"windows in turn, no manifest": None,
                "blocks + resume manifest (seg assist)": lambda: BlockRunner(ResumeManifest(os.path.join(tmp, "m.gpkg"), {})),
                "--cluster local:2 (incl. cluster start)": lambda: BlockRunner(cluster="local:2")}
        times = {}
        for name, make in runs.items():
            out = os.path.join(tmp, f"{len(times)}")
            t = time.perf_counter()
            result = predict_raster(src, model, None, PredictOptions(out + "-p.tif", out + "-u.tif"), runner=make() if make else None)
            times[name] = time.perf_counter() - t
            print(f"{name}: {times[name]:.1f} s ({result.count} polygons)")
    base = times["windows in turn, no manifest"]
    print(f"{size}x{size}, {os.cpu_count()} cores: manifest overhead {100 * (times['blocks + resume manifest (seg assist)'] / base - 1):+.0f}%, "
          f"local:2 {base / times['--cluster local:2 (incl. cluster start)']:.2f}x serial (LightGBM already uses every core: about 1x here)")


if __name__ == "__main__":
    main()
