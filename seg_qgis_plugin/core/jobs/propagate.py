"""Carry labels of one date through rasters of other dates of the same area: each object's latest
outline prompts the model on the next date; each answer is `kept`, `lost` or `uncertain` from
evidence, objects off a raster `outside` (core/timeseries/propagate.py, decision.py). With backend "sam2", SAM 2.1's
memory follows each object through the dates as through the frames of a video (core/timeseries/memory.py).

The same run from every door: one layer holds the whole series (the starting labels included),
each feature with track_id, date and status; it goes to `out` and to the sink.
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Dict, Optional, Tuple

from ..errors import SegError
from .base import Bands, JobResult, ModelFields, Stretch, check_request_outputs, validate

RETURNS = "labels"


@dataclass(frozen=True)
class Request(ModelFields):
    """labels: polygon labels of one date (file path, Labels or GeoDataFrame), each feature's date
    from its `date` field or start_date (YYYY-MM-DD); layer: its layer in a multi-layer file.
    rasters: the same area on other dates (include the labels' own raster so lost objects are told
    by their look from the first step on); dates: one per raster (YYYY-MM-DD; comma separated text
    or a sequence; None: metadata, then file name). classes: only these classes (None: all); tags:
    on every propagated feature ({"season": "summer"} or "KEY=VALUE" texts). min_score: answers
    scored lower are not trusted (0-1); simplify: outline tolerance in map units. ontology: an
    ontology file whose classes name their spectral index ("index": "ndwi"); index_bands: the
    red, green and near-infrared bands (1-based; None: from the raster, see
    core/timeseries/spectral.py). The model (ModelFields:
    no checkpoint is the weights-free classic backend) sees each raster through bands (1-based)
    and stretch (min, max), in tiles of `tile` model pixels overlapping by `overlap`, decimated by
    `scale` or brought to `gsd` map units per pixel; cache: an embedding cache folder (default for
    SAM: the `cache_folder` setting), float16: stored as float16. out: the series layer (.gpkg,
    .geojson, .fgb, .shp); overwrite: replace it when it exists.

    Raster fields are declared here rather than through RasterFields: a series has many rasters
    of their own CRSs, so one area of interest in "the raster's CRS" means nothing here."""

    labels: object
    rasters: Tuple[str, ...]
    _: KW_ONLY
    out: Optional[str] = None
    layer: Optional[str] = None
    dates: Optional[Tuple[str, ...]] = None
    start_date: Optional[str] = None
    classes: Optional[Tuple[str, ...]] = None
    tags: Dict[str, str] = field(default_factory=dict)
    min_score: float = 0.5
    simplify: float = 0.0
    ontology: Optional[str] = None
    index_bands: Optional[Tuple[int, int, int]] = None
    bands: Bands = None
    stretch: Stretch = None
    tile: int = 1024
    overlap: int = 256
    scale: int = 1
    gsd: Optional[float] = None
    cache: Optional[str] = None
    float16: bool = False
    overwrite: bool = False

    OUTPUTS = ("out",)
    INPUTS = ("labels", "rasters", "checkpoint", "cache", "ontology")
    FOLDERS = ()

    def __post_init__(self):
        from ..geo.prompts import parse_tags
        from .inputs import names, paths

        object.__setattr__(self, "rasters", paths(self.rasters))
        object.__setattr__(self, "dates", names(self.dates))
        object.__setattr__(self, "classes", names(self.classes))
        if self.index_bands is not None:
            object.__setattr__(self, "index_bands", _index_bands(self.index_bands))
        if not hasattr(self.tags, "items"):
            object.__setattr__(self, "tags", parse_tags(list(self.tags or ())))
        validate(self)
        self.options()  # the start date and the tiling are checked there, once

    def start(self):
        """The start date (a datetime.date), or None; one sentence for a text that is no date."""
        from ..timeseries.dates import parse_date

        start = parse_date(self.start_date) if self.start_date else None
        if self.start_date and start is None:
            raise SegError(f"The start date {self.start_date!r} is not a date; write YYYY-MM-DD.")
        return start

    def options(self, cache=None):
        from ..geo.tiling import Tiling
        from ..timeseries.propagate import PropagateOptions

        from ..engine.ontology import load_ontology

        roles = dict(zip(("red", "green", "nir"), self.index_bands)) if self.index_bands else None
        return PropagateOptions(self.start(), self.classes, dict(self.tags), self.bands, self.stretch,
                                Tiling(self.tile, self.overlap, self.scale), self.gsd, cache, self.min_score, self.simplify,
                                load_ontology(self.ontology) if self.ontology else None, roles)


def _index_bands(value) -> Tuple[int, int, int]:
    """"1,2,4" or (1, 2, 4) -> (red, green, nir) band numbers; one sentence otherwise."""
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
    try:
        bands = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        bands = ()
    if len(bands) != 3 or min(bands) < 1:
        raise SegError(f"The index bands are three band numbers, red, green and near infrared (e.g. 1,2,4), not {value!r}.")
    return bands


def run(request: Request, progress=None, sink=None) -> JobResult:
    """Propagate `request.labels` through `request.rasters`; see the module docstring."""
    from ..outputs.vectors import check_output, write_labels
    from ..settings import load_settings
    from ..timeseries.dates import dated_series
    from ..timeseries.propagate import TRACK_FIELDS, propagate
    from .inputs import read_layer

    check_request_outputs(request)
    mode = "overwrite" if request.overwrite else "create"
    if request.out:
        check_output(request.out, mode=mode, fields=TRACK_FIELDS)
    series = dated_series(request.rasters, request.dates)
    labels = read_layer(request.labels, request.layer)
    if request.backend == "sam2":  # SAM 2's memory follows each object through the dates as through a video
        from ..timeseries.memory import VideoTracker, propagate_with_memory

        spec = request.model_spec()
        if not spec.checkpoint:
            raise SegError("The sam2 backend needs a SAM 2.1 checkpoint; give --checkpoint (a file or a name such as sam2.1_hiera_tiny).")
        backend = VideoTracker(spec.checkpoint, spec.device if spec.device != "auto" else "cpu")
        result = propagate_with_memory(labels, series, backend, request.options(), progress)
    else:
        backend = request.model_spec().open()
        cache = None
        folder = request.cache or load_settings().cache_folder
        if backend.cacheable and folder:
            from ..engine.embedding_cache import EmbeddingCache

            cache = EmbeddingCache(folder, request.float16)
        result = propagate(labels, series, backend, request.options(cache), progress)
    outputs = {}
    if request.out:
        outputs["out"] = write_labels(result.labels, request.out, mode=mode, fields=TRACK_FIELDS, style="series")
    for label in result.labels if sink is not None else ():
        sink.add(label)
    crs = labels[0].crs
    return JobResult(count=len(result.labels), outputs=outputs, notes=list(result.notes),
                     details={"crs": crs, "counts": dict(result.counts), "dates": len(series), "model": backend.model_id,
                              "series": [(item.path, item.iso) for item in series],
                              "seconds_per_step": result.seconds / max(result.steps, 1), "summary": dict(result.counts)})


def summary_line(result: JobResult, out: Optional[str]) -> str:
    """"18 features over 4 dates: 12 kept, 2 lost, 1 uncertain, 0 outside (classic-grabcut, 0.05 s per object per date) -> out"."""
    d = result.details
    counts = d["counts"]
    return (f"{result.count} features over {d['dates']} dates: {counts['kept']} kept, {counts['lost']} lost, "
            f"{counts['uncertain']} uncertain, {counts['outside']} outside ({d['model']}, {d['seconds_per_step']:.2f} s per object per date)"
            + (f" -> {out}" if out else ""))
