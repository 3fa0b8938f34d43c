"""Tiles, tile grids and working resolution.

Everything here is in *level pixels*: a level is the raster decimated by an integer `scale`
(scale 1 = full resolution), so a level pixel covers scale x scale raster pixels and the level
transform is `raster transform * Affine.scale(scale)`. A large object that does not fit one
window at full resolution fits one at a coarser level.

Grid arithmetic, per axis, for a level of n pixels, tile size t and overlap o (stride s = t - o):

    count   = 1 + ceil(max(n - t, 0) / s)
    offset  = min(i * s, max(n - t, 0))   for i in 0..count-1

The last tile is shifted back to end at the level edge, so every tile is full size (t pixels)
unless the level itself is smaller than t. Adjacent tiles share at least `o` pixels; with o >= 2m
every point lies at least m pixels inside some tile, which is why overlap avoids seams: a click is
always answered by a tile in which it is not near an edge.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

from affine import Affine

from ..errors import SettingError


@dataclass(frozen=True)
class Tile:
    """A window of `width` x `height` level pixels at (col, row) on level `scale`."""

    col: int
    row: int
    width: int
    height: int
    scale: int = 1

    @property
    def raster_window(self) -> Tuple[int, int, int, int]:
        """The same window in full-resolution raster pixels (col, row, width, height)."""
        s = self.scale
        return self.col * s, self.row * s, self.width * s, self.height * s

    def transform(self, raster_transform: Affine) -> Affine:
        """Affine from tile pixels to map coordinates (pixel edges exact)."""
        return raster_transform * Affine.scale(self.scale) * Affine.translation(self.col, self.row)

    def contains(self, x: float, y: float) -> bool:
        """Whether a level-pixel position lies inside the tile."""
        return self.col <= x < self.col + self.width and self.row <= y < self.row + self.height

    def label(self) -> str:
        c, r, w, h = self.raster_window
        return f"{c},{r},{w},{h}@{self.scale}"


def check_tiling(tile: int, overlap: int, scale: int) -> None:
    """Raise SettingError (one sentence) unless tile >= 16, 0 <= overlap < tile and scale >= 1."""
    if tile < 16:
        raise SettingError(f"Tile size must be at least 16 pixels, not {tile}.")
    if not 0 <= overlap < tile:
        raise SettingError(f"Overlap must be between 0 and the tile size ({tile}), not {overlap}.")
    if scale < 1:
        raise SettingError(f"Scale must be a positive integer, not {scale}.")


@dataclass(frozen=True)
class Tiling:
    """How a raster is cut for the model, whatever its size: tile and overlap in level pixels, on
    the level decimated by `scale` (1: full resolution)."""

    tile: int = 1024
    overlap: int = 256
    scale: int = 1

    def __post_init__(self):
        check_tiling(self.tile, self.overlap, self.scale)

    def grid(self, raster_width: int, raster_height: int) -> "TileGrid":
        """This tiling over a raster of raster_width x raster_height pixels."""
        return TileGrid(raster_width, raster_height, self.tile, self.overlap, self.scale)


@dataclass(frozen=True)
class TileGrid:
    """A regular grid of tiles over one level of a raster of raster_width x raster_height pixels."""

    raster_width: int
    raster_height: int
    tile: int = 1024
    overlap: int = 256
    scale: int = 1

    def __post_init__(self):
        check_tiling(self.tile, self.overlap, self.scale)

    @property
    def width(self) -> int:
        return self.raster_width // self.scale

    @property
    def height(self) -> int:
        return self.raster_height // self.scale

    @property
    def stride(self) -> int:
        return self.tile - self.overlap

    @property
    def shape(self) -> Tuple[int, int]:
        """(rows, columns) of tiles."""
        return _count(self.height, self.tile, self.stride), _count(self.width, self.tile, self.stride)

    def __len__(self) -> int:
        rows, cols = self.shape
        return rows * cols

    def at(self, i: int, j: int) -> Tile:
        """The tile in grid row i, column j."""
        return Tile(
            col=_offset(j, self.width, self.tile, self.stride), row=_offset(i, self.height, self.tile, self.stride),
            width=min(self.tile, self.width), height=min(self.tile, self.height), scale=self.scale,
        )

    def __iter__(self) -> Iterator[Tile]:
        rows, cols = self.shape
        for i in range(rows):
            for j in range(cols):
                yield self.at(i, j)

    def index_of(self, tile: Tile) -> Tuple[int, int]:
        rows, cols = self.shape
        i = next(i for i in range(rows) if _offset(i, self.height, self.tile, self.stride) == tile.row)
        j = next(j for j in range(cols) if _offset(j, self.width, self.tile, self.stride) == tile.col)
        return i, j

    def best_tile_for(self, x: float, y: float) -> Tile:
        """The tile in which level position (x, y) lies farthest from any edge."""
        rows, cols = self.shape
        i = max(range(rows), key=lambda i: _margin(y, _offset(i, self.height, self.tile, self.stride), min(self.tile, self.height)))
        j = max(range(cols), key=lambda j: _margin(x, _offset(j, self.width, self.tile, self.stride), min(self.tile, self.width)))
        return self.at(i, j)

    def neighbour(self, tile: Tile, di: int, dj: int) -> Optional[Tile]:
        rows, cols = self.shape
        i, j = self.index_of(tile)
        if 0 <= i + di < rows and 0 <= j + dj < cols:
            return self.at(i + di, j + dj)
        return None

    def tiles_intersecting(self, x0: float, y0: float, x1: float, y1: float) -> List[Tile]:
        """Tiles overlapping the level-pixel rectangle [x0, x1) x [y0, y1)."""
        return [t for t in self if t.col < x1 and t.col + t.width > x0 and t.row < y1 and t.row + t.height > y0]


def scale_for_gsd(raster_resolution: float, target_gsd: Optional[float]) -> int:
    """The integer decimation that brings `raster_resolution` closest to `target_gsd` without
    going finer than the raster (None or a finer target gives 1)."""
    if not target_gsd or target_gsd <= raster_resolution:
        return 1
    return max(1, int(round(target_gsd / raster_resolution)))


def _count(n: int, t: int, s: int) -> int:
    return 1 + math.ceil(max(n - t, 0) / s)


def _offset(i: int, n: int, t: int, s: int) -> int:
    return min(i * s, max(n - t, 0))


def _margin(v: float, start: int, size: int) -> float:
    return min(v - start, start + size - v)
