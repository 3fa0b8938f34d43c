"""Merging per-tile object polygons into whole objects across tile overlaps.

Each tile sees objects only inside its window. Two pieces from different tiles are the same object
when they agree where both tiles looked: their IoU *inside the two tiles' shared window* is at least
`merge_iou`. That one rule removes duplicates (an object wholly inside an overlap is found by both
tiles: the pieces agree everywhere) and joins objects cut by a tile edge (the cut piece and its
neighbour's piece agree inside the overlap). Linked pieces are grouped transitively (an object
crossing several tiles) and each group becomes the union of its pieces.

Cost: a spatial index query per piece and a few polygon intersections per overlapping pair.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

from .tiling import Tile


@dataclass
class Piece:
    """One object as seen from one tile: shapely (Multi)Polygon in the raster CRS, the tile's
    footprint polygon, and the model's score and stability."""

    geometry: object
    tile: Tile
    footprint: object
    score: float
    stability: float


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


def merge_pieces(pieces: Sequence[Piece], merge_iou: float = 0.5) -> List[MergedObject]:
    """Group pieces that are one object (see the module docstring) and union each group."""
    from shapely import STRtree, union_all

    pieces = list(pieces)
    parent = list(range(len(pieces)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    tree = STRtree([p.geometry for p in pieces])
    for i, a in enumerate(pieces):
        for j in tree.query(a.geometry, predicate="intersects"):
            j = int(j)
            if j <= i or pieces[j].tile == a.tile or find(i) == find(j):
                continue
            if shared_window_iou(a, pieces[j]) >= merge_iou:
                parent[find(j)] = find(i)
    groups: dict = {}
    for i in range(len(pieces)):
        groups.setdefault(find(i), []).append(pieces[i])
    merged = []
    for members in groups.values():
        geometry = members[0].geometry if len(members) == 1 else union_all([m.geometry for m in members])
        merged.append(MergedObject(geometry, members))
    return merged


def shared_window_iou(a: Piece, b: Piece) -> float:
    """IoU of the two pieces inside the intersection of their tiles' footprints (0 when the tiles
    do not overlap)."""
    shared = a.footprint.intersection(b.footprint)
    if shared.is_empty or shared.area == 0:
        return 0.0
    ga, gb = a.geometry.intersection(shared), b.geometry.intersection(shared)
    union = ga.union(gb).area
    return ga.intersection(gb).area / union if union else 0.0


def _weighted(pieces: Sequence[Piece], name: str) -> float:
    areas = [p.geometry.area for p in pieces]
    total = sum(areas)
    if not total:
        return float(sum(getattr(p, name) for p in pieces) / len(pieces))
    return float(sum(a * getattr(p, name) for a, p in zip(areas, pieces)) / total)
