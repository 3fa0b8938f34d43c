"""What one click costs when its label is appended to a large GeoPackage layer.

Appends go through one SQLite transaction into the file (core/outputs/geopackage.py). The earlier
way copied the whole file, appended to the copy and moved it into place; it is timed here too, as
a baseline, by doing the same steps. Prints the median over a few appends for each layer size.

Run: .venv/bin/python bench/bench_append.py [--sizes 1000 20000 100000] [--repeat 5]
Takes under a minute on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

from shapely.geometry import MultiPolygon, Point

from seg_qgis_plugin.core.engine.labels import FIELDS, Label, attributes
from seg_qgis_plugin.core.outputs.vectors import LabelWriter, _write, write_labels

UTM = "EPSG:32633"


def crown(i: int) -> Label:
    """A 64-vertex polygon, like a tree crown traced from a mask."""
    x, y = 500000 + 4 * (i % 500), 4649000 + 4 * (i // 500)
    return Label(MultiPolygon([Point(x, y).buffer(1.5, 16)]), UTM, attributes("tree"))


def append_in_place(path: str, label: Label) -> None:
    write_labels([label], path, mode="append")


def append_by_copy(path: str, label: Label) -> None:
    """The earlier way, step by step: copy the file, append to the copy, move it over the original."""
    folder = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=".bench-")
    copy = os.path.join(folder, os.path.basename(path))
    shutil.copy2(path, copy)
    columns = {name: [label.attributes.get(name)] for name, _, _ in FIELDS}
    _write(copy, os.path.splitext(os.path.basename(path))[0], UTM, [label.geometry], columns, append=True)
    os.replace(copy, path)
    shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000, 100000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'features':>9} {'file MB':>8} {'in place ms':>12} {'copy+replace ms':>16}")
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            path = os.path.join(folder, f"layer{n}.gpkg")
            with LabelWriter(path, batch=5000) as writer:
                for i in range(n):
                    writer.add(crown(i))
            size_mb = os.path.getsize(path) / 2 ** 20
            times = {}
            for name, fn in (("in place", append_in_place), ("copy", append_by_copy)):
                samples = []
                for k in range(args.repeat):
                    start = time.perf_counter()
                    fn(path, crown(n + k))
                    samples.append(1000 * (time.perf_counter() - start))
                times[name] = statistics.median(samples)
            print(f"{n:>9} {size_mb:>8.1f} {times['in place']:>12.0f} {times['copy']:>16.0f}")


if __name__ == "__main__":
    main()
