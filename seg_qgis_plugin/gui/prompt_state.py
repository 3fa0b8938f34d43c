"""The prompts of the object being labeled, step by step (for undo), in the canvas CRS.

Each click or drag makes a new `PromptState` from the last one; the controller keeps the steps, so
undoing a prompt is dropping the last step and showing the one before (its mask is kept, no new
decode). Qt-free.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Tuple


@dataclass(frozen=True)
class PromptState:
    """points ((x, y), ...) and labels (1 object / 0 background) and at most one box
    (xmin, ymin, xmax, ymax), all in the canvas CRS. A new box replaces the old one."""

    points: Tuple[Tuple[float, float], ...] = ()
    labels: Tuple[int, ...] = ()
    box: Optional[Tuple[float, float, float, float]] = None

    def with_point(self, x: float, y: float, positive: bool) -> "PromptState":
        return replace(self, points=self.points + ((float(x), float(y)),), labels=self.labels + (int(bool(positive)),))

    def with_box(self, xmin: float, ymin: float, xmax: float, ymax: float) -> "PromptState":
        return replace(self, box=(min(xmin, xmax), min(ymin, ymax), max(xmin, xmax), max(ymin, ymax)))

    def to_prompt(self, crs: str):
        """The core Prompt; `crs` is the canvas CRS ("EPSG:n" or WKT). Raises PromptError when
        empty."""
        from ..core.geo.prompts import Prompt  # lazy: numpy, affine

        return Prompt(crs=crs, points=self.points, labels=self.labels, box=self.box)


@dataclass(eq=False)
class Step:
    """One prompt step and, once decoded, its result: the Segmentation and its polygon (shapely,
    raster CRS; None when the mask is empty)."""

    state: PromptState
    segmentation: object = None
    geometry: object = None
    decoded: bool = field(default=False)
