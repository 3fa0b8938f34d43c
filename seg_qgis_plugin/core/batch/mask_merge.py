"""Merging per-tile object polygons into whole objects across tile overlaps.

Each tile sees objects only inside its window. Two pieces from different tiles are the same object
when they agree where both tiles looked: their IoU *inside the two tiles' shared window* is at least
`merge_iou`. That one rule removes duplicates (an object wholly inside an overlap is found by both
tiles: the pieces agree everywhere) and joins objects cut by a tile edge (the cut piece and its
neighbour's piece agree inside the overlap). Linked pieces are grouped transitively (an object
crossing several tiles) and each group becomes the union of its pieces.

Comparisons and unions are done on masks, in level pixels: polygon overlay of noisy masks with
thousands of holes is what makes vector merging slow (seconds per pair), while mask IoU is linear
in pixels. Only pieces that reach into another tile's window keep their mask (cropped to their
bounding box); the others, which cannot be merged, keep just their polygon. Memory is therefore
the polygons plus the masks of objects near tile overlaps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from affine import Affine

from ..geo.tiling import Tile


@dataclass
class Piece:
    """One object as seen from one tile: a shapely (Multi)Polygon in map coordinates, the tile
    (level pixels), the model's score and stability, and, for pieces that reach into another
    tile's window, `mask` bool (h, w) cropped to the piece's bounding box with its top-left
    level pixel at `origin` (col, row)."""

    geometry: object
    tile: Tile
    score: float
    stability: float
    mask: Optional[np.ndarray] = None
    origin: Tuple[int, int] = (0, 0)

    @classmethod
    def from_tile_mask(cls, mask: np.ndarray, tile: Tile, geometry, score: float, stability: float, keep_mask: bool) -> "Piece":
        """A piece from a full-tile mask bool (tile.height, tile.width)."""
        if not keep_mask:
            return cls(geometry, tile, score, stability)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        crop = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].copy()
        return cls(geometry, tile, score, stability, crop, (tile.col + int(cols[0]), tile.row + int(rows[0])))

    def bounds(self) -> Tuple[int, int, int, int]:
        """(col0, row0, col1, row1) of the mask in level pixels."""
        h, w = self.mask.shape
        return self.origin[0], self.origin[1], self.origin[0] + w, self.origin[1] + h


@dataclass
class MergedObject:
    geometry: object
    pieces: List[Piece]

    @property
    def score(self) -> float:
        return _weighted(self.pieces, "score")

    @property
    def stability(self) -> float:
        return _weighted(self.pieces, "stability")

    @property
    def extent(self) -> Tile:
        """The smallest window (level pixels) holding every tile that saw the object."""
        tiles = [p.tile for p in self.pieces]
        c0, r0 = min(t.col for t in tiles), min(t.row for t in tiles)
        c1, r1 = max(t.col + t.width for t in tiles), max(t.row + t.height for t in tiles)
        return Tile(c0, r0, c1 - c0, r1 - r0, tiles[0].scale)


def merge_pieces(pieces: Sequence[Piece], level_transform: Affine, merge_iou: float = 0.5) -> List[MergedObject]:
    """Group pieces that are one object (see the module docstring) and union each group.
    level_transform: level pixels -> map coordinates (raster transform * scale)."""
    from shapely import STRtree

    pieces = list(pieces)
    parent = list(range(len(pieces)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    tree = STRtree([p.geometry for p in pieces])
    for i, a in enumerate(pieces):
        for j in tree.query(a.geometry):  # bounding boxes only; the raster IoU decides
            j = int(j)
            b = pieces[j]
            if j <= i or b.tile == a.tile or a.mask is None or b.mask is None or find(i) == find(j):
                continue
            if shared_window_iou(a, b) >= merge_iou:
                parent[find(j)] = find(i)
    groups: dict = {}
    for i in range(len(pieces)):
        groups.setdefault(find(i), []).append(pieces[i])
    return [MergedObject(members[0].geometry if len(members) == 1 else _union(members, level_transform), members)
            for members in groups.values()]


def shared_window_iou(a: Piece, b: Piece) -> float:
    """IoU of two pieces (with masks) inside the intersection of their tiles (0 when the tiles do
    not overlap)."""
    window = _intersect(a.tile, b.tile)
    if window is None:
        return 0.0
    ma, mb = _paint([a], window), _paint([b], window)
    union = np.count_nonzero(ma | mb)
    return np.count_nonzero(ma & mb) / union if union else 0.0


def _union(members: Sequence[Piece], level_transform: Affine):
    from ..geo.vectorize import mask_to_geometry

    bounds = [m.bounds() for m in members]
    c0, r0 = min(b[0] for b in bounds), min(b[1] for b in bounds)
    c1, r1 = max(b[2] for b in bounds), max(b[3] for b in bounds)
    mask = _paint(members, (c0, r0, c1, r1))
    return mask_to_geometry(mask, level_transform * Affine.translation(c0, r0))


def _intersect(a: Tile, b: Tile):
    c0, r0 = max(a.col, b.col), max(a.row, b.row)
    c1, r1 = min(a.col + a.width, b.col + b.width), min(a.row + a.height, b.row + b.height)
    return (c0, r0, c1, r1) if c1 > c0 and r1 > r0 else None


def _paint(pieces: Sequence[Piece], window) -> np.ndarray:
    """bool (r1 - r0, c1 - c0): the union of the pieces' masks inside the level window (c0, r0, c1, r1)."""
    c0, r0, c1, r1 = window
    out = np.zeros((r1 - r0, c1 - c0), bool)
    for p in pieces:
        pc0, pr0, pc1, pr1 = p.bounds()
        x0, y0, x1, y1 = max(c0, pc0), max(r0, pr0), min(c1, pc1), min(r1, pr1)
        if x1 > x0 and y1 > y0:
            out[y0 - r0:y1 - r0, x0 - c0:x1 - c0] |= p.mask[y0 - pr0:y1 - pr0, x0 - pc0:x1 - pc0]
    return out


def _weighted(pieces: Sequence[Piece], name: str) -> float:
    areas = [p.geometry.area for p in pieces]
    total = sum(areas)
    if not total:
        return float(sum(getattr(p, name) for p in pieces) / len(pieces))
    return float(sum(a * getattr(p, name) for a, p in zip(areas, pieces)) / total)
