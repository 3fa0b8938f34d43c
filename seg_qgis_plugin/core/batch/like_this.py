""""Like this" without SAM 3: look-alikes of a few examples, found in the features a backend already
computes for each tile, then segmented by that backend.

1. Each tile's embedding becomes a grid of feature vectors: SAM's and SAM 2's image features (one
   per 16 model pixels), or for the classic backend the Lab colour and its local spread per 8-pixel
   cell.
2. The positive examples' cells give a prototype; every cell gets a likeness to it: the cosine for
   SAM features, a Gaussian on the examples' own spread for the few classic features. Negative
   examples lower it: a cell more like a negative than like the positives does not count.
3. Cells that are local maxima of likeness above the threshold (by default: what three quarters of
   the examples' own cells reach, for classic features at most 0.6) become point prompts; the backend decodes them, and a mask is kept
   when its size is within a factor of the examples' and its best cell is as alike as the threshold.
   Non-maximum suppression leaves one mask per object.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from ..errors import SegError
from ..engine.segmenter import Segmenter
from ..geo.prompts import Prompt
from ..geo.tiling import Tile
from ..models.backend import TilePrompt
from .point_grid import TileMask, decode_points, filter_masks

SAM_STRIDE = 16  # SAM and SAM 2 image features: one vector per 16 x 16 model pixels
CLASSIC_CELL = 8
CLASSIC_SPREAD = 6.0  # Lab units: the least spread a classic feature is given (a flat roof has none)
CLASSIC_LIKENESS = 0.6  # the most a classic threshold asks (a look-alike within about one spread)
SIZE_FACTOR = 3.0  # a look-alike's area lies within this factor of the examples'
MAX_PROMPTS = 256  # per tile


@dataclass(frozen=True)
class FeatureGrid:
    """cells float32 (gh, gw, F); cell_size (rows, cols) in tile pixels per cell; kind "cosine"
    (unit vectors) or "gauss" (raw values)."""

    cells: np.ndarray
    cell_size: Tuple[float, float]
    kind: str

    def cell_mask(self, mask: np.ndarray) -> np.ndarray:
        """bool (gh, gw): the cells whose centre lies inside `mask` (tile pixels)."""
        gh, gw = self.cells.shape[:2]
        rows = np.clip(((np.arange(gh) + 0.5) * self.cell_size[0]).astype(int), 0, mask.shape[0] - 1)
        cols = np.clip(((np.arange(gw) + 0.5) * self.cell_size[1]).astype(int), 0, mask.shape[1] - 1)
        return mask[np.ix_(rows, cols)]


def feature_grid(embedding) -> FeatureGrid:
    """The embedding of one tile as a grid of feature vectors (see the module docstring)."""
    height, width = embedding.image_size
    if "features" in embedding.arrays:
        features = np.asarray(embedding.arrays["features"], np.float32)[0]
        h_in, w_in = embedding.meta.get("input_size") or features.shape[1:]
        gh, gw = -(-int(h_in) // SAM_STRIDE), -(-int(w_in) // SAM_STRIDE)
        cells = np.moveaxis(features[:, :gh, :gw], 0, -1)
        cells = cells / np.maximum(np.linalg.norm(cells, axis=-1, keepdims=True), 1e-6)
        return FeatureGrid(cells, (height / gh, width / gw), "cosine")
    if "lab" in embedding.arrays:
        lab = np.asarray(embedding.arrays["lab"], np.float32)
        gh, gw = height // CLASSIC_CELL, width // CLASSIC_CELL
        blocks = lab[:gh * CLASSIC_CELL, :gw * CLASSIC_CELL].reshape(gh, CLASSIC_CELL, gw, CLASSIC_CELL, 3)
        cells = np.concatenate([blocks.mean(axis=(1, 3)), blocks.std(axis=(1, 3))], axis=-1)
        return FeatureGrid(cells, (float(CLASSIC_CELL), float(CLASSIC_CELL)), "gauss")
    raise SegError("This backend's embeddings have no features to compare; 'Like this' needs SAM, SAM 2.1 or classic.")


@dataclass(frozen=True)
class Prototype:
    """What the positive (and negative) examples look like in feature space, and their areas in
    tile pixels."""

    kind: str
    mean: np.ndarray
    spread: np.ndarray
    negatives: Optional[np.ndarray]
    areas: Tuple[float, ...]

    def likeness(self, cells: np.ndarray) -> np.ndarray:
        """float32 (gh, gw) in [0, 1] (cosine: [-1, 1])."""
        alike = self._alike(cells, self.mean)
        if self.negatives is not None:
            unlike = np.max([self._alike(cells, n) for n in self.negatives], axis=0)
            alike = np.where(unlike > alike, np.minimum(alike, 0.0), alike)
        return alike

    def _alike(self, cells: np.ndarray, centre: np.ndarray) -> np.ndarray:
        if self.kind == "cosine":
            return cells @ (centre / max(float(np.linalg.norm(centre)), 1e-6))
        z = (cells - centre) / self.spread
        return np.exp(-0.5 * np.mean(z * z, axis=-1))


class LikeThisFinder:
    """The "Like this" route of concepts.find_concepts for SAM, SAM 2.1 and classic backends."""

    def __init__(self, segmenter: Segmenter, examples, options, likeness: Optional[float] = None):
        self.segmenter, self.options = segmenter, options
        positives, negatives, areas, sizes, kind = [], [], [], [], None
        for example in examples:
            tile = next((t for t in segmenter.grid if example_box(segmenter, example, t) is not None), None)
            if tile is None:
                continue
            grid = feature_grid(segmenter.embedding(tile))
            mask = _rasterized(example.geometry, tile, segmenter)
            cells = grid.cells[grid.cell_mask(mask)]
            if not len(cells):  # smaller than a cell: its centre cell
                c0, r0, c1, r1 = example_box(segmenter, example, tile)
                cells = grid.cells[min(int((r0 + r1) / 2 / grid.cell_size[0]), grid.cells.shape[0] - 1),
                                   min(int((c0 + c1) / 2 / grid.cell_size[1]), grid.cells.shape[1] - 1)][None]
            (positives if example.positive else negatives).append(cells)
            if example.positive:
                areas.append(float(mask.sum()))
                c0, r0, c1, r1 = example_box(segmenter, example, tile)
                sizes.append((c1 - c0, r1 - r0))
            kind = grid.kind
        if not positives:
            raise SegError("No positive example lies wholly inside the raster's tiles; draw it inside the raster.")
        every = np.concatenate(positives)
        spread = np.maximum(every.std(axis=0), CLASSIC_SPREAD) if kind == "gauss" else np.ones(every.shape[1], np.float32)
        self.prototype = Prototype(kind, every.mean(axis=0), spread,
                                   np.array([n.mean(axis=0) for n in negatives]) if negatives else None, tuple(areas))
        self.size = tuple(float(v) * 1.2 for v in np.median(sizes, axis=0))  # a box with a margin
        own = self.prototype.likeness(every)
        threshold = float(np.quantile(own, 0.25))
        self.threshold = float(likeness) if likeness is not None else min(threshold, CLASSIC_LIKENESS) if kind == "gauss" else threshold

    def tile(self, tile: Tile, concepts):
        concept = concepts[0]
        for mask, score in self.look_alikes(tile):
            yield concept, mask, score

    def look_alikes(self, tile: Tile) -> List[Tuple[np.ndarray, float]]:
        """(mask bool (h, w), score) of each look-alike on `tile`: the backend's score times the
        mask's likeness to the examples."""
        from scipy.ndimage import maximum_filter

        embedding = self.segmenter.embedding(tile)
        grid = feature_grid(embedding)
        alike = self.prototype.likeness(grid.cells)
        peaks = (alike >= self.threshold) & (alike == maximum_filter(alike, size=3, mode="nearest"))
        rows, cols = np.nonzero(peaks)
        order = np.argsort(-alike[rows, cols])[:MAX_PROMPTS]
        points = np.stack([(cols[order] + 0.5) * grid.cell_size[1] - 0.5,
                           (rows[order] + 0.5) * grid.cell_size[0] - 0.5], axis=1).astype(np.float32)
        if not len(points):
            return []
        smallest, largest = min(self.prototype.areas), max(self.prototype.areas)
        found = []
        for m in self._decode(embedding, points):
            area = float(m.mask.sum())
            if not smallest / SIZE_FACTOR <= area <= largest * SIZE_FACTOR:
                continue
            inside = grid.cell_mask(m.mask)
            best = float(alike[inside].max()) if inside.any() else float(alike[_cell_of(m.point, grid)])
            if best >= self.threshold:  # the best cell: an object about one cell wide has few cells and mixed edges
                found.append(type(m)(m.mask, float(m.score) * min(1.0, max(best, 0.0)), m.stability, m.point))
        kept = filter_masks(found, 0.0, 0.0, 0.5)
        return [(m.mask, float(m.score)) for m in kept]

    def _decode(self, embedding, points: np.ndarray):
        """SAM decodes a point; the classic backend, which needs the object's extent, a box of the
        examples' median size centred on it."""
        if self.prototype.kind == "cosine":
            return decode_points(self.segmenter.backend, embedding, points)
        height, width = embedding.image_size
        half_w, half_h = self.size[0] / 2, self.size[1] / 2
        out = []
        for x, y in points:
            box = (max(x - half_w, 0.0), max(y - half_h, 0.0), min(x + half_w, width - 1.0), min(y + half_h, height - 1.0))
            pred = self.segmenter.backend.decode(embedding, TilePrompt(box=box))
            out.append(TileMask(pred.mask, float(pred.score), float(pred.stability), (float(x), float(y))))
        return out


def _cell_of(point, grid: FeatureGrid) -> Tuple[int, int]:
    x, y = point
    return (min(int((y + 0.5) / grid.cell_size[0]), grid.cells.shape[0] - 1),
            min(int((x + 0.5) / grid.cell_size[1]), grid.cells.shape[1] - 1))


def _rasterized(geometry, tile: Tile, segmenter: Segmenter) -> np.ndarray:
    """bool (tile.height, tile.width): the pixels of `tile` whose centre lies inside `geometry`
    (in the raster's CRS)."""
    from rasterio.features import rasterize

    return rasterize([geometry], out_shape=(tile.height, tile.width), transform=tile.transform(segmenter.source.transform),
                     dtype="uint8").astype(bool)


def example_box(segmenter: Segmenter, example, tile: Tile):
    """The example's bounding box in `tile`'s pixel-edge coordinates (x0, y0, x1, y1), or None
    when it does not lie inside the tile."""
    pixels = segmenter.to_pixels(Prompt(crs=example.crs, box=tuple(example.geometry.bounds)))
    c0, r0, c1, r1 = np.asarray(pixels.box, float) / tile.scale - (tile.col, tile.row, tile.col, tile.row)
    if c0 < 0 or r0 < 0 or c1 > tile.width or r1 > tile.height:
        return None
    return float(c0), float(r0), float(c1), float(r1)
