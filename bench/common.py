"""Helpers shared by the benchmarks: a random-weights checkpoint of a given architecture, timing."""
import os
import tempfile
import time

import numpy as np


def random_checkpoint(model_type: str, folder: str = None) -> str:
    """Save SAM `model_type` with random weights (fixed seed) and return its path. Random weights
    cost exactly what trained ones do, so they serve for speed and memory."""
    import torch

    from seg_qgis_plugin.core.models.checkpoints import build_sam

    folder = folder or os.path.join(tempfile.gettempdir(), "seg-bench")
    os.makedirs(folder, exist_ok=True)
    if model_type.startswith("sam2"):  # SAM 2.1: `seg models random`'s file (marked random; loading it warns)
        from seg_qgis_plugin.core.models.random_weights import write_random_checkpoint

        path = os.path.join(folder, f"{model_type}_random.pt")
        return path if os.path.exists(path) else write_random_checkpoint(model_type, path)
    path = os.path.join(folder, f"sam_{model_type}_random.pth")
    if not os.path.exists(path):
        torch.manual_seed(0)
        torch.save(build_sam(model_type).state_dict(), path + ".part")
        os.replace(path + ".part", path)
    return path


def percentiles(samples_s):
    ms = np.asarray(samples_s) * 1000
    return f"p50 {np.percentile(ms, 50):7.1f} ms   p95 {np.percentile(ms, 95):7.1f} ms   (n={len(ms)})"


def timed(fn, repeat: int):
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def scene_classes(col: int, row: int, width: int, height: int) -> np.ndarray:
    """The big scenes' layout in a window: int (height, width), 0-2 a field kind, 3 a pond (ponds
    of 900 x 600 pixels centred at (1200 + 2500 i, 1000 + 2000 j))."""
    yy, xx = np.mgrid[row:row + height, col:col + width]
    field = ((yy // 700) * 7 + (xx // 900) * 3) % 3
    pond = ((yy % 2000 - 1000) ** 2 / 300.0 ** 2 + (xx % 2500 - 1200) ** 2 / 450.0 ** 2) <= 1
    return np.where(pond, 3, field)


def write_big_scene(path: str, size: int, block: int = 1024, seed: int = 0) -> str:
    """A size x size, 3-band uint8 tiled GeoTIFF of fields and ponds, written block by block so
    memory stays at one block whatever the size."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    rng = np.random.default_rng(seed)
    profile = dict(driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=from_origin(500000, 4650000, 0.1, 0.1), tiled=True, blockxsize=512, blockysize=512,
                   compress="deflate", BIGTIFF="IF_SAFER")
    colours = np.array([[70, 120, 50], [150, 130, 90], [90, 140, 60], [40, 60, 110]], np.uint8)
    with rasterio.open(path + ".part.tif", "w", **profile) as dst:
        for row in range(0, size, block):
            for col in range(0, size, block):
                h, w = min(block, size - row), min(block, size - col)
                tile = colours[scene_classes(col, row, w, h)].transpose(2, 0, 1).astype(np.int16) + rng.integers(-8, 9, (3, h, w))
                dst.write(np.clip(tile, 0, 255).astype(np.uint8), window=Window(col, row, w, h))
    os.replace(path + ".part.tif", path)
    return path


FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def machine(threads: int = 2) -> dict:
    """What a figure was measured on: CPU model, the flags that decide the kernels, cores, threads."""
    import platform

    from seg_qgis_plugin.core.models.sam_encoder import cpu_flags

    model, flags = platform.processor() or "unknown", cpu_flags()
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu": model, "flags": [f for f in FLAGS if f in flags], "cores": os.cpu_count(), "threads": threads}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it is not inherited from the
    parent across fork and exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")
