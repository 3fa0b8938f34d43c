"""Training pixels from labels: the feature vectors of the pixels under each label, by class.

Labels may be small squares or scribbles, not whole objects: every pixel whose centre lies inside a
label counts (later labels win where they overlap). The raster is visited in windows, and only the
windows that labels touch are read, each once with its halo, so memory follows the window and time
follows the labelled area. At most `max_per_class` pixels per class are kept (a fixed-seed random
sample), so a layer of big accepted objects still trains in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import SegError
from ..geo.vectorize import reproject_geometry
from ..progress import Progress, track
from .features import FeatureRecipe, read_window_features
from .options import LearnOptions

WINDOW = 512


@dataclass
class TrainingSet:
    """X float32 (N, F) feature vectors; y int32 (N,) indexes into `classes`; counts per class."""

    X: np.ndarray
    y: np.ndarray
    classes: List[str]
    counts: Dict[str, int]


def label_classes(labels, class_field: str, background: str) -> List[str]:
    """The sorted class names of `labels`, background first (its index is 0 when present)."""
    names = set()
    for lab in labels:
        value = lab.attributes.get(class_field)
        if value in (None, ""):
            raise SegError(f"A label has no value in the field {class_field!r}; give every label a class or choose --class-field.")
        names.add(str(value))
    ordered = sorted(names - {background})
    return ([background] if background in names else []) + ordered


def training_set(source, labels: Sequence, recipe: FeatureRecipe, options: Optional[LearnOptions] = None, embedding=None,
                 progress: Optional[Progress] = None, max_per_class: int = 50_000, seed: int = 0) -> TrainingSet:
    """Feature vectors under `labels` (any CRS) on `source` (a RasterSource); the class is in
    `options.class_field`, `options.background` is the background class. `embedding`: an
    EmbeddingFeatures that appends SAM features, or None. Raises SegError when fewer than two classes
    have pixels."""
    from rasterio.features import rasterize
    from rasterio.windows import Window, transform as window_transform

    options = options or LearnOptions()
    class_field, background = options.class_field, options.background
    if not labels:
        raise SegError("There are no labels to learn from.")
    classes = label_classes(labels, class_field, background)
    index = {name: i for i, name in enumerate(classes)}
    crs = source.crs.to_wkt()
    shapes = []
    for lab in labels:
        geom = reproject_geometry(lab.geometry, lab.crs, crs)
        if geom is not None and not geom.is_empty:
            shapes.append((geom, index[str(lab.attributes[class_field])] + 1))
    windows = _touched_windows(source, [g for g, _ in shapes])
    if not windows:
        raise SegError(f"No label lies on {source.path}; check that the labels and the raster cover the same place.")
    rng = np.random.default_rng(seed)
    parts: Dict[int, List[np.ndarray]] = {i: [] for i in range(len(classes))}
    for window in track(windows, len(windows), progress):
        wt = window_transform(Window(*window), source.transform)
        burned = rasterize(shapes, out_shape=(window[3], window[2]), transform=wt, fill=0, dtype="int32")
        if not burned.any():
            continue
        features, valid = read_window_features(source, recipe, window)
        if embedding is not None:
            features = np.concatenate([features, embedding.window_features(window)])
        burned[~valid] = 0
        for value in np.unique(burned[burned > 0]):
            rows, cols = np.nonzero(burned == value)
            parts[int(value) - 1].append(np.ascontiguousarray(features[:, rows, cols].T))
    X, y, counts = [], [], {}
    for i, name in enumerate(classes):
        pixels = np.concatenate(parts[i]) if parts[i] else np.empty((0, 0), np.float32)
        if len(pixels) > max_per_class:
            pixels = pixels[np.sort(rng.choice(len(pixels), max_per_class, replace=False))]
        counts[name] = int(len(pixels))
        if len(pixels):
            X.append(pixels)
            y.append(np.full(len(pixels), i, np.int32))
    present = [name for name, n in counts.items() if n]
    if len(present) < 2:
        found = f"only {present[0]!r} was found" if present else "none has pixels on the raster"
        raise SegError(f"Learning needs labelled pixels of at least two classes (e.g. water and {background}); {found}.")
    return TrainingSet(np.concatenate(X).astype(np.float32), np.concatenate(y), classes, counts)


def _touched_windows(source, geometries) -> List[tuple]:
    """The WINDOW-sized windows (col, row, width, height) of `source` that a geometry's bounds touch."""
    inverse = ~source.transform
    touched = set()
    for geom in geometries:
        x0, y0, x1, y1 = geom.bounds
        cols, rows = zip(*(inverse * (x, y) for x in (x0, x1) for y in (y0, y1)))
        c0, c1 = max(0, int(np.floor(min(cols)))), min(source.width - 1, int(np.floor(max(cols))))
        r0, r1 = max(0, int(np.floor(min(rows)))), min(source.height - 1, int(np.floor(max(rows))))
        if c0 > c1 or r0 > r1:
            continue
        for wr in range(r0 // WINDOW, r1 // WINDOW + 1):
            for wc in range(c0 // WINDOW, c1 // WINDOW + 1):
                touched.add((wr, wc))
    windows = []
    for wr, wc in sorted(touched):
        col, row = wc * WINDOW, wr * WINDOW
        windows.append((col, row, min(WINDOW, source.width - col), min(WINDOW, source.height - row)))
    return windows
