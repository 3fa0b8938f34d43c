"""Shared by test_cluster.py and test_resume.py: a scene of bright objects, several crossing tile
borders, and the oracle backend with AUTOMATIC capability (conftest.py), loadable in other processes."""
from __future__ import annotations

import importlib.util
import os
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def oracle_class():
    """conftest.OracleBackend, from a module registered so cloudpickle sends it by value to Dask workers."""
    import sys

    name = "seg_test_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "..", "conftest.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
        try:
            import cloudpickle

            cloudpickle.register_pickle_by_value(module)
        except ImportError:
            pass
    return sys.modules[name].OracleBackend


class SlowOracle:
    """The oracle, sleeping `delay` seconds per encode (so a run can be killed mid-way) and
    counting encodes."""

    def __new__(cls, delay: float = 0.0):
        backend = oracle_class()("bright")
        original = backend.encode

        def encode(image):
            time.sleep(delay)
            return original(image)

        backend.encode = encode
        return backend


def write_bright_scene(path: str, size: int = 640) -> str:
    """A 3-band uint8 GeoTIFF (0.5 m, EPSG:32633) with bright rectangles and discs, some across
    the borders of 256-pixel tiles with 64-pixel overlap."""
    import rasterio
    from rasterio.transform import from_origin

    data = np.full((3, size, size), 40, np.uint8)
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:size, :size]
    for k in range(14):
        cy, cx = rng.integers(20, size - 20, 2)
        if k % 2:
            r = rng.integers(8, 40)
            data[:, (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 220
        else:
            h, w = rng.integers(10, 90, 2)
            data[:, cy:cy + h, cx:cx + w] = 220
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=from_origin(500000, 4650000, 0.5, 0.5)) as dst:
        dst.write(data)
    return path


def comparable(labels):
    """Labels as (WKB, attributes without the `created` time), in order."""
    return [(lab.geometry.wkb, {k: v for k, v in lab.attributes.items() if k != "created"}) for lab in labels]
