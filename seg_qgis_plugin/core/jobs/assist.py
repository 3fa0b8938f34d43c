"""Learn from labels (or apply a saved assistant model) and pre-label the whole raster: polygons of
every class but the background, with optional probability and uncertainty rasters on the raster's
grid and the learned model as a JSON file (core.assist).

Labels to learn from are small squares or scribbles of every class, the background class too;
rejected ones are not learned from. An embedding cache of the raster (`cache`, with `checkpoint`)
adds SAM features; refine="sam" redraws each blob with SAM from its box. The windows run in blocks
(`block_tiles` windows each), on a Dask cluster with `cluster`, and a killed run resumes with
`resume=True` (its manifest lies beside `out`).
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Dict, List, Optional, Tuple

from ..errors import SegError, SettingError
from .base import Bands, ClassFields, JobResult, ModelFields, ScaleFields, check_request_outputs, validate

RETURNS = "labels"
MODES = ("create", "append", "overwrite")
MEASURES = ("entropy", "margin")


@dataclass(frozen=True)
class Request(ModelFields, ScaleFields, ClassFields):
    """raster: any GDAL raster with a CRS. labels: the labels to learn from (a vector file, in any
    CRS, its layer `labels_layer`; a GeoDataFrame; or Labels), or model: a saved assistant model
    (.json) applied as it is. out: the pre-label layer (.gpkg, .geojson, .fgb, .shp) in `mode`
    create, append or overwrite (overwrite also replaces the rasters and the model file);
    probability, uncertainty: GeoTIFFs (uncertainty_measure entropy or margin, 0 sure .. 1 unsure);
    save_model: the learned model as JSON. class_field: the labels' class field; background: the
    class learned but not written; status: learn only from labels with these statuses (None: all
    but rejected). cache: an embedding cache of the raster (seg encode) adding SAM features; bands:
    1-based bands to learn from (None: all); refine "sam" needs a checkpoint. smooth: Gaussian
    smoothing of the probabilities in pixels (0-100); min_area (map units^2), simplify (map units):
    clean-up; tags: on every polygon; region: (col, row, width, height) pixels to pre-label (None:
    the whole raster). threads: for prediction (0: all cores). classes: the written classes must be
    in this ontology (unless add_missing)."""

    raster: str
    _: KW_ONLY
    labels: object = None
    labels_layer: Optional[str] = None
    model: Optional[str] = None
    out: Optional[str] = None
    mode: str = "create"
    probability: Optional[str] = None
    uncertainty: Optional[str] = None
    uncertainty_measure: str = "entropy"
    class_field: str = "class"
    background: str = "background"
    status: Optional[Tuple[str, ...]] = None
    save_model: Optional[str] = None
    cache: Optional[str] = None
    bands: Bands = None
    refine: Optional[str] = None
    smooth: float = 0.0
    min_area: float = 0.0
    simplify: float = 0.0
    tags: Dict[str, str] = field(default_factory=dict)
    region: Optional[Tuple[int, int, int, int]] = None

    OUTPUTS = ("out", "probability", "uncertainty", "save_model")
    INPUTS = ("raster", "labels", "model", "cache", "checkpoint", "classes")
    FOLDERS = ()

    def __post_init__(self):
        validate(self, {"mode": MODES, "uncertainty_measure": MEASURES, "refine": (None, "sam")})
        if self.labels is None and not self.model:
            raise SettingError("Give labels to learn from or a saved model (model).")
        if self.labels is not None and self.model:
            raise SettingError("Give labels or a saved model, not both: a saved model is applied as it is.")
        if self.refine and not self.checkpoint:
            raise SettingError("Refining with SAM needs a SAM checkpoint; give checkpoint.")
        if self.resume and self.mode == "append":
            raise SettingError("resume cannot be combined with appending (a killed append added nothing; just run it again).")
        if self.resume and not self.out:
            raise SettingError("resume needs an output file (its manifest lies beside it).")

    def options(self):
        """The run as core.assist's options."""
        from ..assist.options import AssistOptions, LearnOptions, PredictOptions

        learn = LearnOptions(self.class_field, self.background, self.bands, self.status)
        predict = PredictOptions(self.probability, self.uncertainty, self.uncertainty_measure, self.smooth, self.min_area,
                                 self.simplify, self.region, dict(self.tags), overwrite=self.mode == "overwrite")
        return AssistOptions(self.out, self.mode, self.model, self.save_model, self.cache, self.checkpoint, self.refine,
                             self.threads, self.cluster, self.resume, self.block_tiles, learn, predict)


def run(request: Request, progress=None, sink=None) -> JobResult:
    """Learn (or load the model) and pre-label `request.raster`; polygons go to `request.out`
    (when set) and to `sink.add` (when given) as they are found."""
    from ..assist.classifier import top_importances
    from ..assist.pipeline import assist

    check_request_outputs(request)
    labels = learned_from(request)
    if request.classes:
        request.check_classes(written_classes(request, labels))
    summary = assist(request.raster, labels, request.options(), progress, sink.add if sink is not None else None)
    model, result = summary.model, summary.result
    details = {"crs": _crs(request.raster), "classes": list(model.classes), "per_class": dict(result.per_class),
               "pixels": dict(result.pixels), "refined": summary.refined, "model": model,
               "learned_pixels": dict(model.trained.get("pixels", {})) if labels is not None else {},
               "importances": top_importances(model, 8) if labels is not None else []}
    return JobResult(count=result.count, outputs=dict(summary.outputs), details=details)


def describe(request: Request, result: JobResult) -> List[str]:
    """What the run did, in the lines every door shows."""
    details, lines = result.details, []
    if details["learned_pixels"]:
        pixels = ", ".join(f"{k} {v}" for k, v in details["learned_pixels"].items())
        lines.append(f"learned {len(details['classes'])} classes from {pixels} labelled pixels")
        lines.append("most important features: " + ", ".join(f"{n} {s:.1%}" for n, s in details["importances"][:5]))
    found = ", ".join(f"{k} {v}" for k, v in details["per_class"].items()) or "nothing"
    refined = f", {details['refined']} refined by SAM" if request.refine else ""
    lines.append(f"{result.count} polygons ({found}){refined}")
    return lines


def learned_from(request: Request) -> Optional[List]:
    """The labels to learn from (None with a saved model), after checking their class field."""
    if request.labels is None:
        return None
    from .inputs import is_path, read_layer

    labels = read_layer(request.labels, request.labels_layer)
    if labels and request.class_field not in {k for lab in labels for k in lab.attributes}:
        named = request.labels if is_path(request.labels) else "The labels"
        raise SegError(f"{named} has no field {request.class_field!r}; name the class field (class_field).")
    return labels


def written_classes(request: Request, labels: Optional[List]) -> List[str]:
    """The classes the run will write: those of the labels (or of the saved model) but the background."""
    if labels is None:
        from ..assist.classifier import load_model

        model = load_model(request.model)
        return sorted(model.written_classes)
    names = {str(lab.attributes.get(request.class_field)) for lab in labels
             if lab.attributes.get(request.class_field) not in (None, "")}
    return sorted(names - {request.background})


def _crs(raster: str) -> str:
    from ..geo.raster import RasterSource

    with RasterSource(raster) as source:
        return source.crs.to_wkt()
