"""Train / validation / test splits of training chips that a model cannot cheat on.

Neighbouring chips of a map are nearly the same picture, so a random split of chips leaks: the test
score then measures memory, not skill. Three ways to split, all seeded (the same `seed` and inputs
give the same split every time):

- `block` (default): the chip grid is cut into square blocks of `block_size` x `block_size` chips
  (auto: about 16 blocks or more); the blocks are shuffled and each goes whole to the split that is
  furthest below its share of chips. Then the buffer: a chip that shares a pixel with a chip of
  another split is dropped (test chips are kept first, then validation, then training), so no
  pixel lies in two splits. With overlap 0 and no shifted last tile chips only touch, and nothing
  is dropped; with overlap o a one-chip band along block borders goes.
- `random`: each chip is drawn on its own. It leaks (the plan's warnings say so); use it only to compare.
- an AOI field: polygons (any CRS) whose field says train, val or test; a chip goes to the split
  whose areas cover it whole, chips across areas or outside all of them are dropped, then the
  buffer as for blocks.

Chips are addressed by their grid (row, column); rectangles are (col, row, width, height) in level
pixels of the tile grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import SegError, SettingError

SPLITS = ("train", "val", "test")
SPLIT_METHODS = ("block", "random")
_SYNONYMS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
             "test": "test", "testing": "test"}
BUFFER = "in the buffer between splits"
OUTSIDE_AOI = "not inside one split's area"

Key = Tuple[int, int]


@dataclass
class SplitPlan:
    """split: chip -> 'train' | 'val' | 'test'; block: chip -> block id (for the split layer);
    dropped: chip -> reason; warnings: sentences for the report."""
    split: Dict[Key, str] = field(default_factory=dict)
    block: Dict[Key, int] = field(default_factory=dict)
    dropped: Dict[Key, str] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)


def parse_fractions(value) -> Tuple[float, float, float]:
    """'0.7,0.15,0.15' (or a sequence; 2 values mean no test split; any positive scale, e.g. 70,15,15)
    -> the three shares summing to 1."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        numbers = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise SettingError(f"The split must be numbers TRAIN,VAL,TEST such as 0.7,0.15,0.15, not {value!r}.") from None
    if len(numbers) == 2:
        numbers.append(0.0)
    if len(numbers) != 3 or min(numbers) < 0 or not sum(numbers) > 0 or not all(math.isfinite(n) for n in numbers):
        raise SettingError(f"The split must be three shares TRAIN,VAL,TEST (0 or more, not all 0), not {value!r}.")
    total = sum(numbers)
    return tuple(n / total for n in numbers)


def split_name(value) -> Optional[str]:
    """'Train', 'validation', ... -> 'train' | 'val' | 'test'; None for anything else."""
    return _SYNONYMS.get(str(value).strip().lower()) if value is not None else None


def plan_splits(rects: Dict[Key, Tuple[int, int, int, int]], fractions: Sequence[float], by: str = "block",
                seed: int = 0, block_size: Optional[int] = None, areas: Optional[Dict[Key, str]] = None,
                area_blocks: Optional[Dict[Key, int]] = None) -> SplitPlan:
    """Assign the chips `rects` ((row, col) -> level-pixel rectangle) to splits.

    by: 'block', 'random' or 'aoi' (then `areas` gives each chip's split, or no entry when the chip is
    not covered by one split's areas, and `area_blocks` the AOI feature it lies in)."""
    plan = SplitPlan()
    keys = sorted(rects)
    rng = np.random.default_rng(seed)
    if by == "random":
        order = [keys[k] for k in rng.permutation(len(keys))]
        for key, name in zip(order, _deal(len(order), fractions)):
            plan.split[key] = name
        plan.block = {key: n for n, key in enumerate(keys)}
        plan.warnings.append("A random split leaks: neighbouring chips are nearly the same picture and land in different "
                             "splits, so the validation and test scores are too optimistic; use --split-by block.")
        return plan
    if by == "aoi":
        for key in keys:
            if key in (areas or {}):
                plan.split[key] = areas[key]
                plan.block[key] = (area_blocks or {}).get(key, -1)
            else:
                plan.dropped[key] = OUTSIDE_AOI
    elif by == "block":
        size = block_size or max(1, int(math.sqrt(len(keys) / 16)))
        if size < 1:
            raise SettingError(f"The block size must be at least 1 chip, not {size}.")
        blocks: Dict[Key, List[Key]] = {}
        for key in keys:
            blocks.setdefault((key[0] // size, key[1] // size), []).append(key)
        ids = {b: n for n, b in enumerate(sorted(blocks))}
        order = [sorted(blocks)[k] for k in rng.permutation(len(blocks))]
        targets = [f * len(keys) for f in fractions]
        counts = [0, 0, 0]
        for b in order:
            k = max(range(3), key=lambda s: (targets[s] - counts[s], -s) if fractions[s] > 0 else (-math.inf, -s))
            counts[k] += len(blocks[b])
            for key in blocks[b]:
                plan.split[key] = SPLITS[k]
                plan.block[key] = ids[b]
    else:
        raise SettingError(f"The split method must be block, random or an AOI field, not {by!r}.")
    _drop_buffer(plan, rects)
    for name, share in zip(SPLITS, fractions):
        if by != "aoi" and share > 0 and name not in plan.split.values():
            plan.warnings.append(f"The {name} split got no chip; use smaller blocks (--block-size) or more chips.")
    return plan


def _deal(n: int, fractions: Sequence[float]) -> List[str]:
    """n split names in order: round(n * cumulative share) boundaries."""
    bounds = np.rint(np.cumsum(fractions) * n).astype(int)
    return [SPLITS[int(np.searchsorted(bounds, k, side="right"))] for k in range(n)]


def _drop_buffer(plan: SplitPlan, rects: Dict[Key, Tuple[int, int, int, int]]) -> None:
    """Drop every chip that shares a pixel with a kept chip of another split (test first, then val)."""
    if not plan.split:
        return
    width = max(r[2] for r in rects.values())
    height = max(r[3] for r in rects.values())
    step_x = _min_step([r[0] for r in rects.values()]) or width
    step_y = _min_step([r[1] for r in rects.values()]) or height
    reach_i, reach_j = math.ceil(height / step_y), math.ceil(width / step_x)
    kept: Dict[Key, str] = {}
    for name in reversed(SPLITS):
        for key in sorted(k for k, s in plan.split.items() if s == name):
            i, j = key
            clash = any(kept.get((i + di, j + dj), name) != name and _share_pixels(rects[key], rects[(i + di, j + dj)])
                        for di in range(-reach_i, reach_i + 1) for dj in range(-reach_j, reach_j + 1))
            if clash:
                plan.dropped[key] = BUFFER
            else:
                kept[key] = name
    for key in plan.dropped:
        plan.split.pop(key, None)


def _min_step(offsets: List[int]) -> int:
    values = sorted(set(offsets))
    return min((b - a for a, b in zip(values, values[1:])), default=0)


def _share_pixels(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def areas_by_chip(footprints, aoi_geometries: Sequence, aoi_splits: Sequence[str]) -> Tuple[Dict[Key, str], Dict[Key, int]]:
    """For AOI splits: chip -> split whose areas cover the chip's footprint (shapely, raster CRS)
    whole, and chip -> index of the AOI feature holding the chip's centre. Chips covered by no
    single split are left out."""
    from shapely import prepared, unary_union

    unions = {}
    for name in SPLITS:
        parts = [g for g, s in zip(aoi_geometries, aoi_splits) if s == name]
        if parts:
            unions[name] = prepared.prep(unary_union(parts).buffer(0))
    splits, blocks = {}, {}
    for key, footprint in footprints.items():
        inside = [name for name, union in unions.items() if union.covers(footprint)]
        if len(inside) == 1:
            splits[key] = inside[0]
            centre = footprint.centroid
            blocks[key] = next((n for n, g in enumerate(aoi_geometries) if g.covers(centre)), -1)
    return splits, blocks


def write_split_layer(path: str, plan: SplitPlan, footprints, crs_wkt: str) -> str:
    """A GeoPackage layer `splits` of the blocks on the map: one multipolygon per (split, block)
    (the union of its chips' footprints) with fields split, block and chips, plus the dropped buffer
    chips as split 'buffer'."""
    import pyogrio.raw
    from shapely import unary_union

    from ..geo.wkb import to_wkb

    groups: Dict[Tuple[str, int], List] = {}
    for key, name in plan.split.items():
        groups.setdefault((name, plan.block.get(key, -1)), []).append(footprints[key])
    buffer = [footprints[k] for k, why in plan.dropped.items() if why == BUFFER]
    if buffer:
        groups[("buffer", -1)] = buffer
    rows = sorted(groups, key=lambda g: (SPLITS.index(g[0]) if g[0] in SPLITS else 9, g[1]))
    wkb = np.array([to_wkb(unary_union(groups[g])) for g in rows], dtype=object)
    fields = [np.array([g[0] for g in rows], dtype=object), np.array([g[1] for g in rows], dtype=np.int64),
              np.array([len(groups[g]) for g in rows], dtype=np.int64)]
    pyogrio.raw.write(path, wkb, fields, ["split", "block", "chips"], layer="splits", driver="GPKG",
                      geometry_type="MultiPolygon", crs=crs_wkt, promote_to_multi=True)
    return path


def check_split_method(by: str, has_aoi: bool) -> str:
    """'block' | 'random' | 'aoi' for a --split-by value (anything else names a field of the AOI)."""
    if by in SPLIT_METHODS:
        return by
    if not has_aoi:
        raise SegError(f"--split-by {by} names a field of an AOI layer; give the layer with --aoi "
                       f"(or use --split-by block or random).")
    return "aoi"
