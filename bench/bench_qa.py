"""Label QA on many generated labels: time per stage and peak memory.

Labels are rotated rectangles (4-14 m) on a 20 m grid in UTM 33N, one per cell, from a fixed
seed, with problems sown in known proportions: 4 % grow into their right neighbour (overlap),
3 % sit 0.3 m from it (gap), 0.5 % are duplicated, 0.5 % are slivers, 0.5 % have a small hole,
0.1 % are bowties (invalid), 0.1 % have no class. Every tenth label is a tree, the rest buildings.

Run: .venv/bin/python bench/bench_qa.py [--labels 100000] [--fix]
Peak memory is the process's high-water mark (VmHWM), so it includes generating the layer; the
table prints what the process held before QA started too.
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import tempfile
import time

import numpy as np

from seg_qgis_plugin.core.quality.qa import Tolerances, check_labels, report
from seg_qgis_plugin.core.quality.qa_fix import fix_labels
from seg_qgis_plugin.core.quality.table import read_table, write_layer

X, Y, CELL = 500000.0, 4650000.0, 20.0


def generate(n: int, seed: int = 0):
    """(geometries, columns) of n labels; see the module docstring."""
    import shapely
    from shapely import affinity
    from shapely.geometry import Polygon, box

    rng = np.random.default_rng(seed)
    originals = n - n // 200
    side = int(math.ceil(math.sqrt(originals)))
    geoms, classes, scores = [], [], []
    kinds = rng.random(originals)
    for k in range(originals):
        col, row = k % side, k // side
        x, y = X + col * CELL, Y + row * CELL
        w, h = rng.uniform(4, 14, 2)
        u = kinds[k]
        if u < 0.04:      # overlap: reaches 1.5 m into the next cell's label
            g = box(x + 2, y + 3, x + CELL + 3.5, y + 3 + h)
        elif u < 0.07:    # gap: ends 0.3 m before the next cell's label, which starts at +2
            g = box(x + 2, y + 3, x + CELL + 1.7, y + 3 + h)
        elif u < 0.075:   # sliver
            g = box(x + 2, y + 2, x + 2 + w, y + 2.3)
        elif u < 0.08:    # small hole
            g = Polygon(box(x + 2, y + 2, x + 14, y + 14).exterior.coords, [box(x + 5, y + 5, x + 5.5, y + 5.5).exterior.coords])
        elif u < 0.081:   # bowtie
            g = Polygon([(x + 2, y + 2), (x + 12, y + 12), (x + 12, y + 2), (x + 2, y + 12)])
        else:
            g = affinity.rotate(box(x + 2, y + 2, x + 2 + w, y + 2 + h), rng.uniform(-20, 20), origin=(x + 2, y + 2))
        geoms.append(g)
        classes.append(None if 0.081 <= u < 0.082 else "tree" if k % 10 == 0 else "building")
        scores.append(float(rng.uniform(0.5, 1.0)))
    dup = rng.choice(originals, size=n - originals, replace=False)
    geoms += [shapely.normalize(geoms[i]) for i in dup]
    classes += [classes[i] for i in dup]
    scores += [scores[i] for i in dup]
    return geoms, {"class": classes, "score": scores}


def hwm_mb() -> float:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--fix", action="store_true", help="also time the repairs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "labels.gpkg")
        t = time.perf_counter()
        geoms, columns = generate(args.labels)
        write_layer(path, geoms, columns, "EPSG:32633")
        del geoms, columns
        print(f"generated and wrote {args.labels} labels in {time.perf_counter() - t:.1f} s")
        before = rss_mb()
        t = time.perf_counter()
        table = read_table(path)
        read_s = time.perf_counter() - t
        t, cpu = time.perf_counter(), time.process_time()
        findings = check_labels(table, Tolerances())
        check_s, check_cpu = time.perf_counter() - t, time.process_time() - cpu
        counts = report(findings, table)["counts"]
        print(f"read    {read_s:6.2f} s")
        print(f"qa      {check_s:6.2f} s wall, {check_cpu:.2f} s CPU  ({len(table) / check_s:,.0f} labels/s)")
        print("findings: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if args.fix:
            t = time.perf_counter()
            fixed, done = fix_labels(table, findings)
            print(f"fix     {time.perf_counter() - t:6.2f} s  -> {len(fixed)} labels, {done}")
        print(f"memory: {before:.0f} MB resident before reading, peak (VmHWM) {hwm_mb():.0f} MB")


if __name__ == "__main__":
    main()
