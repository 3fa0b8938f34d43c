"""Pre-labeling throughput and memory on big synthetic orthomosaics (prompt-layer mode).

For each raster size (default 5,000 and 20,000 pixels square, 0.1 m, 3-band uint8, written block by
block into a temporary folder), one point prompt is placed at the centre of every tile of the grid
(tile 1024, overlap 256), so every tile is encoded (vit_tiny, random weights: real compute, meaningless
masks), decoded, vectorized and written to a GeoPackage. Random-weight masks are large and ragged,
so each object is followed into neighbouring tiles (up to 16 windows): the embedding cache (a fresh
folder per run) makes each tile's encoder run happen once, and follow-ups read it back from disk. Each size runs in its own
process so its peak RSS is its own. Memory must not grow with the raster: the segmenter keeps a few
tile embeddings and the results are polygons.

    .venv/bin/python bench/bench_prelabel.py            # 5k and 20k (20k takes several minutes on 2 cores)
    .venv/bin/python bench/bench_prelabel.py --quick    # 2k and 5k
    .venv/bin/python bench/bench_prelabel.py --sizes 20000 --every 25   # prompts on 1 tile in 25, spread over 20k

tiles/s counts tiles encoded (each once, thanks to the cache) per second of the whole job (encode,
decode, follow objects, vectorize, write).

Prints numbers; asserts nothing.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

TILE, OVERLAP = 1024, 256


def run_one(size: int, threads: int, folder: str, device: str = "cpu", every: int = 1, max_windows: int = 16) -> dict:
    import tracemalloc

    import torch
    from shapely.geometry import Point

    from common import peak_rss_mb, random_checkpoint, write_big_scene
    from seg_qgis_plugin.core.batch.raster_job import RasterJob, prelabel_raster
    from seg_qgis_plugin.core.engine.labeling import open_backend
    from seg_qgis_plugin.core.batch.prelabel import PromptFeature
    from seg_qgis_plugin.core.geo.raster import RasterSource
    from seg_qgis_plugin.core.geo.tiling import TileGrid
    from seg_qgis_plugin.core.outputs.vectors import LabelWriter

    torch.set_num_threads(threads)
    t = time.perf_counter()
    raster = write_big_scene(os.path.join(folder, f"scene_{size}.tif"), size)
    generate_s = time.perf_counter() - t
    with RasterSource(raster) as src:
        transform, crs = src.transform, src.crs.to_wkt()
    grid = TileGrid(size, size, TILE, OVERLAP)
    features = []
    for k, tile in enumerate(grid):
        if k % every:
            continue
        x, y = transform * (tile.col + tile.width / 2 + 0.5, tile.row + tile.height / 2 + 0.5)
        features.append(PromptFeature(Point(x, y), crs, ("field", "water")[k % 2], {"bench": "prelabel"}))
    backend = open_backend(random_checkpoint("vit_tiny", folder), "vit_tiny", "sam", device, threads)
    rss_before = peak_rss_mb()
    tracemalloc.start()
    t = time.perf_counter()
    cache = os.path.join(folder, f"cache_{size}")
    shutil.rmtree(cache, ignore_errors=True)  # a cold start: every tile is encoded in this run
    out = os.path.join(folder, f"prelabel_{size}.gpkg")
    if os.path.exists(out):
        os.remove(out)
    with LabelWriter(out) as writer:  # objects stream to the GeoPackage as they are found
        result = prelabel_raster(RasterJob(raster, tile=TILE, overlap=OVERLAP, max_windows=max_windows), backend, features,
                                 cache_dir=cache, on_label=writer.add)
    encoded = len([n for n in os.listdir(cache) if n.endswith(".safetensors")])
    wall = time.perf_counter() - t
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"size": size, "tiles": len(grid), "prompts": len(features), "labels": result.count,
            "skipped": len(result.skipped), "encoded": encoded, "wall_s": round(wall, 1), "tiles_per_s": round(encoded / wall, 3),
            "rss_before_mb": round(rss_before), "peak_rss_mb": round(peak_rss_mb()), "traced_peak_mb": round(traced_peak / 2**20),
            "generate_s": round(generate_s, 1), "raster_mb": round(os.path.getsize(raster) / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", help="raster sizes in pixels (square)")
    parser.add_argument("--quick", action="store_true", help="sizes 2000 and 5000")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    parser.add_argument("--every", type=int, default=1, help="prompt only every Nth tile (spread over the raster) to bound the run time")
    parser.add_argument("--max-windows", type=int, default=16, help="tiles one object may be followed into (1: no following)")
    parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(), "seg-bench"), help="where rasters are generated (reused)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.makedirs(args.folder, exist_ok=True)
    if args.one:
        print(json.dumps(run_one(args.one, args.threads, args.folder, args.device, args.every, args.max_windows)))
        return
    sizes = args.sizes or ([2000, 5000] if args.quick else [5000, 20000])
    print(f"prelabel, prompt-layer mode: one point per tile, tile {TILE}, overlap {OVERLAP}, vit_tiny random weights, "
          f"{args.threads} CPU threads, device {args.device}, objects followed into at most {args.max_windows} tiles; rasters in {args.folder}")
    print(f"{'size':>7} {'tiles':>6} {'prompts':>7} {'encoded':>7} {'labels':>6} {'wall s':>8} {'tiles/s':>8} {'RSS before MB':>14} {'peak RSS MB':>12} "
          f"{'py peak MB':>11} {'raster MB':>10}")
    for size in sizes:
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", str(size), "--threads", str(args.threads),
                               "--folder", args.folder, "--device", args.device, "--every", str(args.every), "--max-windows", str(args.max_windows)], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{size:>7} failed:\n{done.stderr[-2000:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{r['size']:>7} {r['tiles']:>6} {r['prompts']:>7} {r['encoded']:>7} {r['labels']:>6} {r['wall_s']:>8} {r['tiles_per_s']:>8} {r['rss_before_mb']:>14} "
              f"{r['peak_rss_mb']:>12} {r['traced_peak_mb']:>11} {r['raster_mb']:>10}   (raster generated in {r['generate_s']} s)")


if __name__ == "__main__":
    main()
