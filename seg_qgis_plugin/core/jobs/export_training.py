"""Labels plus a raster to training data: image and mask chips with COCO, Pascal VOC or YOLO
annotations, spatial train/val/test splits, exact augmentations and a dataset report, in a folder
made whole or not at all (core.outputs.training_data)."""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import List, Optional

from ..errors import SettingError
from .base import ClassFields, JobResult, check_request_outputs, validate

RETURNS = "path"
FORMATS = ("coco", "voc", "yolo")
IMAGE_FORMATS = (None, "tif", "png", "jpg")


@dataclass(frozen=True)
class Request(ClassFields):
    """raster: any GDAL raster with a CRS. labels: polygons (a vector file, a GeoDataFrame or
    Labels) in any CRS, their class in `class_field`. out: the dataset folder (new or empty;
    replaced only with overwrite). tile, overlap: the chip grid in pixels, at the working resolution
    `gsd` (map units per pixel; None: full resolution); chips with less than min_labeled (0-1) of
    their pixels labelled are skipped, and all-nodata chips when skip_nodata. format: coco, voc or
    yolo; image_format: tif or png (default tif for COCO, png for YOLO; VOC is JPEG). split:
    TRAIN,VAL,TEST shares ("0.7,0.15,0.15"; None: one set); split_by: block, random, or the field of
    the `aoi` polygons (a vector file, GeoDataFrame or Labels) saying train, val or test; seed fixes
    the split; block_size: chips per block side (None: auto); augment: "flips,rot90" copies of
    training chips. classes: an ontology whose codes are the class ids (add_missing: codes for
    classes it lacks)."""

    raster: str
    labels: object
    out: str
    _: KW_ONLY
    class_field: str = "class"
    tile: int = 512
    overlap: int = 0
    gsd: Optional[float] = None
    min_labeled: float = 0.0
    skip_nodata: bool = True
    format: str = "coco"
    image_format: Optional[str] = None
    split: object = None
    split_by: str = "block"
    aoi: object = None
    seed: int = 0
    block_size: Optional[int] = None
    augment: str = ""
    overwrite: bool = False

    OUTPUTS = ("out",)
    INPUTS = ("raster", "labels", "aoi", "classes")
    FOLDERS = ("out",)

    def __post_init__(self):
        validate(self, {"format": FORMATS, "image_format": IMAGE_FORMATS})
        if self.aoi is not None and self.split_by in ("block", "random"):
            raise SettingError("Split areas (aoi) need split_by FIELD, the field of the areas that says train, val or test.")


def run(request: Request, progress=None, sink=None) -> JobResult:
    """Write the dataset into `request.out`; JobResult.outputs: the folder first, then its index
    (annotations.json, ImageSets or data.yaml) and report; details["summary"]: the
    TrainingDataSummary."""
    from ..geo.raster import RasterSource
    from ..geo.tiling import scale_for_gsd
    from ..outputs.training_data import SplitOptions, TrainingOptions, export_training_data
    from .inputs import read_layer

    check_request_outputs(request)
    scale = 1
    if request.gsd:
        with RasterSource(request.raster) as source:
            scale = scale_for_gsd(source.info().resolution[0], request.gsd)
    labels = read_layer(request.labels)
    aoi = read_layer(request.aoi) if request.aoi is not None else None
    options = TrainingOptions(request.tile, request.overlap, scale, request.class_field, request.min_labeled,
                              request.image_format, request.skip_nodata, request.format, request.augment,
                              request.ontology(), request.add_missing)
    splits = SplitOptions(request.split or None, request.split_by, aoi, request.seed, request.block_size)
    summary = export_training_data(request.raster, labels, request.out, options, splits, request.overwrite, progress)
    outputs = {"out": summary.folder, "dataset": summary.coco_path, "report": summary.report_path}
    return JobResult(count=summary.chips, outputs=outputs, details={"summary": summary})


def describe(request: Request, result: JobResult) -> List[str]:
    """The lines every door shows."""
    summary = result.details["summary"]
    splits = ", ".join(f"{name} {n}" for name, n in summary.splits.items())
    lines = [f"{summary.chips} chips ({splits}), {summary.augmented} augmented, {summary.annotations} annotations, "
             f"classes {summary.categories} -> {summary.coco_path}"]
    lines += [f"{n} chips skipped: {reason}" for reason, n in summary.skipped.items()]
    lines.append(f"report: {summary.report_path}")
    return lines
