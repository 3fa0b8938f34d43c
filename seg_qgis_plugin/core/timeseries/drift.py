"""Where two dates' images differ: per tile and per consecutive pair of dates, a 0..1 distance
between the pixel distributions, and optionally between SAM embeddings.

`drift` is the mean over SAM's three channels of the 1-D Wasserstein distance between the two
dates' histograms of stretched values (0..255), divided by 255: 0 for identical distributions, 1
when one date is all black and the other all white. Every date is seen under one fixed radiometry,
decided once: by default the earliest raster's global 2-98 % stretch applied to all dates (so haze,
a new sensor or a season shows as drift), or each raster's own global stretch (`per_raster`, what
the model sees when each date is labelled on its own; a partial haze then moves the whole date's
stretch), or the user's `value_range`. It never depends on the tile. `embedding_drift` is 1 - cosine
similarity of the mean SAM feature vector over the tile on each date (from embedding caches).

What is flagged is change, not a new date's look: for each pair, the later date's global histogram
is matched to the earlier one's (per band, over the tiles both cover), which removes a global
brightness, haze or sensor shift, and `local_drift` is each tile's distance after that. The
threshold of a pair is the user's, or comes from the series: the tiles whose robust z-score
(distance to the pair's median over 1.4826 MAD) exceeds ROBUST_Z, never below MIN_THRESHOLD.
`drift_ratio` is local_drift over the pair's threshold (1 = the threshold), what the map shows.

Tiles are on the earliest raster's grid; the other rasters are read over each tile's footprint
reprojected into their CRS, so rasters may differ in CRS, resolution and extent. Only per-tile
histograms are kept (3 x 256 counts), so memory does not grow with the raster.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import SegError
from ..geo.radiometry import compute_radiometry
from ..geo.raster import RasterSource
from ..geo.tiling import TileGrid
from ..geo.vectorize import reproject_geometry
from ..progress import Progress, check_canceled
from .appearance import footprint, pixel_window
from .dates import DatedRaster

DRIFT_FIELDS = (
    ("tile", "str", "tile"), ("date_from", "str", "date_from"), ("date_to", "str", "date_to"), ("date", "str", "date"),
    ("drift", "float", "drift"), ("local_drift", "float", "loc_drift"), ("threshold", "float", "threshold"),
    ("drift_ratio", "float", "drift_rat"), ("embedding_drift", "float", "emb_drift"), ("valid", "float", "valid"),
    ("flagged", "int", "flagged"),
)
MIN_VALID = 0.05  # a tile needs this share of valid pixels on both dates to be compared
ROBUST_Z = 3.5        # a tile is flagged when its local drift lies this many robust deviations above the pair's median
MIN_THRESHOLD = 0.02  # ... and above this: a series where nothing changed flags nothing


@dataclass
class DriftTile:
    """One tile and one pair of dates. geometry: the tile's footprint (shapely) in `crs`."""

    geometry: object
    crs: str
    attributes: Dict[str, object]


@dataclass
class DriftResult:
    tiles: List[DriftTile]
    summary: Dict[str, object]
    crs: str
    threshold: Optional[float]
    notes: List[str] = field(default_factory=list)


def wasserstein(hist_a: np.ndarray, hist_b: np.ndarray) -> float:
    """hist_a, hist_b: counts (3, 256) of stretched values -> mean 1-D Wasserstein / 255 in 0..1."""
    cdf_a = np.cumsum(hist_a, axis=1) / np.maximum(hist_a.sum(axis=1, keepdims=True), 1)
    cdf_b = np.cumsum(hist_b, axis=1) / np.maximum(hist_b.sum(axis=1, keepdims=True), 1)
    return float(np.abs(cdf_a - cdf_b).sum(axis=1).mean() / 255.0)


def drift_map(series: Sequence[DatedRaster], tile: int = 256, threshold: Optional[float] = None, bands=None, value_range=None,
              caches: Optional[Dict[str, str]] = None, per_raster: bool = False, progress: Optional[Progress] = None) -> DriftResult:
    """Drift for every tile of the earliest raster's grid and every consecutive pair of dates.
    threshold: on local_drift (None: from the series, see the module docstring); caches: ISO
    date -> embedding cache folder (SAM) of that date's raster."""
    if len(series) < 2:
        raise SegError("Drift needs at least two rasters of different dates.")
    if threshold is not None and not 0 < threshold < 1:
        raise SegError(f"The drift threshold must lie between 0 and 1, not {threshold}.")
    with RasterSource(series[0].path) as ref:
        crs = ref.crs.to_wkt()
        grid = TileGrid(ref.width, ref.height, tile, 0)
        tiles = [(t, _tile_polygon(ref, t.raster_window)) for t in grid]
        shared = None if per_raster else compute_radiometry(ref, bands, value_range=value_range)
    histograms, embeddings = [], []
    for k, item in enumerate(series):
        with RasterSource(item.path) as src:
            if not reproject_geometry(footprint_of(series[0].path), crs, src.crs.to_wkt()).intersects(footprint(src)):
                raise SegError(f"{os.path.basename(item.path)} does not overlap {os.path.basename(series[0].path)}; give rasters of one area.")
            radiometry = shared or compute_radiometry(src, bands, value_range=value_range)
            if max(radiometry.bands) > src.count:
                raise SegError(f"{os.path.basename(item.path)} has {src.count} band(s), too few for bands {radiometry.bands}; "
                               "give --bands that every date has.")
            histograms.append([_histogram(src, radiometry, polygon, crs, tile) for _, polygon in tiles])
            folder = (caches or {}).get(item.iso)
            embeddings.append(_pooled_embeddings(src, folder, [p for _, p in tiles], crs) if folder else None)
        check_canceled(progress)
        if progress is not None:
            progress.set_progress(90.0 * (k + 1) / len(series))
    out, summary_pairs = [], []
    for k in range(len(series) - 1):
        a, b = series[k], series[k + 1]
        both = [i for i in range(len(tiles)) if histograms[k][i][1] >= MIN_VALID and histograms[k + 1][i][1] >= MIN_VALID]
        match = _histogram_match(sum(histograms[k][i][0] for i in both), sum(histograms[k + 1][i][0] for i in both)) if both else None
        raw = {i: wasserstein(histograms[k][i][0], histograms[k + 1][i][0]) for i in both}
        local = {i: wasserstein(histograms[k][i][0], _remapped(histograms[k + 1][i][0], match)) for i in both}
        cut, rule = pair_threshold(np.array(list(local.values())), threshold)
        embedded = []
        for i in both:
            t, polygon = tiles[i]
            e = _cosine_distance(embeddings[k][i], embeddings[k + 1][i]) if embeddings[k] and embeddings[k + 1] else None
            if e is not None:
                embedded.append(e)
            out.append(DriftTile(polygon, crs, {"tile": t.label(), "date_from": a.iso, "date_to": b.iso, "date": b.iso,
                                                "drift": raw[i], "local_drift": local[i], "threshold": cut,
                                                "drift_ratio": local[i] / cut, "embedding_drift": e,
                                                "valid": min(histograms[k][i][1], histograms[k + 1][i][1]), "flagged": int(local[i] > cut)}))
        v, w = np.array([raw[i] for i in both]), np.array([local[i] for i in both])
        summary_pairs.append({"date_from": a.iso, "date_to": b.iso, "tiles": int(v.size),
                              "mean": float(v.mean()) if v.size else None, "median": float(np.median(v)) if v.size else None,
                              "max": float(v.max()) if v.size else None, "local_mean": float(w.mean()) if w.size else None,
                              "threshold": cut, "threshold_rule": rule, "flagged": int((w > cut).sum()),
                              "embedding_mean": float(np.mean(embedded)) if embedded else None})
    if not out:
        raise SegError("No tile holds data on two consecutive dates; the rasters do not overlap enough to compare.")
    ranking = sorted((p for p in summary_pairs if p["mean"] is not None), key=lambda p: -p["mean"])
    summary = {"threshold": threshold if threshold is not None else "from the series", "tile": tile, "pairs": summary_pairs,
               "ranking": [f"{p['date_from']}..{p['date_to']}" for p in ranking],
               "radiometry": "the user's stretch for every date" if value_range else
               "each raster's own global 2-98 % stretch" if per_raster else "the earliest raster's global 2-98 % stretch for every date"}
    if progress is not None:
        progress.set_progress(100.0)
    return DriftResult(out, summary, crs, threshold)


def summary_lines(result: DriftResult) -> List[str]:
    """The summary as a few printable lines."""
    lines = [f"drift per tile ({result.summary['tile']} px, {result.summary['radiometry']}); flagged: local drift (after "
             "matching each date's global histogram to the earlier one's) above the pair's threshold:"]
    for p in result.summary["pairs"]:
        emb = f", embedding mean {p['embedding_mean']:.3f}" if p["embedding_mean"] is not None else ""
        if p["mean"] is None:
            lines.append(f"  {p['date_from']} -> {p['date_to']}: no tile with data on both dates")
            continue
        lines.append(f"  {p['date_from']} -> {p['date_to']}: {p['tiles']} tiles, drift mean {p['mean']:.3f}, local mean "
                     f"{p['local_mean']:.3f}, {p['flagged']} flagged above {p['threshold']:.3f} ({p['threshold_rule']}){emb}")
    lines.append("  most drift first: " + ", ".join(result.summary["ranking"]))
    return lines


def layer_metadata(result: DriftResult) -> Dict[str, str]:
    rules = "; ".join(f"{p['date_from']}..{p['date_to']}: {p['threshold']:.3g} ({p['threshold_rule']})" for p in result.summary["pairs"]
                      if p["mean"] is not None)
    return {"seg_drift_summary": json.dumps(result.summary, sort_keys=True), "seg_drift_threshold": rules}


def pair_threshold(local: np.ndarray, given: Optional[float]) -> tuple:
    """(threshold, how it was chosen) for one pair's local drifts."""
    if given is not None:
        return float(given), "given"
    if not local.size:
        return MIN_THRESHOLD, "the floor: no tile to measure"
    median = float(np.median(local))
    deviation = 1.4826 * float(np.median(np.abs(local - median)))
    cut = median + ROBUST_Z * deviation
    if cut < MIN_THRESHOLD:
        return MIN_THRESHOLD, f"the floor {MIN_THRESHOLD:g}: the series' own rule (median {median:.3f} + {ROBUST_Z:g} x {deviation:.4f}) was lower"
    return cut, f"from the series: median {median:.3f} + {ROBUST_Z:g} robust deviations ({deviation:.4f})"


def _histogram_match(earlier: np.ndarray, later: np.ndarray) -> np.ndarray:
    """int (3, 256): per band, the earlier date's value at each later value's quantile."""
    lut = np.empty((3, 256), np.int64)
    for band in range(3):
        cdf_a = np.cumsum(earlier[band]) / max(earlier[band].sum(), 1)
        cdf_b = np.cumsum(later[band]) / max(later[band].sum(), 1)
        lut[band] = np.clip(np.searchsorted(cdf_a, cdf_b - 1e-12), 0, 255)
    return lut


def _remapped(hist: np.ndarray, lut: Optional[np.ndarray]) -> np.ndarray:
    if lut is None:
        return hist
    return np.stack([np.bincount(lut[band], weights=hist[band], minlength=256) for band in range(3)])


def footprint_of(path: str):
    with RasterSource(path) as src:
        return footprint(src)


def _tile_polygon(source, window):
    from shapely.geometry import box

    c, r, w, h = window
    x0, y0 = source.transform * (c, r + h)
    x1, y1 = source.transform * (c + w, r)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _histogram(source, radiometry, polygon, crs: str, tile: int):
    """(counts int64 (3, 256) of stretched values over the tile's footprint, valid share)."""
    local = reproject_geometry(polygon, crs, source.crs.to_wkt())
    window = pixel_window(source, local.bounds)
    if window is None:
        return np.zeros((3, 256), np.int64), 0.0
    factor = max(window[2], window[3]) / tile
    # GDAL averages a window into a slightly smaller shape (129 -> 128 pixels) very slowly, and a
    # histogram needs no fixed shape: decimate only a window at least twice the tile
    shape = (max(1, round(window[3] / factor)), max(1, round(window[2] / factor))) if factor >= 2 else None
    data, valid = source.read(radiometry.bands, window, out_shape=shape)
    image = radiometry.apply(data, valid)
    covered = local.intersection(footprint(source)).area / max(local.area, 1e-12)
    pixels = image[valid]
    counts = np.stack([np.bincount(pixels[:, c], minlength=256) for c in range(3)]) if len(pixels) else np.zeros((3, 256), np.int64)
    return counts, float(valid.mean()) * covered


def _pooled_embeddings(source, folder: str, polygons, crs: str) -> List[Optional[np.ndarray]]:
    """Per tile polygon, the mean SAM feature vector (256,) of the cached embedding cells whose
    centres fall in it, or None. Reads each cache entry of this raster once."""
    from safetensors.numpy import load_file

    from ..engine.embedding_cache import EmbeddingCache

    if not os.path.isdir(folder):
        raise SegError(f"The embedding cache folder {folder} does not exist.")
    fingerprint = source.fingerprint()
    inverse = ~source.transform
    boxes = []
    for polygon in polygons:
        x0, y0, x1, y1 = reproject_geometry(polygon, crs, source.crs.to_wkt()).bounds
        cs, rs = zip(*(inverse * (x, y) for x in (x0, x1) for y in (y0, y1)))
        boxes.append((min(cs), min(rs), max(cs), max(rs)))
    sums = [np.zeros(0) for _ in polygons]
    counts = np.zeros(len(polygons), np.int64)
    cache = EmbeddingCache(folder)
    found = False
    for entry in cache.entries():
        if entry.get("fingerprint") != fingerprint:
            continue
        found = True
        features = load_file(os.path.join(folder, entry["file"]))["features"].astype(np.float32)[0]  # (256, 64, 64)
        col, row, width, height = json.loads(entry["window"])
        h_in, w_in = json.loads(entry["embedding"])["meta"]["input_size"]
        cell_cols = (np.arange(64) * 16 + 8) * (width / w_in) + col
        cell_rows = (np.arange(64) * 16 + 8) * (height / h_in) + row
        inside_c = cell_cols < col + width
        inside_r = cell_rows < row + height
        for i, (c0, r0, c1, r1) in enumerate(boxes):
            cols = inside_c & (cell_cols >= c0) & (cell_cols < c1)
            rows = inside_r & (cell_rows >= r0) & (cell_rows < r1)
            if cols.any() and rows.any():
                block = features[:, rows][:, :, cols].reshape(256, -1)
                sums[i] = block.sum(axis=1) + (sums[i] if sums[i].size else 0)
                counts[i] += block.shape[1]
    if not found:
        raise SegError(f"The cache {folder} holds no embedding of {os.path.basename(source.path)}; encode it first (seg encode).")
    return [s / n if n else None for s, n in zip(sums, counts)]


def _cosine_distance(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> Optional[float]:
    if a is None or b is None:
        return None
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0:
        return None
    return float(np.clip(1.0 - np.dot(a, b) / norm, 0.0, 1.0))
