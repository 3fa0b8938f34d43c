"""Pre-labeling an orthomosaic: many objects at once, from a prompt layer or automatically.

Prompt-layer mode (`prelabel_from_prompts`): each prompt feature is one object. Points (and
multipoints: several clicks on one object) become point prompts; polygons become box prompts (their
bounding box: box-to-instance), which is how existing rough outlines or detector boxes turn into
masks. The feature's class and other fields travel onto the result (class column, tags). Prompts
are answered in tile order so each tile is encoded once and stays in memory while its prompts are
decoded; memory follows the tile (the segmenter keeps a few embeddings), not the raster.

Automatic mode (`prelabel_automatic`): SAM's point grid on every tile with data (see point_grid.py),
using the embedding cache when it holds the tile; per-tile masks become polygons, and pieces of
one object seen from several tiles are merged (see mask_merge.py). Only geometries outlive a tile.
The classic backend cannot do this (it needs one prompt per object) and says so.

All results are Labels in the raster CRS with the full attribute schema and status "prelabel".
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from affine import Affine

from ..errors import PromptError, SegError, SegWarning
from ..engine.labeling import provenance, to_label
from .mask_merge import Piece, merge_pieces
from .point_grid import decode_points, filter_masks, grid_points
from ..progress import Progress, check_canceled
from ..geo.prompts import Prompt
from ..engine.labels import Label, attributes
from ..engine.segmenter import Segmenter
from ..models.backend import AUTOMATIC
from ..geo.tiling import Tile
from ..geo.vectorize import Cleanup, clean_polygons, mask_to_geometry


@dataclass(frozen=True)
class PromptFeature:
    """One prompt feature: a shapely Point, MultiPoint, Polygon or MultiPolygon in `crs`, its class
    (empty: use the default class) and its other fields as tags (strings)."""

    geometry: object
    crs: str
    class_name: str = ""
    tags: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PrelabelOptions:
    """How objects are found and cleaned up: the class for prompts without one (and for automatic
    objects) and tags for every object; automatic mode's SAM thresholds (points_per_side squared
    grid points per tile, min_score on the predicted IoU, min_stability on the stability score,
    nms_iou within a tile, merge_iou across tiles in their shared window); clean-up in map units
    (simplify tolerance, min_area and fill_holes in units squared)."""

    class_name: str = "object"
    tags: Dict[str, str] = field(default_factory=dict)
    points_per_side: int = 16
    min_score: float = 0.7
    min_stability: float = 0.85
    nms_iou: float = 0.7
    merge_iou: float = 0.5
    simplify: float = 0.0
    min_area: float = 0.0
    fill_holes: float = 0.0

    def grid(self) -> Dict[str, float]:
        """tile_pieces' keyword arguments: what finding objects on one tile depends on."""
        return dict(points_per_side=self.points_per_side, min_score=self.min_score, min_stability=self.min_stability,
                    nms_iou=self.nms_iou, min_area=self.min_area)

    def cleanup(self) -> Dict[str, object]:
        """prompt_outcome's keyword arguments: what one prompt's object depends on."""
        return dict(default_class=self.class_name, simplify=self.simplify, min_area=self.min_area,
                    fill_holes=self.fill_holes)


@dataclass
class PrelabelResult:
    """labels: one per object found, unless each was handed to `on_label` as soon as it was found
    (streaming: then `labels` stays empty and memory does not grow with the raster); count: objects
    found; skipped: (feature number, reason) for prompts that gave nothing; grid: the transform of
    the working-resolution pixel grid the masks were made on (what shared borders are cut on)."""

    labels: List[Label] = field(default_factory=list)
    skipped: List[Tuple[int, str]] = field(default_factory=list)
    count: int = 0
    on_label: Optional[Callable[[Label], None]] = field(default=None, repr=False)
    grid: Optional[Affine] = None

    def add(self, label: Label) -> None:
        self.count += 1
        if self.on_label is None:
            self.labels.append(label)
        else:
            self.on_label(label)


def feature_to_prompt(feature: PromptFeature) -> Prompt:
    """Points -> positive point prompt; polygons -> box prompt on their bounding box."""
    geometry = feature.geometry
    if geometry is None or geometry.is_empty:
        raise PromptError("The prompt feature has no geometry.")
    kind = geometry.geom_type
    if kind in ("Point", "MultiPoint"):
        points = [(p.x, p.y) for p in (geometry.geoms if kind == "MultiPoint" else [geometry])]
        return Prompt(crs=feature.crs, points=tuple(points), labels=(1,) * len(points))
    if kind in ("Polygon", "MultiPolygon"):
        return Prompt(crs=feature.crs, box=tuple(geometry.bounds))
    raise PromptError(f"A {kind} cannot be a prompt; use points or polygons (boxes).")


def prelabel_from_prompts(segmenter: Segmenter, features: Sequence[PromptFeature], options: PrelabelOptions = PrelabelOptions(),
                          progress: Optional[Progress] = None, on_label: Optional[Callable[[Label], None]] = None) -> PrelabelResult:
    """Segment one object per prompt feature (class: the feature's, else options.class_name).
    Features outside the raster or that give an empty mask are skipped and listed in `skipped`
    (1-based feature numbers), never fatal."""
    result = PrelabelResult(on_label=on_label, grid=segmenter.level_transform)
    prompts, result.skipped = order_prompts(segmenter, features)
    for done, item in enumerate(prompts, start=1):
        check_canceled(progress)
        add_outcome(result, prompt_outcome(segmenter, item, **options.cleanup()))
        if progress is not None:
            progress.set_progress(100.0 * done / len(prompts))
    return result


def order_prompts(segmenter: Segmenter, features: Sequence[PromptFeature]):
    """([(number, feature, prompt)] in the order they are answered (by start tile, so each tile is
    encoded once, then feature number), [(number, reason)] for features that are no prompt here)."""
    keyed, skipped = [], []
    for number, feature in enumerate(features, start=1):
        try:
            prompt = feature_to_prompt(feature)
            pixels = segmenter.to_pixels(prompt)
        except PromptError as exc:
            skipped.append((number, str(exc)))
            continue
        start = segmenter.start_tile(pixels)
        keyed.append(((start.scale, start.row, start.col), number, feature, prompt))
    keyed.sort(key=lambda item: item[:2])
    return [(number, feature, prompt) for _, number, feature, prompt in keyed], skipped


def prompt_outcome(segmenter: Segmenter, item, default_class: str = "object", simplify: float = 0.0,
                   min_area: float = 0.0, fill_holes: float = 0.0) -> Tuple[int, Optional[Label], str]:
    """(number, Label, "") for one (number, feature, prompt) of order_prompts, or (number, None,
    reason) when it gives nothing. Depends only on the prompt, so prompts may be answered anywhere
    (core.scale runs them on a cluster)."""
    number, feature, prompt = item
    try:
        segmentation = segmenter.segment(prompt)
    except PromptError as exc:
        return number, None, str(exc)
    label = to_label(segmentation, segmenter, feature.class_name or default_class, feature.tags, "prelabel",
                     Cleanup(simplify, min_area, fill_holes))
    return (number, label, "") if label is not None else (number, None, "the mask was empty after clean-up")


def add_outcome(result: PrelabelResult, outcome: Tuple[int, Optional[Label], str]) -> None:
    number, label, reason = outcome
    if label is None:
        result.skipped.append((number, reason))
    else:
        result.add(label)


def prelabel_automatic(segmenter: Segmenter, tiles: Optional[Sequence[Tile]] = None,
                       options: PrelabelOptions = PrelabelOptions(), progress: Optional[Progress] = None,
                       on_label: Optional[Callable[[Label], None]] = None) -> PrelabelResult:
    """Find every object SAM sees on `tiles` (default: the segmenter's grid; all-nodata tiles are
    skipped) and merge them across tiles; thresholds follow SAM's automatic mask generator (see
    PrelabelOptions)."""
    check_automatic(segmenter.backend)
    tiles = list(segmenter.grid if tiles is None else tiles)
    pieces: List[Piece] = []
    for done, tile in enumerate(tiles, start=1):
        check_canceled(progress)
        pieces.extend(tile_pieces(segmenter, tile, **options.grid()))
        if progress is not None:
            progress.set_progress(95.0 * done / len(tiles))
    result = labels_from_pieces(segmenter, pieces, options, on_label)
    if progress is not None:
        progress.set_progress(100.0)
    if not result.count and tiles:
        warnings.warn(SegWarning("Automatic pre-labeling found no object; lower the score or stability thresholds."))
    return result


def check_automatic(backend) -> None:
    """Raise SegError when `backend` cannot find objects without prompts."""
    if AUTOMATIC not in backend.capabilities:
        raise SegError(f"The {backend.model_id} backend cannot pre-label automatically (it needs one prompt per object); "
                       "give a prompt layer, or a SAM checkpoint for automatic mode.")


def tile_pieces(segmenter: Segmenter, tile: Tile, points_per_side: int = 16, min_score: float = 0.7,
                min_stability: float = 0.85, nms_iou: float = 0.7, min_area: float = 0.0) -> List[Piece]:
    """The objects SAM's point grid finds on one tile, as Pieces in the order the serial run makes
    them (empty for an all-nodata tile). Depends only on the tile, so tiles may be done anywhere
    (core.scale runs them on a cluster) and merged afterwards with `labels_from_pieces`."""
    source = segmenter.source
    valid = _valid(source, tile)
    pieces: List[Piece] = []
    if not valid.any():
        return pieces
    points = grid_points(tile.height, tile.width, points_per_side, valid)
    if not len(points):
        return pieces
    masks = decode_points(segmenter.backend, segmenter.embedding(tile), points)
    pixel_area = abs(source.transform.a * source.transform.e)
    min_pixels = max(1, int(min_area / (pixel_area * tile.scale ** 2)))
    kept = filter_masks(masks, min_score, min_stability, nms_iou, valid, min_pixels)
    transform = tile.transform(source.transform)
    for m in kept:
        geometry = mask_to_geometry(m.mask, transform)
        if geometry is not None:
            near_others = _reaches_other_tiles(m.mask, tile, segmenter.grid)
            pieces.append(Piece.from_tile_mask(m.mask, tile, geometry, float(m.score), float(m.stability), near_others))
    return pieces


def labels_from_pieces(segmenter: Segmenter, pieces: Sequence[Piece], options: PrelabelOptions = PrelabelOptions(),
                       on_label: Optional[Callable[[Label], None]] = None) -> PrelabelResult:
    """Merge the pieces of all tiles (in tile order) into objects and make them Labels, in a fixed
    order (north to south, then west to east)."""
    objects = merge_pieces(pieces, segmenter.level_transform, options.merge_iou)
    shared = provenance(segmenter)
    crs = segmenter.source.crs.to_wkt()
    result = PrelabelResult(on_label=on_label, grid=segmenter.level_transform)
    for obj in sorted(objects, key=lambda o: (-o.geometry.bounds[3], o.geometry.bounds[0])):
        geometry = clean_polygons(obj.geometry, options.simplify, options.min_area, options.fill_holes)
        if geometry is None:
            continue
        attrs = attributes(options.class_name, options.tags, score=obj.score, stability=obj.stability, prompt_type="auto-grid",
                           prompt_count=len(obj.pieces), window=obj.extent.label(), status="prelabel", **shared)
        result.add(Label(geometry, crs, attrs))
    return result


def _reaches_other_tiles(mask: np.ndarray, tile: Tile, grid) -> bool:
    """Whether the mask's bounding box reaches into any other tile of the grid (then it may need merging)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    c0, r0 = tile.col + cols[0], tile.row + rows[0]
    c1, r1 = tile.col + cols[-1] + 1, tile.row + rows[-1] + 1
    return any(t != tile for t in grid.tiles_intersecting(c0, r0, c1, r1))


def _valid(source, tile: Tile) -> np.ndarray:
    from rasterio.windows import Window

    c, r, w, h = tile.raster_window
    return source.dataset.dataset_mask(window=Window(c, r, w, h), out_shape=(tile.height, tile.width)) > 0
