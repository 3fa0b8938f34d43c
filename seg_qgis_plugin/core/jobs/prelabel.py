"""Pre-label a raster: one object per prompt feature (points, or polygons as boxes), or every
object SAM's point grid finds (automatic mode), as polygons with status "prelabel".

The same run from every door: prompt features read from a file (or given by the caller), classes
checked against the ontology before any work, serial or blocks on a cluster, a resume manifest
beside `out` (a killed run resumes with `resume=True`), shared borders (`no_overlap`: new objects
are cut by each other, the higher score wins, and by the labels already in `out` when appending),
and an optional class raster on the raster's grid.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import KW_ONLY, dataclass, field
from typing import Dict, Optional, Tuple

from ..errors import SegError, SettingError
from ..progress import Part
from .base import (ClassFields, Collect, JobResult, ModelFields, RasterFields, ScaleFields, check_request_outputs,
                   fingerprint, validate)

RETURNS = "labels"
MODES = ("create", "append", "overwrite")
WORKLESS = ("threads", "device", "cache", "prompts")  # change how, not what: a resume may differ in them


@dataclass(frozen=True)
class Request(ModelFields, RasterFields, ScaleFields, ClassFields):
    """raster: any GDAL raster with a CRS. prompts: a vector file (points: one object each, several
    in a MultiPoint; polygons: a box prompt on their bounding box) in any CRS, or a sequence of
    core.batch.prelabel.PromptFeature; None: automatic mode (needs SAM). prompts_layer: its layer
    in a multi-layer file; class_field: the prompts' field holding the class (other fields become
    tags); class_name: the class when a prompt has none; tags: on every result.
    points_per_side (1-1024), min_score and min_stability (0-1): automatic mode's SAM thresholds.
    simplify, min_area: clean-up in map units (units squared). out: .gpkg, .geojson, .fgb, .shp or
    a PostGIS table, written whole or not at all; mode: create, append or overwrite. no_overlap,
    snap: shared borders (snap new outlines to existing vertices within `snap` map units).
    class_raster: also a class GeoTIFF on the raster's grid (ontology codes with `classes`).
    texts: concept prompts ("pond", or "pond=water": the phrase and its class; a phrase that is an
    ontology synonym takes that class), found everywhere by SAM 3; exemplars: example objects (a
    vector file in any CRS, or a sequence of core.batch.concepts.Example) found everywhere by SAM 3
    or, with any other model, by likeness ("Like this"); exemplars_layer: its layer; a feature whose
    `exemplar_field` is 0, false, no or negative is a negative example. min_score is then the
    score an instance needs."""

    raster: str
    _: KW_ONLY
    prompts: object = None
    prompts_layer: Optional[str] = None
    class_field: Optional[str] = None
    class_name: str = "object"
    tags: Dict[str, str] = field(default_factory=dict)
    points_per_side: int = 16
    min_score: float = 0.7
    min_stability: float = 0.85
    simplify: float = 0.0
    min_area: float = 0.0
    out: Optional[str] = None
    mode: str = "create"
    no_overlap: bool = False
    snap: float = 0.0
    class_raster: Optional[str] = None
    texts: Tuple[str, ...] = ()
    exemplars: object = None
    exemplars_layer: Optional[str] = None
    exemplar_field: Optional[str] = None

    OUTPUTS = ("out", "class_raster")
    INPUTS = ("raster", "prompts", "checkpoint", "cache", "classes", "exemplars")
    FOLDERS = ()

    def __post_init__(self):
        validate(self, {"mode": MODES})
        if self.snap and not self.no_overlap:
            raise SettingError("snap works with no_overlap (shared borders); set no_overlap too.")
        if self.resume and self.mode == "append":
            raise SettingError("resume cannot be combined with appending (a killed append added nothing; just run it again).")
        if self.resume and not self.out:
            raise SettingError("resume needs an output file (its manifest lies beside it).")
        object.__setattr__(self, "texts", tuple(str(t) for t in self.texts or ()))
        if self.concepts and self.prompts is not None:
            raise SettingError("Give either prompts (one object each) or text / exemplars (every instance), not both.")
        if self.concepts and (self.cluster or self.resume):
            raise SettingError("Text and exemplar prompts run in one process; drop cluster and resume.")

    @property
    def concepts(self) -> bool:
        """Whether this run finds every instance of phrases or examples."""
        return bool(self.texts) or self.exemplars is not None
    def options(self):
        from ..batch.prelabel import PrelabelOptions

        return PrelabelOptions(class_name=self.class_name, tags=dict(self.tags), points_per_side=self.points_per_side,
                               min_score=self.min_score, min_stability=self.min_stability, simplify=self.simplify,
                               min_area=self.min_area)


def run(request: Request, progress=None, sink=None) -> JobResult:
    """Pre-label `request.raster`; labels go to `request.out` (when set) and to `sink.add` (when
    given) as they are found, or all at the end with shared borders."""
    from ..batch.raster_job import prelabel_raster
    from ..outputs.styles import ontology_style
    from ..outputs.vectors import LabelWriter, check_output
    from ..scale.block_run import BlockRun
    from ..scale.runs import prelabel_scaled
    from ..settings import load_settings

    check_request_outputs(request)
    if request.out:
        check_output(request.out, mode=request.mode)
    if request.class_raster:
        from ..outputs.label_rasters import check_output as check_raster

        check_raster(request.class_raster, overwrite=request.mode != "create")
    features = prompt_features(request)
    if request.concepts:
        return run_concepts(request, progress, sink)
    ontology = request.check_classes([f.class_name or request.class_name for f in features or []] or [request.class_name])
    spec = request.model_spec()
    backend = spec.open()
    cache = request.cache or (load_settings().cache_folder if backend.cacheable else None)
    job, options = request.raster_job(request.raster), request.options()
    steps = Part(progress, 0, 90 if request.class_raster else 100)
    kept = Collect() if request.class_raster or request.no_overlap else None
    blocks = bool(request.cluster or request.resume or (request.out and request.mode != "append"))
    manifest = None
    try:
        with LabelWriter(request.out, mode=request.mode, style=ontology_style(ontology)) if request.out else nullcontext() as writer:
            targets = [t for t in (writer, sink) if t is not None]

            def found(label) -> None:
                for target in targets if not request.no_overlap else ():
                    target.add(label)
                if kept is not None:
                    kept.add(label)

            if blocks:
                in_blocks = BlockRun(spec if request.cluster else None, cache, request.cluster, request.out,
                                     request.resume, request.block_tiles, request=fingerprint(request, WORKLESS))
                result, manifest = prelabel_scaled(job, backend, features, options, in_blocks, steps, found)
            else:
                result = prelabel_raster(job, backend, features, cache, options, steps, found)
            labels = kept.labels if kept is not None else []
            if request.no_overlap:  # shared borders need every object first (the higher score wins)
                labels = share_borders(request, labels, result.grid)
                result.count = len(labels)
                for label in labels:
                    for target in targets:
                        target.add(label)
            if not result.count:
                if manifest is not None:
                    manifest.finish()  # the run is over: nothing to resume
                raise SegError("Pre-labeling found no object; nothing was written.")
        outputs = {"out": request.out} if request.out else {}
        if request.class_raster:
            from ..outputs.label_rasters import RasterizeOptions, rasterize_labels

            rasterize_labels(labels, request.raster, request.class_raster, RasterizeOptions(ontology=ontology),
                             overwrite=True, progress=Part(progress, 90, 100))
            outputs["class_raster"] = request.class_raster
    except BaseException as exc:
        if manifest is not None:
            manifest.abandon(exc)  # finished blocks stay only where a resume helps
        raise
    if manifest is not None:
        manifest.finish()  # the output is whole: the resume manifest goes
    notes = [f"prompt {number} skipped: {reason}" for number, reason in result.skipped]
    return JobResult(count=result.count, outputs=outputs, notes=notes,
                     details={"crs": backend_crs(request.raster), "model": backend.model_id, "skipped": result.skipped})


def run_concepts(request: Request, progress=None, sink=None) -> JobResult:
    """Every instance of the request's phrases and examples (core.batch.concepts)."""
    from ..batch.concepts import FindOptions, find_concepts, parse_concepts
    from ..outputs.styles import ontology_style
    from ..outputs.vectors import LabelWriter

    examples = example_features(request)
    declared = request.ontology() if request.classes else None
    concepts = parse_concepts(request.texts, declared)
    names = [c.class_name for c in concepts] or [next((e.class_name for e in examples if e.class_name), request.class_name)]
    ontology = request.check_classes(names)
    backend = request.model_spec().open()
    job = request.raster_job(request.raster)
    options = FindOptions(min_score=request.min_score, simplify=request.simplify, min_area=request.min_area,
                          tags=dict(request.tags), class_name=request.class_name)
    labels = []
    with job.open(backend, request.cache if backend.cacheable else None) as segmenter:
        result = find_concepts(segmenter, concepts, examples, job.tiles(segmenter), options,
                               Part(progress, 0, 90 if request.class_raster else 100), labels.append)
        if request.no_overlap:
            labels = share_borders(request, labels, result.grid)
    if not labels:
        raise SegError("Nothing like the text or the examples was found; nothing was written.")
    if request.out:
        with LabelWriter(request.out, mode=request.mode, style=ontology_style(ontology)) as writer:
            for label in labels:
                writer.add(label)
    for label in labels if sink is not None else ():
        sink.add(label)
    outputs = {"out": request.out} if request.out else {}
    if request.class_raster:
        from ..outputs.label_rasters import RasterizeOptions, rasterize_labels

        rasterize_labels(labels, request.raster, request.class_raster, RasterizeOptions(ontology=ontology),
                         overwrite=True, progress=Part(progress, 90, 100))
        outputs["class_raster"] = request.class_raster
    return JobResult(count=len(labels), outputs=outputs, notes=[],
                     details={"crs": backend_crs(request.raster), "model": backend.model_id, "skipped": []})


def example_features(request: Request):
    """The request's exemplars as core.batch.concepts.Examples (empty without exemplars)."""
    from ..batch.concepts import Example

    if request.exemplars is None:
        return []
    if not isinstance(request.exemplars, (str, bytes)) and not hasattr(request.exemplars, "__fspath__"):
        return list(request.exemplars)
    from ..outputs.vectors import read_labels

    examples = []
    for lab in read_labels(str(request.exemplars), request.exemplars_layer):
        if request.exemplar_field and request.exemplar_field not in lab.attributes:
            raise SegError(f"The exemplar layer has no field {request.exemplar_field!r}.")
        flag = str(lab.attributes.get(request.exemplar_field, "")).strip().lower() if request.exemplar_field else ""
        name = lab.attributes.get(request.class_field) if request.class_field else None
        examples.append(Example(lab.geometry, lab.crs, flag not in ("0", "false", "no", "negative"),
                                "" if name in (None, "") else str(name)))
    if not examples:
        raise SegError("The exemplar layer has no features with a geometry.")
    return examples


def prompt_features(request: Request):
    """The request's prompts as PromptFeatures (class from class_field, other fields as tags on
    top of the request's tags), or None in automatic mode."""
    from ..batch.prelabel import PromptFeature

    if request.prompts is None:
        return None
    if not isinstance(request.prompts, (str, bytes)) and not hasattr(request.prompts, "__fspath__"):
        return [PromptFeature(f.geometry, f.crs, f.class_name, {**request.tags, **f.tags}) for f in request.prompts]
    from ..outputs.vectors import read_labels

    field_name = request.class_field
    features = []
    for lab in read_labels(str(request.prompts), request.prompts_layer):
        if field_name and field_name not in lab.attributes:
            raise SegError(f"The prompt layer has no field {field_name!r}.")
        value = lab.attributes.get(field_name) if field_name else None
        own = {k: str(v) for k, v in lab.attributes.items() if k != field_name and v not in (None, "")}
        features.append(PromptFeature(lab.geometry, lab.crs, "" if value in (None, "") else str(value),
                                      {**request.tags, **own}))
    if not features:
        raise SegError("The prompt layer has no features with a geometry.")
    return features


def share_borders(request: Request, labels, grid):
    from ..geo.shared_borders import share_borders_with_layer

    existing = request.out if request.mode == "append" else None
    return share_borders_with_layer(labels, grid, existing, snap=request.snap, simplify=request.simplify,
                                    min_area=request.min_area)


def backend_crs(raster: str) -> str:
    from ..geo.raster import RasterSource

    with RasterSource(raster) as source:
        return source.crs.to_wkt()
