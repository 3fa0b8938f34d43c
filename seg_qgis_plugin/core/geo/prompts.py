"""Prompts in any CRS, and their way to raster pixels and to one tile's model coordinates."""
from __future__ import annotations

import functools

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from ..errors import CrsError, PromptError
from ..models.backend import TilePrompt
from .tiling import Tile


@dataclass(frozen=True)
class Prompt:
    """Points and/or one box in map coordinates of `crs` (anything pyproj reads: "EPSG:4326",
    WKT). points: ((x, y), ...); labels: 1 = object, 0 = background, one per point;
    box: (xmin, ymin, xmax, ymax)."""

    crs: str
    points: Tuple[Tuple[float, float], ...] = ()
    labels: Tuple[int, ...] = ()
    box: Optional[Tuple[float, float, float, float]] = None

    def __post_init__(self):
        if not self.crs:
            raise CrsError("A prompt needs a CRS; say which one its coordinates are in.")
        if len(self.points) != len(self.labels):
            raise PromptError(f"{len(self.points)} points but {len(self.labels)} labels; give one label per point.")
        if not self.points and self.box is None:
            raise PromptError("The prompt is empty; give at least one point or a box.")
        if any(label not in (0, 1) for label in self.labels):
            raise PromptError("Point labels must be 1 (object) or 0 (background).")
        if self.box is not None and not (self.box[2] > self.box[0] and self.box[3] > self.box[1]):
            raise PromptError(f"The box {self.box} is empty; give xmin, ymin, xmax, ymax with max > min.")

    @property
    def kind(self) -> str:
        """'point', 'box' or 'point+box', as recorded in the prompt_type attribute."""
        return "+".join(k for k, present in (("point", bool(self.points)), ("box", self.box is not None)) if present)

    @property
    def count(self) -> int:
        return len(self.points) + (self.box is not None)


@dataclass(frozen=True)
class PixelPrompt:
    """A prompt in continuous full-resolution raster pixels: points float64 (N, 2) of
    (column, row), labels int32 (N,), box (col0, row0, col1, row1) or None."""

    points: np.ndarray
    labels: np.ndarray
    box: Optional[Tuple[float, float, float, float]]

    def in_tile(self, tile: Tile, include_outside_points: bool = False) -> TilePrompt:
        """This prompt in `tile`'s model coordinates (SAM's index convention: the centre of tile
        pixel (i, j) is (i, j)). Points outside the tile are dropped unless asked for; the box is
        clipped to the tile."""
        s = tile.scale
        pts = self.points / s - (tile.col, tile.row)
        keep = np.ones(len(pts), bool) if include_outside_points else (
            (pts[:, 0] >= 0) & (pts[:, 0] < tile.width) & (pts[:, 1] >= 0) & (pts[:, 1] < tile.height))
        box = None
        if self.box is not None:
            c0, r0, c1, r1 = (np.asarray(self.box) / s) - (tile.col, tile.row, tile.col, tile.row)
            c0, r0 = max(c0, 0.0), max(r0, 0.0)
            c1, r1 = min(c1, tile.width), min(r1, tile.height)
            if c1 > c0 and r1 > r0:
                box = (c0 - 0.5, r0 - 0.5, c1 - 0.5, r1 - 0.5)
        return TilePrompt(points=(pts[keep] - 0.5).astype(np.float32), labels=self.labels[keep].astype(np.int32), box=box)

    def bounds(self) -> Tuple[float, float, float, float]:
        """(col0, row0, col1, row1) enclosing the positive points and the box."""
        xs, ys = list(self.points[self.labels == 1, 0]), list(self.points[self.labels == 1, 1])
        if self.box is not None:
            xs += [self.box[0], self.box[2]]
            ys += [self.box[1], self.box[3]]
        return min(xs), min(ys), max(xs), max(ys)


def to_pixels(prompt: Prompt, raster_crs, raster_transform, width: int, height: int) -> PixelPrompt:
    """Reproject `prompt` into the raster CRS and then into raster pixels.

    Raises PromptError for a point outside the raster or a box that misses it entirely; a box
    partly outside is clipped to the raster.
    """
    xy = np.asarray(prompt.points, float).reshape(-1, 2)
    corners = np.asarray([[prompt.box[0], prompt.box[1]], [prompt.box[2], prompt.box[3]],
                          [prompt.box[0], prompt.box[3]], [prompt.box[2], prompt.box[1]]]) if prompt.box else np.zeros((0, 2))
    mx, my = _reproject(np.vstack([xy, corners]), prompt.crs, raster_crs)
    inverse = ~raster_transform
    cols, rows = inverse * (mx, my)
    cols, rows = np.asarray(cols, float), np.asarray(rows, float)
    n = len(xy)
    points = np.stack([cols[:n], rows[:n]], axis=1) if n else np.zeros((0, 2))
    for (x, y), (c, r) in zip(prompt.points, points):
        if not (0 <= c < width and 0 <= r < height):
            raise PromptError(f"The point ({x:g}, {y:g}) in {prompt.crs} lies outside the raster.")
    box = None
    if prompt.box is not None:
        bc, br = cols[n:], rows[n:]
        c0, c1 = max(bc.min(), 0.0), min(bc.max(), float(width))
        r0, r1 = max(br.min(), 0.0), min(br.max(), float(height))
        if not (c1 > c0 and r1 > r0):
            raise PromptError(f"The box {tuple(round(v, 6) for v in prompt.box)} in {prompt.crs} lies outside the raster.")
        box = (c0, r0, c1, r1)
    return PixelPrompt(points=points, labels=np.asarray(prompt.labels, np.int32), box=box)


def _reproject(xy: np.ndarray, src_crs, dst_crs) -> Tuple[np.ndarray, np.ndarray]:
    from pyproj import Transformer
    from pyproj.exceptions import CRSError

    try:
        src, dst = _crs(src_crs), _crs(_wkt(dst_crs))
    except CRSError as exc:
        raise CrsError(f"Unknown CRS {src_crs!r}: {exc}.") from exc
    if src == dst or len(xy) == 0:
        return xy[:, 0], xy[:, 1]
    x, y = Transformer.from_crs(src, dst, always_xy=True).transform(xy[:, 0], xy[:, 1])
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise PromptError(f"Some prompt coordinates cannot be projected from {src_crs} to the raster CRS.")
    return np.asarray(x), np.asarray(y)


def _crs(crs):
    """pyproj's CRS for `crs`; parsed once per text (each click names the same two)."""
    from pyproj import CRS

    return _parsed_crs(crs) if isinstance(crs, str) else CRS.from_user_input(crs)


@functools.lru_cache(maxsize=32)
def _parsed_crs(text: str):
    from pyproj import CRS

    return CRS.from_user_input(text)


def _wkt(crs) -> object:
    return crs.to_wkt() if hasattr(crs, "to_wkt") else crs


def parse_point(text: str) -> Tuple[Tuple[float, float], int]:
    """'X,Y' or 'X,Y,+' -> ((x, y), 1); 'X,Y,-' -> ((x, y), 0)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) == 2:
            return (float(parts[0]), float(parts[1])), 1
        if len(parts) == 3 and parts[2] in ("+", "-", "1", "0"):
            return (float(parts[0]), float(parts[1])), int(parts[2] in ("+", "1"))
    except ValueError:
        pass
    raise PromptError(f"Cannot read the point {text!r}; write X,Y or X,Y,+ or X,Y,- .")


def parse_box(text: str) -> Tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise PromptError(f"Cannot read the box {text!r}; write XMIN,YMIN,XMAX,YMAX.")
    return values


def parse_tags(items: Sequence[str]) -> dict:
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PromptError(f"Cannot read the tag {item!r}; write KEY=VALUE, e.g. season=summer.")
        tags[key.strip()] = value.strip()
    return tags
