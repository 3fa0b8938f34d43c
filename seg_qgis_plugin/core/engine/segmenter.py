"""From a prompt in map coordinates to a whole object mask on the raster's grid.

`Segmenter` ties a raster, a fixed radiometry, a tile grid, a model session and an optional
embedding cache together. It encodes each tile once (memory, then disk, then the model) and answers
prompts from the tile in which they lie farthest from an edge. When the mask reaches a tile edge
that is not the raster's edge, the object goes on: the neighbouring tile is prompted with points
inside the part already found in the overlap, and the connected parts are merged. A box larger
than a tile is answered on a coarser level so the whole box fits one window.
"""
from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

import numpy as np
from affine import Affine

from .embedding_cache import CacheKey, EmbeddingCache
from ..errors import SegWarning
from ..models.backend import MASKS, Backend, Embedding, TilePrompt
from ..progress import Progress, check_canceled, track
from ..geo.prompts import PixelPrompt, Prompt, to_pixels
from ..geo.radiometry import Radiometry, compute_radiometry
from ..geo.raster import RasterSource
from ..geo.tiling import Tile, TileGrid, Tiling

LOW_RES, MASK_LOGIT = 256, 8.0  # SAM's mask prompt: 256 x 256 logits over its padded 1024 input
BOX_FILL = 0.85  # a box may fill at most this share of a tile before we move to a coarser level


@dataclass(frozen=True)
class Segmentation:
    """One object. mask bool (H, W) and probability float32 (H, W) cover `extent` (level pixels
    of level `extent.scale`); `transform` maps their pixels to map coordinates in `crs` (WKT).
    `tiles` are the windows that were prompted; `complete` is False when the object went on
    beyond `max_windows` tiles."""

    mask: np.ndarray
    probability: np.ndarray
    extent: Tile
    transform: Affine
    crs: str
    score: float
    stability: float
    prompt_type: str
    prompt_count: int
    tiles: Tuple[Tile, ...]
    complete: bool
    low_res_logits: Optional[np.ndarray] = None

    @property
    def window_label(self) -> str:
        return self.extent.label()


@dataclass
class _Piece:
    tile: Tile
    mask: np.ndarray
    probability: np.ndarray
    score: float
    stability: float


class Segmenter:
    """A labeling session on one raster.

    tiling: tile and overlap in model pixels, and the scale that decimates the raster (working
    resolution); cache, when given and the backend is cacheable, keeps embeddings on disk;
    memory_tiles embeddings stay in memory; max_windows bounds how far one object is followed;
    clicked_parts_only keeps, of a mask answering point prompts, only the parts under a positive
    click (what a click means; scattered specks elsewhere are dropped).
    """

    def __init__(self, source: RasterSource, backend: Backend, radiometry: Optional[Radiometry] = None,
                 tiling: Tiling = Tiling(), cache: Optional[EmbeddingCache] = None, max_windows: int = 16,
                 memory_tiles: int = 8, clicked_parts_only: bool = True):
        self.clicked_parts_only = clicked_parts_only
        self.source = source
        self.backend = backend
        self.radiometry = radiometry or compute_radiometry(source)
        self.grid: TileGrid = tiling.grid(source.width, source.height)
        self.cache = cache if backend.cacheable else None
        self.max_windows = max_windows
        self._memory: "OrderedDict[Tile, Embedding]" = OrderedDict()
        self._memory_tiles = memory_tiles

    # -- encoding -----------------------------------------------------------------------------

    def image(self, tile: Tile) -> Tuple[np.ndarray, np.ndarray]:
        """The model's view of `tile`: uint8 (h, w, 3) and valid bool (h, w)."""
        data, valid = self.source.read(self.radiometry.bands, tile.raster_window, out_shape=(tile.height, tile.width))
        return self.radiometry.apply(data, valid), valid

    def cache_key(self, tile: Tile) -> CacheKey:
        return CacheKey(self.source.fingerprint(), tile, self.radiometry, self.backend.model_id, self.backend.checkpoint_sha256 or "")

    def embedding(self, tile: Tile) -> Embedding:
        """Memory, then the disk cache, then the model."""
        if tile in self._memory:
            self._memory.move_to_end(tile)
            return self._memory[tile]
        embedding = self.cache.get(self.cache_key(tile)) if self.cache else None
        if embedding is None:
            embedding = self.backend.encode(self.image(tile)[0])
            if self.cache:
                self.cache.put(self.cache_key(tile), embedding, self.source.path)
        self._memory[tile] = embedding
        while len(self._memory) > self._memory_tiles:
            self._memory.popitem(last=False)
        return embedding

    def is_encoded(self, tile: Tile) -> bool:
        return tile in self._memory or (self.cache is not None and self.cache_key(tile) in self.cache)

    def encode(self, tiles: Optional[Iterable[Tile]] = None, skip_nodata: bool = True, progress: Optional[Progress] = None) -> dict:
        """Encode `tiles` (default: the whole grid) into the cache. Tiles already cached are
        skipped, so an interrupted run resumes. Returns counts: encoded, cached, nodata."""
        tiles = list(self.grid if tiles is None else tiles)
        counts = {"encoded": 0, "cached": 0, "nodata": 0}
        for tile in track(tiles, len(tiles), progress):
            if self.cache is not None and self.cache_key(tile) in self.cache:
                counts["cached"] += 1
                continue
            image, valid = self.image(tile)
            if skip_nodata and not valid.any():
                counts["nodata"] += 1
                continue
            embedding = self.backend.encode(image)
            if self.cache is not None:
                self.cache.put(self.cache_key(tile), embedding, self.source.path)
            counts["encoded"] += 1
        return counts

    # -- prompting ----------------------------------------------------------------------------

    def to_pixels(self, prompt: Prompt) -> PixelPrompt:
        return to_pixels(prompt, self.source.crs, self.source.transform, self.source.width, self.source.height)

    def grid_for(self, pixels: PixelPrompt) -> TileGrid:
        """The grid's level, or a coarser one where a box would not fit one tile."""
        grid = self.grid
        if pixels.box is not None:
            c0, r0, c1, r1 = pixels.box
            needed = math.ceil(max(c1 - c0, r1 - r0) / (grid.tile * BOX_FILL))
            if needed > grid.scale:
                grid = TileGrid(grid.raster_width, grid.raster_height, grid.tile, grid.overlap, needed)
        return grid

    @property
    def level_transform(self) -> Affine:
        """Map transform of the working-resolution pixel grid (the raster's at `grid.scale`)."""
        return self.source.transform * Affine.scale(self.grid.scale)

    def start_tile(self, pixels: PixelPrompt) -> Tile:
        """The tile a prompt is answered on first: the one where the prompt lies most inside, on
        the grid's level or the coarser one a large box needs."""
        grid = self.grid_for(pixels)
        c0, r0, c1, r1 = (v / grid.scale for v in pixels.bounds())
        return grid.best_tile_for((c0 + c1) / 2, (r0 + r1) / 2)

    def close(self) -> None:
        """Close the raster and release the model."""
        self._memory.clear()
        self.source.close()
        self.backend.close()

    def __enter__(self) -> "Segmenter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def segment(self, prompt: Prompt, multimask: Optional[bool] = None, previous: Optional[Segmentation] = None,
                progress: Optional[Progress] = None, mask_prompt=None) -> Segmentation:
        """Segment the object `prompt` points at, following it across tiles.

        previous: the last result on the same object; its low-resolution logits refine this
        prediction when both start on the same tile (SAM's iterative refinement).
        mask_prompt: an outline (shapely, raster CRS) the object is expected to have, e.g. on an
        earlier date; backends that take masks get it as a mask prompt on the start tile.
        """
        pixels = self.to_pixels(prompt)
        grid = self.grid_for(pixels)
        start = self.start_tile(pixels)
        pieces: List[_Piece] = []
        queue, seen = deque([start]), {start}
        complete = True
        low_res = None
        while queue:
            check_canceled(progress)
            tile = queue.popleft()
            tile_prompt = pixels.in_tile(tile)
            if tile == start:
                embedding = self.embedding(tile)
                if previous is not None and previous.tiles and previous.tiles[0] == start:
                    tile_prompt = _with(tile_prompt, mask_input=previous.low_res_logits)
                elif mask_prompt is not None and MASKS in self.backend.capabilities:
                    tile_prompt = _with(tile_prompt, mask_input=self._mask_logits(mask_prompt, tile, embedding))
                prediction = self.backend.decode(embedding, tile_prompt, multimask)
                low_res = prediction.low_res_logits
                kept = _clicked_parts(prediction.mask, tile_prompt) if self.clicked_parts_only else prediction.mask
            else:
                found = _paint(pieces, tile)
                seeds = _seed_points(found)
                if not len(seeds):
                    continue
                tile_prompt = _with(tile_prompt, points=np.vstack([tile_prompt.points, seeds]).astype(np.float32),
                                    labels=np.concatenate([tile_prompt.labels, np.ones(len(seeds), np.int32)]))
                prediction = self.backend.decode(self.embedding(tile), tile_prompt, False)
                kept = _connected_to(prediction.mask, found)
            probability = prediction.probability.astype(np.float32, copy=False)
            dropped = prediction.mask & ~kept
            if dropped.any():  # the parts left out are below one half
                probability = np.where(dropped, np.minimum(probability, 0.49), probability).astype(np.float32, copy=False)
            pieces.append(_Piece(tile, kept, probability, prediction.score, prediction.stability))
            for di, dj in _edges_reached(kept, tile, grid):
                neighbour = grid.neighbour(tile, di, dj)
                if neighbour is None or neighbour in seen:
                    continue
                if len(seen) >= self.max_windows:
                    complete = False
                    continue
                seen.add(neighbour)
                queue.append(neighbour)
        if not complete:
            import warnings

            warnings.warn(SegWarning(f"The object goes on beyond {self.max_windows} tiles; raise max_windows or use a coarser working resolution."))
        return self._merge(pieces, prompt, low_res, complete)

    def _mask_logits(self, geometry, tile: Tile, embedding: Embedding) -> np.ndarray:
        """float32 (1, 256, 256): `geometry` (raster CRS) burned on the tile's low-resolution mask frame
        (a quarter of the model's padded input), as logits: +MASK_LOGIT inside, -MASK_LOGIT outside."""
        from ..geo.shared_borders import burn

        h_in, w_in = embedding.meta["input_size"]
        side = LOW_RES
        frame = tile.transform(self.source.transform) * Affine.scale(tile.width / w_in * 4, tile.height / h_in * 4)
        inside = burn([geometry], (side, side), frame)
        return np.where(inside, MASK_LOGIT, -MASK_LOGIT).astype(np.float32)[None]

    def _merge(self, pieces: List[_Piece], prompt: Prompt, low_res, complete: bool) -> Segmentation:
        scale = pieces[0].tile.scale
        col0 = min(p.tile.col for p in pieces)
        row0 = min(p.tile.row for p in pieces)
        col1 = max(p.tile.col + p.tile.width for p in pieces)
        row1 = max(p.tile.row + p.tile.height for p in pieces)
        extent = Tile(col0, row0, col1 - col0, row1 - row0, scale)
        if len(pieces) == 1:  # one tile (most clicks): its arrays as they are
            mask, probability = pieces[0].mask, pieces[0].probability
        else:
            mask = _paint(pieces, extent)
            probability = np.zeros(mask.shape, np.float32)
            for p in pieces:
                view = probability[p.tile.row - row0:p.tile.row - row0 + p.tile.height, p.tile.col - col0:p.tile.col - col0 + p.tile.width]
                np.maximum(view, p.probability, out=view)
        areas = np.array([p.mask.sum() for p in pieces], float)
        weights = areas / areas.sum() if areas.sum() else np.full(len(pieces), 1 / len(pieces))
        return Segmentation(
            mask=mask, probability=probability, extent=extent, transform=extent.transform(self.source.transform),
            crs=self.source.crs.to_wkt(), score=float(np.dot(weights, [p.score for p in pieces])),
            stability=float(np.dot(weights, [p.stability for p in pieces])), prompt_type=prompt.kind,
            prompt_count=prompt.count, tiles=tuple(p.tile for p in pieces), complete=complete, low_res_logits=low_res)


def _with(prompt: TilePrompt, **changes) -> TilePrompt:
    fields = dict(points=prompt.points, labels=prompt.labels, box=prompt.box, mask_input=prompt.mask_input)
    fields.update(changes)
    return TilePrompt(**fields)


def _paint(pieces: List[_Piece], target: Tile) -> np.ndarray:
    """The union of `pieces` inside `target`, as bool (target.height, target.width)."""
    out = np.zeros((target.height, target.width), bool)
    for p in pieces:
        c0, r0 = max(p.tile.col, target.col), max(p.tile.row, target.row)
        c1 = min(p.tile.col + p.tile.width, target.col + target.width)
        r1 = min(p.tile.row + p.tile.height, target.row + target.height)
        if c1 > c0 and r1 > r0:
            out[r0 - target.row:r1 - target.row, c0 - target.col:c1 - target.col] |= \
                p.mask[r0 - p.tile.row:r1 - p.tile.row, c0 - p.tile.col:c1 - p.tile.col]
    return out


def _seed_points(found: np.ndarray, max_seeds: int = 3) -> np.ndarray:
    """Up to `max_seeds` points (x, y), one in each of the largest parts of `found`, each at the
    pixel farthest from the part's border and from the tile's edge."""
    import cv2

    padded = np.pad(found.astype(np.uint8), 1)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(padded, connectivity=8)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 3)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:max_seeds] + 1
    seeds = []
    for label in order:
        d = np.where(labels == label, distance, 0)
        row, col = np.unravel_index(int(np.argmax(d)), d.shape)
        if d[row, col] >= 1:
            seeds.append((col - 1, row - 1))
    return np.asarray(seeds, np.float32).reshape(-1, 2)


def _clicked_parts(mask: np.ndarray, prompt: TilePrompt) -> np.ndarray:
    """The parts of `mask` under a positive click; all of it when no click falls on it (or the
    prompt is a box alone)."""
    import cv2

    clicks = [(int(round(y)), int(round(x))) for (x, y), label in zip(prompt.points, prompt.labels) if label == 1]
    clicks = [(r, c) for r, c in clicks if 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and mask[r, c]]
    if not clicks:
        return mask
    image = np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
    filled = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), np.uint8)  # floodFill's mask has a one-pixel frame
    for r, c in clicks:  # a flood from each click costs what its part costs, not the whole tile
        if not filled[r + 1, c + 1]:
            cv2.floodFill(image, filled, (c, r), 1, 0, 0, 8 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    return np.ascontiguousarray(filled[1:-1, 1:-1]).view(bool)


def _connected_to(mask: np.ndarray, found: np.ndarray) -> np.ndarray:
    """The parts of `mask` that touch `found` (what we already know of the object)."""
    import cv2

    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    touching = np.unique(labels[found & mask])
    touching = touching[touching > 0]
    return np.isin(labels, touching) if len(touching) else np.zeros_like(mask)


def _edges_reached(mask: np.ndarray, tile: Tile, grid: TileGrid):
    """(di, dj) steps towards each tile edge the mask touches where the level goes on."""
    if not mask.any():
        return
    if mask[0].any() and tile.row > 0:
        yield -1, 0
    if mask[-1].any() and tile.row + tile.height < grid.height:
        yield 1, 0
    if mask[:, 0].any() and tile.col > 0:
        yield 0, -1
    if mask[:, -1].any() and tile.col + tile.width < grid.width:
        yield 0, 1
