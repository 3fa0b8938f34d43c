"""Which tiles to label next: uncertainty sampling with a diversity term.

Each tile of a regular grid gets
    priority = mean uncertainty x share not yet labelled x (0.5 + 0.5 x diversity)
where the uncertainty comes from an uncertainty GeoTIFF on the raster's grid (from `seg assist
--uncertainty`) or from a saved model run on the tile, the labelled share from the label layer, and
diversity is how far the tile's look (mean band values, scaled by their spread over the raster) is
from the tiles already labelled or already chosen, relative to the farthest look from the median. Tiles are
chosen greedily, so the top N do not all show the same confusing field. Cost: one windowed read
per tile (and a prediction per tile with a model).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from ..errors import SegError, SettingError
from ..geo.raster import RasterSource
from ..geo.vectorize import reproject_geometry
from ..progress import Progress, track
from .predict import uncertainty_of, windows_of

RANK_FIELDS = (("rank", "int", "rank"), ("priority", "float", "priority"), ("uncertainty", "float", "uncertain"),
               ("unlabeled", "float", "unlabeled"), ("diversity", "float", "diversity"), ("window", "str", "window"))
LOOK_SIDE = 8  # a tile's look: its bands averaged down to LOOK_SIDE x LOOK_SIDE, then to one mean per band


@dataclass
class RankedTile:
    window: tuple
    uncertainty: float
    unlabeled: float
    look: np.ndarray
    diversity: float = 0.0
    priority: float = 0.0


@dataclass(frozen=True)
class RankOptions:
    """How many tiles to choose (`top`), their side in pixels, and the uncertainty measure used
    when a model is run on each tile (entropy or margin)."""

    top: int = 20
    tile: int = 256
    measure: str = "entropy"


def rank_tiles(raster: str, out: Optional[str] = None, uncertainty: Optional[str] = None, model=None,
               labels: Optional[Sequence] = None, options: Optional[RankOptions] = None, mode: str = "create",
               progress: Optional[Progress] = None) -> List[RankedTile]:
    """Rank `raster`'s tiles of options.tile pixels and write the top options.top to `out` (a layer
    of tile squares with RANK_FIELDS, rank 1 first) when given. `model`: an AssistModel, used when
    no uncertainty raster is given. Returns the chosen tiles in order."""
    from ..outputs.vectors import LabelWriter, check_output

    options = options or RankOptions()
    if (uncertainty is None) == (model is None):
        raise SettingError("Give either an uncertainty raster (--uncertainty) or a model (--model), not both or neither.")
    if options.top < 1 or options.tile < 16:
        raise SettingError("--top must be at least 1 and --tile at least 16 pixels.")
    if out:
        check_output(out, mode=mode, fields=RANK_FIELDS)
    with RasterSource(raster) as source:
        unc_source = _matching(uncertainty, source) if uncertainty else None
        try:
            tiles = _score_tiles(source, unc_source, model, labels or [], options, progress)
        finally:
            if unc_source is not None:
                unc_source.close()
        chosen = _choose(tiles, options.top)
        if out:
            with LabelWriter(out, crs=source.crs.to_wkt(), mode=mode, fields=RANK_FIELDS) as writer:
                for label in tile_labels(source, chosen):
                    writer.add(label)
    return chosen


def tile_labels(source: RasterSource, chosen: Sequence[RankedTile]) -> List:
    """The chosen tiles as Labels: squares in the raster CRS with the RANK_FIELDS, rank 1 first."""
    from shapely.geometry import box

    from ..engine.labels import Label

    crs, labels = source.crs.to_wkt(), []
    for rank, t in enumerate(chosen, start=1):
        c, r, w, h = t.window
        x0, y0 = source.transform * (c, r + h)
        x1, y1 = source.transform * (c + w, r)
        labels.append(Label(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), crs, {
            "rank": rank, "priority": t.priority, "uncertainty": t.uncertainty, "unlabeled": t.unlabeled,
            "diversity": t.diversity, "window": f"{c},{r},{w},{h}@1"}))
    return labels


def _matching(path: str, source: RasterSource) -> RasterSource:
    unc = RasterSource(path)
    if (unc.width, unc.height) != (source.width, source.height) or not unc.transform.almost_equals(source.transform):
        unc.close()
        raise SegError(f"{path} is not on the grid of {source.path}; make it with seg assist --uncertainty on this raster.")
    return unc


def _score_tiles(source, unc_source, model, labels, options: RankOptions, progress) -> List[RankedTile]:
    from rasterio.features import rasterize
    from rasterio.windows import Window, transform as window_transform

    crs = source.crs.to_wkt()
    shapes = [g for g in (reproject_geometry(lab.geometry, lab.crs, crs) for lab in labels
                          if str(lab.attributes.get("status") or "") != "rejected") if g is not None and not g.is_empty]
    bounds = np.array([g.bounds for g in shapes]) if shapes else np.zeros((0, 4))
    windows = windows_of(source.width, source.height, options.tile)
    bands = list(range(1, source.count + 1))
    tiles = []
    for window in track(windows, len(windows), progress):
        c, r, w, h = window
        look, valid_small = source.read(bands, window, out_shape=(min(LOOK_SIDE, h), min(LOOK_SIDE, w)))
        if not valid_small.any():
            continue
        if unc_source is not None:
            values, valid = unc_source.read([1], window)
            values = values[0][valid & (values[0] >= 0)]
            if not len(values):
                continue
            mean_unc = float(values.mean())
        else:
            from .predict import predict_window

            proba, valid = predict_window(source, model, window)
            if not valid.any():
                continue
            mean_unc = float(uncertainty_of(proba, options.measure)[valid].mean())
        wt = window_transform(Window(*window), source.transform)
        x0, y1 = wt * (0, 0)
        x1, y0 = wt * (w, h)
        near = [s for s, b in zip(shapes, bounds) if b[0] < max(x0, x1) and b[2] > min(x0, x1) and b[1] < max(y0, y1) and b[3] > min(y0, y1)]
        labelled = float(rasterize(near, out_shape=(h, w), transform=wt, fill=0, dtype="uint8").mean()) if near else 0.0
        tiles.append(RankedTile(window, mean_unc, 1.0 - labelled, look[:, valid_small].mean(axis=1)))
    if not tiles:
        raise SegError(f"{source.path} has no tile with data to rank.")
    looks = np.array([t.look for t in tiles])
    spread = looks.std(axis=0)
    for t in tiles:
        t.look = t.look / np.where(spread > 0, spread, 1.0)
    return tiles


def _choose(tiles: List[RankedTile], top: int) -> List[RankedTile]:
    looks = np.array([t.look for t in tiles])
    base = np.array([t.uncertainty * t.unlabeled for t in tiles])
    seen = [i for i, t in enumerate(tiles) if t.unlabeled < 1.0]  # tiles already (partly) labelled
    nearest = np.full(len(tiles), np.inf)
    for i in seen:
        nearest = np.minimum(nearest, np.linalg.norm(looks - looks[i], axis=1))
    scale = float(np.linalg.norm(looks - np.median(looks, axis=0), axis=1).max()) or 1.0  # fixed, so priorities only fall
    chosen, available = [], np.ones(len(tiles), bool)
    for _ in range(min(top, len(tiles))):
        diversity = np.where(np.isfinite(nearest), np.minimum(nearest / scale, 1.0), 1.0)
        priority = np.where(available, base * (0.5 + 0.5 * diversity), -1.0)
        i = int(np.argmax(priority))
        if priority[i] < 0:
            break
        tiles[i].diversity, tiles[i].priority = float(diversity[i]), float(priority[i])
        chosen.append(tiles[i])
        available[i] = False
        nearest = np.minimum(nearest, np.linalg.norm(looks - looks[i], axis=1))
    return chosen


def describe(tiles: List[RankedTile]) -> str:
    """A short table of the chosen tiles, for the terminal."""
    lines = [f"{'rank':>4} {'priority':>8} {'uncert.':>7} {'unlab.':>6} {'divers.':>7}  window"]
    for rank, t in enumerate(tiles, start=1):
        lines.append(f"{rank:>4} {t.priority:8.3f} {t.uncertainty:7.3f} {t.unlabeled:6.2f} {t.diversity:7.2f}  {','.join(map(str, t.window))}")
    return os.linesep.join(lines)
