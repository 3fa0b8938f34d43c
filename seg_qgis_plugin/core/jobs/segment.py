"""Segment one object from points and/or a box, and write it: the non-interactive form of a click
in the dock (`seg segment`). The dock and the API's Session keep a segmenter open between clicks;
this job opens one for a single object.
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Dict, Optional, Sequence, Tuple

from ..errors import SegError, SettingError
from .base import ClassFields, JobResult, ModelFields, RasterFields, check_request_outputs, validate

RETURNS = "labels"
MODES = ("create", "append", "overwrite")


@dataclass(frozen=True)
class Request(ModelFields, RasterFields, ClassFields):
    """raster: any GDAL raster with a CRS. points: ((x, y), ...) or ((x, y, 1 on / 0 off), ...) in
    `prompt_crs` (default: the raster's); box: (xmin, ymin, xmax, ymax) in the same CRS; at least
    one of them. class_name: the object's class; tags: context tags. out: the layer written (.gpkg,
    .geojson, .fgb, .shp, PostGIS), in `out_crs` when new (default: the raster's); mode: create,
    append or overwrite. simplify, min_area, fill_holes: clean-up in map units (squared).
    probability, class_raster: also a probability GeoTIFF of the mask, a class GeoTIFF on the
    raster's grid. no_overlap, snap: shared borders with the labels already in `out`."""

    raster: str
    _: KW_ONLY
    points: Sequence[Tuple[float, ...]] = ()
    box: Optional[Tuple[float, float, float, float]] = None
    prompt_crs: Optional[str] = None
    class_name: str = "object"
    tags: Dict[str, str] = field(default_factory=dict)
    out: Optional[str] = None
    out_crs: Optional[str] = None
    mode: str = "create"
    simplify: float = 0.0
    min_area: float = 0.0
    fill_holes: float = 0.0
    probability: Optional[str] = None
    class_raster: Optional[str] = None
    no_overlap: bool = False
    snap: float = 0.0

    OUTPUTS = ("out", "probability", "class_raster")
    INPUTS = ("raster", "checkpoint", "cache", "classes")
    FOLDERS = ()

    def __post_init__(self):
        validate(self, {"mode": MODES})
        if not self.points and self.box is None:
            raise SegError("Give at least one point or a box.")
        if self.snap and not self.no_overlap:
            raise SettingError("snap works with no_overlap (shared borders); set no_overlap too.")
        if self.box is not None and len(self.box) != 4:
            raise SettingError(f"A box is four numbers, xmin, ymin, xmax, ymax, not {len(self.box)}.")


def run(request: Request, progress=None, sink=None) -> JobResult:
    """Segment the request's prompt and write the object to `out` (and `sink`)."""
    from ..engine.labeling import segment_prompts
    from ..geo.prompts import Prompt
    from ..geo.vectorize import Cleanup
    from ..outputs.label_rasters import RasterizeOptions, check_output as check_raster, rasterize_labels, write_probability
    from ..outputs.styles import ontology_style
    from ..outputs.vectors import check_output, write_labels
    from ..settings import load_settings

    check_request_outputs(request)
    if request.out:
        check_output(request.out, mode=request.mode)
    for extra in (request.probability, request.class_raster):
        if extra:
            check_raster(extra, request.mode == "overwrite")
    ontology = request.check_classes([request.class_name])
    cleanup = Cleanup(request.simplify, request.min_area, request.fill_holes)
    backend = request.model_spec().open()
    settings = load_settings()
    cache = request.cache or (settings.cache_folder if backend.cacheable else None)
    with request.raster_job(request.raster).open(backend, cache) as segmenter:
        crs = request.prompt_crs or segmenter.source.crs.to_wkt()
        points = [(float(p[0]), float(p[1])) for p in request.points]
        prompt = Prompt(crs=crs, points=tuple(points), labels=tuple(int(p[2]) if len(p) > 2 else 1 for p in request.points),
                        box=None if request.box is None else tuple(float(v) for v in request.box))
        labels, segmentations = segment_prompts(segmenter, [prompt], request.class_name, dict(request.tags),
                                                Cleanup() if request.no_overlap else cleanup, progress=progress)
        if segmenter.cache is not None and settings.cache_size_limit_mb:
            segmenter.cache.prune(settings.cache_size_limit_mb * 2 ** 20)
        model_id = segmenter.backend.model_id
    found = bool(labels)
    if request.no_overlap and labels:
        from ..geo.shared_borders import share_borders_with_layer

        labels = share_borders_with_layer(labels, segmentations[0].transform, request.out if request.mode == "append" else None,
                                          snap=request.snap, simplify=request.simplify, min_area=request.min_area,
                                          fill_holes=request.fill_holes)
    if not labels:
        raise SegError("The object found lies entirely under existing labels; nothing was added." if found
                       else "The model found no object at this prompt; try another point or a box.")
    outputs = {}
    if request.out:
        write_labels(labels, request.out, crs=request.out_crs, mode=request.mode, style=ontology_style(ontology))
        outputs["out"] = request.out
    for label in labels if sink is not None else ():
        sink.add(label)
    if request.probability:
        outputs["probability"] = write_probability(segmentations[0], request.probability, overwrite=request.mode == "overwrite")
    if request.class_raster:
        rasterize_labels(labels, request.raster, request.class_raster,
                         RasterizeOptions(ontology=ontology, add_missing=request.add_missing),
                         overwrite=request.mode == "overwrite")
        outputs["class_raster"] = request.class_raster
    s = segmentations[0]
    return JobResult(count=len(labels), labels=labels, outputs=outputs,
                     details={"crs": labels[0].crs, "model": model_id, "score": s.score, "tiles": len(s.tiles),
                              "complete": s.complete, "area": labels[0].geometry.area})
