"""Exact augmentations of training chips: flips and quarter turns.

Each augmentation is a permutation of the chip's pixels, so image, masks and polygons transform
exactly (no resampling): arrays with numpy flips/rotations, polygons and the chip's georeferencing
with the matching affine map A (old chip pixel -> new chip pixel, continuous coordinates, x right,
y down, chip w x h):

    flipx   (x, y) -> (w - x, y)        flipy   (x, y) -> (x, h - y)
    rot90   (x, y) -> (y, w - x)        rot180  (x, y) -> (w - x, h - y)     rot270  (x, y) -> (h - y, x)

(rot90 turns the picture a quarter counter-clockwise, like numpy.rot90.) The new chip's transform
is `old transform * ~A`, so an augmented GeoTIFF still puts every pixel on its true place on the map
(a flipped or rotated geotransform). Only training chips are augmented, never val or test.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
from affine import Affine

from ..errors import SettingError
from .training_samples import ChipObject, ChipSample

GROUPS = {"flips": ("flipx", "flipy"), "rot90": ("rot90", "rot180", "rot270")}
AUGMENTATIONS = ("flipx", "flipy", "rot90", "rot180", "rot270")


def parse_augment(value) -> Tuple[str, ...]:
    """'flips,rot90' (or a sequence) -> the augmentation names, in a fixed order. Groups: flips =
    flipx, flipy; rot90 = rot90, rot180, rot270; single names are accepted too."""
    parts = value.split(",") if isinstance(value, str) else list(value or ())
    names = set()
    for part in (p.strip().lower() for p in parts if str(p).strip()):
        if part in GROUPS:
            names.update(GROUPS[part])
        elif part in AUGMENTATIONS:
            names.add(part)
        else:
            raise SettingError(f"Unknown augmentation {part!r}; use flips, rot90 or {', '.join(AUGMENTATIONS)}.")
    return tuple(a for a in AUGMENTATIONS if a in names)


def pixel_map(name: str, width: int, height: int) -> Affine:
    """The affine map A of augmentation `name` on a width x height chip (old pixel -> new pixel)."""
    w, h = float(width), float(height)
    return {"flipx": Affine(-1, 0, w, 0, 1, 0), "flipy": Affine(1, 0, 0, 0, -1, h),
            "rot90": Affine(0, 1, 0, -1, 0, w), "rot180": Affine(-1, 0, w, 0, -1, h),
            "rot270": Affine(0, -1, h, 1, 0, 0)}[name]


_ARRAYS: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "flipx": lambda a: a[..., :, ::-1], "flipy": lambda a: a[..., ::-1, :],
    "rot90": lambda a: np.rot90(a, 1, axes=(-2, -1)), "rot180": lambda a: np.rot90(a, 2, axes=(-2, -1)),
    "rot270": lambda a: np.rot90(a, 3, axes=(-2, -1)),
}


def transform_array(name: str, array: np.ndarray) -> np.ndarray:
    """(..., h, w) -> the augmented array (h and w swap for quarter turns), contiguous."""
    return np.ascontiguousarray(_ARRAYS[name](array))


def augment(sample: ChipSample, name: str) -> ChipSample:
    """The chip `sample` under augmentation `name`: arrays, polygons and georeferencing transformed."""
    from shapely.affinity import affine_transform

    a = pixel_map(name, sample.width, sample.height)
    params = [a.a, a.b, a.d, a.e, a.c, a.f]
    objects = tuple(ChipObject(o.code, affine_transform(o.shape, params) if not o.shape.is_empty else o.shape, o.truncated)
                    for o in sample.objects)
    return sample.with_(stem=f"{sample.stem}_{name}", image=transform_array(name, sample.image),
                        instances=transform_array(name, sample.instances), mask=transform_array(name, sample.mask),
                        objects=objects, transform=sample.transform * ~a, augmentation=name)


def augmented(sample: ChipSample, names: Sequence[str]) -> List[ChipSample]:
    """The augmented copies of a training chip (none for val, test)."""
    if sample.split not in ("train", "all"):
        return []
    return [augment(sample, name) for name in names]
