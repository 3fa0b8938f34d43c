"""The assistant over a whole raster, window by window.

Each window is read with the feature recipe's halo (so features, and hence predictions, do not
change at window borders), classified pixel by pixel, optionally smoothed (a Gaussian of `smooth`
pixels on the class probabilities, computed on a margin around the window so it is seamless too),
and written: one float32 probability band per written class and one uncertainty band, on the
raster's exact grid; blobs of each written class become polygons. Blobs that touch a window edge
inside the raster are merged with their neighbours at the end, so objects are not cut by windows.
Memory follows the window (about 256 MB of features), never the raster.
"""
from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..engine.labels import Label, attributes
from ..errors import SettingError
from ..geo.vectorize import clean_polygons
from ..progress import Progress, track
from .classifier import AssistModel
from .features import read_window_features
from .options import PredictOptions

NODATA = -1.0
FEATURE_BUDGET = 256 * 2 ** 20
MEASURES = ("entropy", "margin")


@dataclass
class PredictResult:
    """count: polygons written; per_class: polygons per class; pixels: pixels per written class."""

    count: int = 0
    per_class: Dict[str, int] = field(default_factory=dict)
    pixels: Dict[str, int] = field(default_factory=dict)


def window_size(n_features: int) -> int:
    """The largest of 1024, 512, 256 whose features fit FEATURE_BUDGET."""
    for side in (1024, 512, 256):
        if side * side * n_features * 4 <= FEATURE_BUDGET:
            return side
    return 256


def windows_of(width: int, height: int, side: int, region: Optional[Tuple[int, int, int, int]] = None) -> List[Tuple[int, int, int, int]]:
    """Non-overlapping windows (col, row, width, height) of at most `side` pixels covering `region`
    (default: the whole raster)."""
    c0, r0, w, h = region or (0, 0, width, height)
    return [(c, r, min(side, c0 + w - c), min(side, r0 + h - r)) for r in range(r0, r0 + h, side) for c in range(c0, c0 + w, side)]


def uncertainty_of(proba: np.ndarray, measure: str = "entropy") -> np.ndarray:
    """proba float32 (C, ...) -> float32 (...) in 0..1: normalized entropy, or 1 - (best - second best)."""
    if measure == "entropy":
        p = np.clip(proba, 1e-7, 1.0)
        return (-(p * np.log(p)).sum(axis=0) / math.log(proba.shape[0])).astype(np.float32)
    if measure == "margin":
        top = np.sort(proba, axis=0)
        return (1.0 - (top[-1] - top[-2])).astype(np.float32)
    raise SettingError(f"Uncertainty must be one of {', '.join(MEASURES)}, not {measure!r}.")


def predict_window(source, model: AssistModel, window: Tuple[int, int, int, int], smooth: float = 0.0,
                   embedding=None) -> Tuple[np.ndarray, np.ndarray]:
    """Class probabilities of one window: float32 (C, h, w) (0 where invalid) and valid bool (h, w)."""
    import cv2

    margin = int(math.ceil(3 * smooth)) if smooth > 0 else 0
    col, row, width, height = window
    c0, r0 = max(0, col - margin), max(0, row - margin)
    c1, r1 = min(source.width, col + width + margin), min(source.height, row + height + margin)
    region = (c0, r0, c1 - c0, r1 - r0)
    features, valid = read_window_features(source, model.recipe, region)
    if embedding is not None:
        features = np.concatenate([features, embedding.window_features(region)])
    proba = np.zeros((len(model.classes),) + valid.shape, np.float32)
    if valid.all():
        proba[:] = model.predict_maps(features)
    elif valid.any():
        proba[:, valid] = model.predict_proba(features[:, valid].T).T
    del features
    if margin:
        for plane in proba:
            plane[:] = cv2.GaussianBlur(plane, (0, 0), sigmaX=smooth, sigmaY=smooth, borderType=cv2.BORDER_REFLECT_101)
        proba /= np.maximum(proba.sum(axis=0, keepdims=True), 1e-6)
        proba[:, ~valid] = 0
    y, x = row - r0, col - c0
    return proba[:, y:y + height, x:x + width], valid[y:y + height, x:x + width]


@dataclass
class Blob:
    """A connected blob of one class in one window: cls indexes model.classes; polygon in the
    raster CRS; total: its summed probability of cls over `count` pixels; at_edge: it touches a
    window edge inside the raster, so it is merged with its neighbours at the end."""

    cls: int
    polygon: object
    total: float
    count: int
    at_edge: bool


@dataclass
class WindowResult:
    """One window's share of the outputs: probability float32 (written classes, h, w) and
    uncertainty float32 (h, w), NODATA where invalid (None when not asked for); pixels int64
    (written classes,); blobs in the order a serial run emits them."""

    window: Tuple[int, int, int, int]
    probability: Optional[np.ndarray]
    uncertainty: Optional[np.ndarray]
    pixels: np.ndarray
    blobs: List[Blob]


class WindowPredictor:
    """Predicts one window at a time (`predictor(window) -> WindowResult`), on whichever process
    holds it: the raster is read there, so only the results travel. Of `options` it uses the
    smoothing, the measure and which rasters are asked for."""

    def __init__(self, source, model: AssistModel, options: Optional[PredictOptions] = None, embedding=None):
        self.source, self.model, self.options, self.embedding = source, model, options or PredictOptions(), embedding
        self.smooth, self.measure = self.options.smooth, self.options.measure
        self.probability, self.uncertainty = bool(self.options.probability), bool(self.options.uncertainty)
        self.written = [i for i, c in enumerate(model.classes) if c != model.background]

    def __call__(self, window: Tuple[int, int, int, int]) -> WindowResult:
        proba, valid = predict_window(self.source, self.model, window, self.smooth, self.embedding)
        probability = np.where(valid[None], proba[self.written], NODATA).astype(np.float32) if self.probability else None
        uncertainty = np.where(valid, uncertainty_of(proba, self.measure), NODATA).astype(np.float32) if self.uncertainty else None
        best = np.argmax(proba, axis=0)
        pixels, blobs = np.zeros(len(self.written), np.int64), []
        for k, i in enumerate(self.written):
            mask = (best == i) & valid
            pixels[k] = int(mask.sum())
            blobs.extend(self._blobs(i, mask, proba[i], window))
        return WindowResult(window, probability, uncertainty, pixels, blobs)

    def _blobs(self, cls: int, mask: np.ndarray, prob: np.ndarray, window) -> List[Blob]:
        import cv2
        from rasterio.features import shapes
        from shapely.geometry import shape

        n, ids = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
        if n <= 1:  # label 0 is the rest
            return []
        sums = np.bincount(ids.ravel(), weights=prob.ravel(), minlength=n)
        counts = np.bincount(ids.ravel(), minlength=n)
        col, row, width, height = window
        edges = [ids[:, 0] if col > 0 else None, ids[0] if row > 0 else None,
                 ids[:, -1] if col + width < self.source.width else None, ids[-1] if row + height < self.source.height else None]
        edges = [e for e in edges if e is not None]
        touching = set(np.unique(np.concatenate(edges)).tolist()) if edges else set()
        transform = self.source.transform * _translation(col, row)
        return [Blob(cls, shape(geom), float(sums[int(k)]), int(counts[int(k)]), int(k) in touching)
                for geom, k in shapes(ids, mask=ids > 0, connectivity=4, transform=transform)]


def run_here(predictor: WindowPredictor, windows: List[Tuple[int, int, int, int]], deliver: Callable,
             progress: Optional[Progress] = None) -> None:
    """The serial runner: deliver(index, WindowResult) for each window in turn, in this process."""
    for index, window in enumerate(track(windows, len(windows), progress)):
        deliver(index, predictor(window))


def _merge_at_edges(blobs: List[Blob], emit) -> None:
    """Union the blobs that touch window edges, class by class; each union gets the probability
    sums of the blobs inside it."""
    from shapely import STRtree, union_all

    by_class: Dict[int, List[Blob]] = defaultdict(list)
    for blob in blobs:
        by_class[blob.cls].append(blob)
    for cls, pieces in by_class.items():
        merged = union_all([b.polygon for b in pieces])
        polygons = list(merged.geoms) if merged.geom_type == "MultiPolygon" else [merged]
        tree = STRtree(polygons)
        stats = np.zeros((len(polygons), 2))
        for blob in pieces:
            hit = tree.query(blob.polygon.representative_point(), predicate="intersects")
            if len(hit):
                stats[hit[0]] += (blob.total, blob.count)
        for polygon, (total, count) in zip(polygons, stats):
            emit(cls, polygon, total, int(count))


def predict_raster(source, model: AssistModel, on_label: Optional[Callable[[Label], None]] = None,
                   options: Optional[PredictOptions] = None, embedding=None, progress: Optional[Progress] = None,
                   runner: Optional[Callable] = None) -> PredictResult:
    """Pre-label `source` (a RasterSource) with `model` as `options` say (core.assist.options).

    on_label receives each polygon (class = a written class, status prelabel, score = the blob's mean
    probability of that class, prompt_type assist). options.probability/uncertainty: GeoTIFF paths on
    the raster's grid (float32, nodata -1; probability has one band per written class, named after
    it). min_area in map units squared, simplify in map units; region: (col, row, width, height) to
    predict only part of the raster (the rasters still cover the whole grid, -1 outside).
    runner(predictor, windows, deliver, progress) computes the windows and calls deliver(index,
    WindowResult) in any order (core.scale.assist_runs: on a cluster, resumable); default run_here.
    Polygons come out in window order whatever the runner, so every runner gives the same layer."""
    from ..outputs.label_rasters import check_output

    options = options or PredictOptions()
    probability, uncertainty, measure = options.probability, options.uncertainty, options.measure
    smooth, min_area, simplify, tags = options.smooth, options.min_area, options.simplify, options.tags
    if measure not in MEASURES:
        raise SettingError(f"Uncertainty must be one of {', '.join(MEASURES)}, not {measure!r}.")
    if smooth < 0 or min_area < 0 or simplify < 0:
        raise SettingError("Smoothing, minimum area and simplification cannot be negative.")
    for path in (probability, uncertainty):
        if path:
            check_output(path, options.overwrite)
    predictor = WindowPredictor(source, model, options, embedding)
    names = [model.classes[i] for i in predictor.written]
    result = PredictResult(per_class=dict.fromkeys(names, 0), pixels=dict.fromkeys(names, 0))
    crs = source.crs.to_wkt()
    recipe = model.recipe
    radiometry = json.dumps({"bands": list(recipe.bands), "low": list(recipe.low), "high": list(recipe.high)})
    name = os.path.basename(source.path)

    def emit(cls: int, polygon, total: float, count: int) -> None:
        geometry = clean_polygons(polygon, simplify, min_area)
        if geometry is None or count == 0:
            return
        x0, y0, x1, y1 = polygon.bounds
        inverse = ~source.transform
        (ca, ra), (cb, rb) = inverse * (x0, y1), inverse * (x1, y0)
        c, r = int(round(min(ca, cb))), int(round(min(ra, rb)))
        window = f"{c},{r},{int(round(abs(cb - ca)))},{int(round(abs(rb - ra)))}@1"
        attrs = attributes(model.classes[cls], tags, score=total / count, prompt_type="assist", model=model.model_id,
                           source=name, window=window, radiometry=radiometry, status="prelabel")
        result.count += 1
        result.per_class[model.classes[cls]] += 1
        if on_label is not None:
            on_label(Label(geometry, crs, attrs))

    windows = windows_of(source.width, source.height, window_size(len(recipe.names())), options.region)
    waiting: Dict[int, Tuple[np.ndarray, List[Blob]]] = {}
    at_edges: List[Blob] = []

    next_index = 0

    def deliver(index: int, window_result: WindowResult) -> None:
        nonlocal next_index
        outputs.write(window_result)  # then only the blobs wait: memory stays bounded by the windows in flight
        waiting[index] = (window_result.pixels, window_result.blobs)
        while next_index in waiting:  # polygons in window order, whatever order windows finish in
            pixels, blobs = waiting.pop(next_index)
            next_index += 1
            for k, n in zip(names, pixels):
                result.pixels[k] += int(n)
            for blob in blobs:
                if blob.at_edge:
                    at_edges.append(blob)
                else:
                    emit(blob.cls, blob.polygon, blob.total, blob.count)

    with _RasterOutputs(source, probability, uncertainty, names) as outputs:
        (runner or run_here)(predictor, windows, deliver, progress)
        _merge_at_edges(at_edges, emit)
    return result


def _translation(col: int, row: int):
    from affine import Affine

    return Affine.translation(col, row)


class _RasterOutputs:
    """The probability and uncertainty GeoTIFFs, written window by window into temporary files and
    moved into place only when every window is done (and removed on any exception)."""

    def __init__(self, source, probability, uncertainty, names):
        self.source, self.names = source, names
        self.paths = [(p, kind) for p, kind in ((probability, "probability"), (uncertainty, "uncertainty")) if p]
        self.staged, self.datasets = [], {}

    def __enter__(self):
        import rasterio

        from ..outputs.atomic import StagedPath

        try:
            for path, kind in self.paths:
                staged = StagedPath(path, companions=(".aux.xml",))
                self.staged.append(staged)
                count = len(self.names) if kind == "probability" else 1
                profile = dict(driver="GTiff", width=self.source.width, height=self.source.height, count=count, dtype="float32",
                               crs=self.source.crs, transform=self.source.transform, nodata=NODATA, tiled=True, blockxsize=256,
                               blockysize=256, compress="deflate", predictor=3, BIGTIFF="IF_SAFER")
                ds = rasterio.open(staged.tmp, "w", **profile)
                self.datasets[kind] = ds
                ds.descriptions = tuple(self.names) if kind == "probability" else ("uncertainty",)
                ds.update_tags(kind=kind, classes=json.dumps(self.names))
        except BaseException:
            self.__exit__(None, None, None, commit=False)
            raise
        return self

    def write(self, result: WindowResult) -> None:
        from rasterio.windows import Window

        w = Window(*result.window)
        if "probability" in self.datasets:
            self.datasets["probability"].write(result.probability, window=w)
        if "uncertainty" in self.datasets:
            self.datasets["uncertainty"].write(result.uncertainty[None], window=w)

    def __exit__(self, exc_type, exc, tb, commit: bool = True) -> None:
        for ds in self.datasets.values():
            ds.close()
        self.datasets = {}
        for staged in self.staged:
            if commit and exc_type is None:
                staged.commit()
            else:
                staged.discard()
        if commit and exc_type is None:
            self._write_styles()

    def _write_styles(self) -> None:
        """Each raster's QGIS style beside it: a 0..1 ramp saying what 0 and 1 mean."""
        from ..outputs.raster_styles import probability_qml, uncertainty_qml, write_raster_style

        for path, kind in self.paths:
            write_raster_style(path, probability_qml(self.names[0] if self.names else "") if kind == "probability" else uncertainty_qml())
