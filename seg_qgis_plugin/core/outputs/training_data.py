"""Labels plus a raster to training data a model can learn from: chips, masks and annotations in
COCO, Pascal VOC or YOLO, spatial train/val/test splits, exact augmentations and a dataset report.

The output folder is made whole in a temporary folder beside it and moved into place at the end,
so a cancelled or failed run leaves nothing. Its layout depends on the format (coco.py, voc.py,
yolo.py); every format also gets

    report.json, report.html   chips per split, objects and labelled pixels per class per split, the
                               imbalance ratio, chips skipped and why, warnings (dataset_report.py)
    splits.gpkg                with a split: the blocks (or AOI areas) of each split on the map (splits.py)

Chips follow a TileGrid (tile, overlap, scale; see tiling.py). A chip is kept when it holds data and
at least `min_labeled_fraction` of its pixels are labelled (0 keeps background-only chips as
negatives). Class ids are the class codes of `ontology.class_codes` (the ontology's when given), in
masks, COCO category ids, VOC class PNGs and YOLO ids (code - 1), so every format and every export
agree. Memory: the labels' geometries, one chip and the annotations (COCO keeps them until the end).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .atomic import atomic_folder
from . import CHIP_FORMATS
from ..errors import SegError, SegWarning, SettingError
from ..progress import Progress, check_canceled
from ..geo.raster import RasterSource
from ..engine.labels import Label
from ..engine.ontology import Ontology, check_code_fits, class_codes
from ..batch.tile_index import tile_footprint, valid_fraction
from ..geo.tiling import TileGrid
from ..geo.vectorize import reproject_geometry
from .augment import augmented, parse_augment
from .dataset_report import DatasetReport
from .splits import SPLITS, areas_by_chip, check_split_method, parse_fractions, plan_splits, split_name, write_split_layer
from .training_samples import ChipSample, burn_instances, chip_objects, class_mask, read_image

DATASET_FORMATS = ("coco", "voc", "yolo")
_DEFAULT_IMAGE_FORMAT = {"coco": "tif", "voc": "jpg", "yolo": "png"}


@dataclass(frozen=True)
class TrainingDataSummary:
    """coco_path: annotations.json (COCO), the ImageSets/Segmentation folder (VOC) or data.yaml (YOLO).
    chips: original chips written; splits: chips per split; augmented: augmented copies."""
    folder: str
    coco_path: str
    chips: int
    annotations: int
    categories: Dict[str, int]
    dataset_format: str = "coco"
    splits: Dict[str, int] = field(default_factory=dict)
    augmented: int = 0
    skipped: Dict[str, int] = field(default_factory=dict)
    report_path: str = ""
    warnings: Tuple[str, ...] = ()


def categories_of(labels: Sequence[Label], class_field: str, ontology: Optional[Ontology] = None,
                  add_missing: bool = False) -> Dict[str, int]:
    """Class names -> category ids, which are the class codes (`ontology.class_codes`: the
    ontology's, else integer names keep their integer and other names are numbered in sorted order).
    Labels without a class are left out; every code must fit the uint8 masks."""
    categories = class_codes((lab.attributes.get(class_field) for lab in labels), ontology, add_missing,
                             where="this training set")
    if labels and not categories:
        raise SegError(f"No label has a value in the field {class_field!r}; choose the field that holds the class.")
    check_code_fits(max(categories.values(), default=1), "uint8")
    return categories


@dataclass(frozen=True)
class TrainingOptions:
    """How chips are cut and written. tile, overlap (pixels) and scale (decimation) make the grid;
    class_field holds the class; chips with less than min_labeled_fraction (0..1) labelled are
    skipped, and so are all-nodata chips when skip_nodata; dataset_format coco | voc | yolo;
    image_format tif | png (default tif for COCO, png for YOLO; VOC is always JPEG); augment
    'flips,rot90' (training chips only); the ontology's codes are the class ids (add_missing: classes
    it lacks get new codes instead of an error)."""

    tile: int = 512
    overlap: int = 0
    scale: int = 1
    class_field: str = "class"
    min_labeled_fraction: float = 0.0
    image_format: Optional[str] = None
    skip_nodata: bool = True
    dataset_format: str = "coco"
    augment: object = ()
    ontology: Optional[Ontology] = None
    add_missing: bool = False


@dataclass(frozen=True)
class SplitOptions:
    """split: None (one set, 'all') or TRAIN,VAL,TEST shares ('0.7,0.15,0.15' or a sequence);
    split_by: block | random | the field of `aoi` (Labels, polygons in any CRS) naming each area's
    split; seed fixes the split; block_size: chips per block side (auto when None)."""

    split: object = None
    split_by: str = "block"
    aoi: Optional[Sequence[Label]] = None
    seed: int = 0
    block_size: Optional[int] = None


def export_training_data(raster: str, labels: Sequence[Label], out_dir: str, options: Optional[TrainingOptions] = None,
                         splits: Optional[SplitOptions] = None, overwrite: bool = False,
                         progress: Optional[Progress] = None) -> TrainingDataSummary:
    """Write chips and annotations for `labels` (any CRS; reprojected to the raster's) over `raster`
    into the folder `out_dir` (made whole or not at all; `overwrite` replaces it), as `options` and
    `splits` say."""
    options, splits = options or TrainingOptions(), splits or SplitOptions()
    tile, overlap, scale, class_field = options.tile, options.overlap, options.scale, options.class_field
    min_labeled_fraction, image_format, dataset_format = options.min_labeled_fraction, options.image_format, options.dataset_format
    ontology, split, split_by, aoi, seed = options.ontology, splits.split, splits.split_by, splits.aoi, splits.seed
    block_size = splits.block_size
    dataset_format = (dataset_format or "coco").lower()
    if dataset_format not in DATASET_FORMATS:
        raise SettingError(f"The dataset format must be one of {', '.join(DATASET_FORMATS)}, not {dataset_format!r}.")
    if dataset_format == "voc" and image_format not in (None, "jpg"):
        raise SettingError("Pascal VOC images are JPEG (JPEGImages); leave the image format out for --format voc.")
    image_format = image_format or _DEFAULT_IMAGE_FORMAT[dataset_format]
    if dataset_format != "voc" and image_format not in CHIP_FORMATS:
        raise SettingError(f"Chip format must be one of {', '.join(CHIP_FORMATS)}, not {image_format!r}.")
    if not 0 <= min_labeled_fraction <= 1:
        raise SettingError(f"The minimum labelled fraction must lie between 0 and 1, not {min_labeled_fraction}.")
    fractions = parse_fractions(split) if split not in (None, "") else None
    method = check_split_method(split_by or "block", aoi is not None) if fractions or aoi is not None else None
    if method == "aoi" and fractions is None:
        fractions = (1.0, 0.0, 0.0)
    if block_size is not None and block_size < 1:
        raise SettingError(f"The block size must be at least 1 chip, not {block_size}.")
    augmentations = parse_augment(options.augment)
    out_dir = os.path.abspath(out_dir)
    atomic_folder(out_dir, overwrite)  # checks the target before any work
    categories = categories_of(labels, class_field, ontology, options.add_missing)
    with RasterSource(raster) as source:
        crs = source.crs.to_wkt()
        shapes = _shapes(labels, class_field, categories, crs)
        from shapely import STRtree

        tree = STRtree([g for g, _ in shapes])
        aoi_areas = _aoi_areas(aoi, split_by, crs) if method == "aoi" else None
        grid = TileGrid(source.width, source.height, tile, overlap, scale)
        report = DatasetReport(categories)
        candidates = _candidates(source, grid, shapes, tree, min_labeled_fraction, options.skip_nodata, report, progress)
        rects = {key: (t.col, t.row, t.width, t.height) for key, (t, _) in candidates.items()}
        footprints = {key: fp for key, (_, fp) in candidates.items()}
        if method is None:
            assigned, names, plan = {key: "all" for key in candidates}, ["all"], None
        else:
            areas, blocks = areas_by_chip(footprints, *aoi_areas) if method == "aoi" else (None, None)
            plan = plan_splits(rects, fractions, method, seed, block_size, areas, blocks)
            for reason in plan.dropped.values():
                report.skip(reason)
            report.warnings.extend(plan.warnings)
            assigned = plan.split
            present = set(aoi_areas[1]) if method == "aoi" else {s for s, f in zip(SPLITS, fractions) if f > 0}
            names = [s for s in SPLITS if s in present]
        radiometry = None
        if image_format in ("png", "jpg"):
            from ..geo.radiometry import compute_radiometry

            radiometry = compute_radiometry(source)
        with atomic_folder(out_dir, overwrite) as tmp:
            writer = _writer(dataset_format, tmp, categories, ontology, image_format, raster, source)
            if plan is not None:
                write_split_layer(os.path.join(tmp, "splits.gpkg"), plan, footprints, crs)
            annotations, per_split, copies = 0, {}, 0
            keys = sorted(assigned)
            for n, key in enumerate(keys):
                check_canceled(progress)
                t, footprint = candidates[key]
                sample = _sample(source, shapes, tree, key, t, footprint, assigned[key], radiometry)
                for chip in [sample] + augmented(sample, augmentations):
                    count = writer.add(chip)
                    report.add(chip)
                    if not chip.augmentation:
                        annotations += count
                    copies += bool(chip.augmentation)
                per_split[sample.split] = per_split.get(sample.split, 0) + 1
                if progress is not None:
                    progress.set_progress(30.0 + 70.0 * (n + 1) / len(keys))
            main_path = writer.finish(names)
            settings = {"raster": os.path.basename(raster), "format": dataset_format, "image_format": image_format,
                        "tile": tile, "overlap": overlap, "scale": scale, "min_labeled_fraction": min_labeled_fraction,
                        "split": list(fractions) if fractions else None, "split_by": split_by if method else None,
                        "seed": seed, "block_size": block_size, "augment": list(augmentations), "splits": names}
            result = report.finish(tmp, settings)
    for warning in result["warnings"]:
        warnings.warn(warning, SegWarning, stacklevel=2)
    rel = os.path.relpath(main_path, tmp)
    per_split = {name: per_split[name] for name in (*SPLITS, "all") if name in per_split}
    return TrainingDataSummary(out_dir, os.path.join(out_dir, rel), sum(per_split.values()), annotations, categories,
                               dataset_format, per_split, copies, result["skipped"], os.path.join(out_dir, "report.json"),
                               tuple(result["warnings"]))


def _shapes(labels: Sequence[Label], class_field: str, categories: Dict[str, int], crs: str) -> List[Tuple[object, int]]:
    """(geometry in the raster CRS, class code) of every label with a class."""
    shapes = []
    for lab in labels:
        name = lab.attributes.get(class_field)
        geometry = reproject_geometry(lab.geometry, lab.crs, crs)
        if name not in (None, "") and geometry is not None and not geometry.is_empty:
            shapes.append((geometry.buffer(0) if not geometry.is_valid else geometry, categories[str(name)]))
    return shapes


def _aoi_areas(aoi: Sequence[Label], field_name: str, crs: str) -> Tuple[list, list]:
    """(geometries in the raster CRS, split names) of the AOI features; one sentence for a bad field or value."""
    if not aoi:
        raise SegError("The AOI layer has no feature; draw the train, val and test areas first.")
    if not any(field_name in lab.attributes for lab in aoi):
        raise SegError(f"The AOI layer has no field {field_name!r}; --split-by names the field that says train, val or test.")
    geometries, names = [], []
    for lab in aoi:
        value = lab.attributes.get(field_name)
        name = split_name(value)
        if name is None and value not in (None, ""):
            raise SegError(f"The AOI field {field_name!r} holds {value!r}; use train, val or test.")
        geometry = reproject_geometry(lab.geometry, lab.crs, crs)
        if name is not None and geometry is not None and not geometry.is_empty:
            geometries.append(geometry if geometry.is_valid else geometry.buffer(0))
            names.append(name)
    return geometries, names


def _candidates(source, grid: TileGrid, shapes, tree, min_labeled_fraction: float, skip_nodata: bool,
                report: DatasetReport, progress) -> Dict[Tuple[int, int], tuple]:
    """(row, col) -> (tile, footprint) of the chips worth writing; the others are counted in the report.
    Progress 0..30 %; `tree` is an STRtree of the shapes' geometries."""
    rows, cols = grid.shape
    kept = {}
    for number, t in enumerate(grid):
        check_canceled(progress)
        footprint = tile_footprint(t, source.transform)
        if min_labeled_fraction > 0:
            hits = [shapes[int(k)] for k in sorted(tree.query(footprint, predicate="intersects"))]
            labeled = float(np.count_nonzero(burn_instances(hits, t, t.transform(source.transform)))) / (t.width * t.height)
            if labeled < min_labeled_fraction:
                report.skip(f"labelled fraction below {min_labeled_fraction}")
                continue
        if skip_nodata and valid_fraction(source, t) == 0:
            report.skip("all nodata")
            continue
        kept[divmod(number, cols)] = (t, footprint)
        if progress is not None:
            progress.set_progress(30.0 * (number + 1) / len(grid))
    return kept


def _sample(source, shapes, tree, key, t, footprint, split: str, radiometry) -> ChipSample:
    """The chip at grid (row, col) `key`: image, masks and the objects inside it."""
    transform = t.transform(source.transform)
    hits = [shapes[int(k)] for k in sorted(tree.query(footprint, predicate="intersects"))]
    instances = burn_instances(hits, t, transform)
    objects = tuple(chip_objects(hits, footprint, transform))
    mask = class_mask(instances, objects)
    return ChipSample(stem=f"tile_{key[0]:04d}_{key[1]:04d}", image=read_image(source, t, radiometry), instances=instances,
                      mask=mask, objects=objects, transform=transform, window=t.label(), split=split,
                      labeled_fraction=float(np.count_nonzero(mask)) / mask.size)


def _writer(dataset_format: str, folder: str, categories, ontology, image_format: str, raster: str, source):
    if dataset_format == "voc":
        from .voc import VocWriter

        return VocWriter(folder, categories)
    nodata = source.dataset.nodata
    if dataset_format == "yolo":
        from .yolo import YoloWriter

        return YoloWriter(folder, categories, image_format, source.crs, nodata, ontology)
    from .coco import CocoWriter

    parents = {c.name: c.parent or "" for c in ontology} if ontology is not None else {}
    return CocoWriter(folder, categories, parents, image_format, f"Seg training chips of {os.path.basename(raster)}",
                      source.crs, nodata)
