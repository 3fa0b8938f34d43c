"""What every job shares: request values validated once, the sink results go to, and the result.

A request is a frozen dataclass whose fields are the job's options (the API's keyword arguments,
the CLI's flags, Processing's parameters). `validate(request)` checks every numeric field named in
core.ranges.RANGES and the choices a job declares, so a bad value is refused in one sentence when
the request is made, whichever door made it. Fields holding outputs are listed in `OUTPUTS`, those
holding inputs in `INPUTS`, folder outputs in `FOLDERS`: `check_request_outputs` refuses an output
that names an input before any work.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import KW_ONLY, dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import SettingError
from ..ranges import RANGES, check_number

Bands = Optional[Tuple[int, ...]]
Stretch = Optional[Tuple[float, float]]


@dataclass(frozen=True, kw_only=True)
class ModelFields:
    """The model a job runs: a checkpoint file or model name (None: the weights-free classic
    backend), its type when not detected, the backend (auto, sam, onnx, classic), device, CPU
    threads (0: the setting) and precision (auto, fp32, bf16)."""

    checkpoint: Optional[str] = None
    model_type: Optional[str] = None
    backend: str = "auto"
    device: Optional[str] = None
    threads: int = 0
    precision: str = "auto"

    def model_spec(self):
        """How this process and every cluster worker opens the model (core.scale.cluster.ModelSpec)."""
        from ..models.registry import checkpoint_path
        from ..scale.cluster import ModelSpec
        from ..settings import load_settings

        settings = load_settings()
        path = checkpoint_path(self.checkpoint, settings.models_folder) if self.checkpoint else None
        return ModelSpec(os.path.abspath(path) if path else None, self.model_type, self.backend,
                         self.device or settings.device, self.threads or settings.threads or None, self.precision)


@dataclass(frozen=True, kw_only=True)
class RasterFields:
    """How the raster is seen: bands (1-based), stretch (min, max; None: global 2-98 percentiles),
    tile and overlap in model pixels, the working resolution as `gsd` (map units per pixel) or a
    decimation `scale`, an area of interest (shapely geometry in the raster CRS) and the embedding
    cache folder (None: the `cache_folder` setting for SAM)."""

    bands: Bands = None
    stretch: Stretch = None
    tile: int = 1024
    overlap: int = 256
    scale: int = 1
    gsd: Optional[float] = None
    aoi: object = None
    cache: Optional[str] = None

    def raster_job(self, raster: str):
        from ..batch.raster_job import RasterJob

        return RasterJob(os.fspath(raster), self.bands, self.stretch, self.tile, self.overlap, self.gsd, self.aoi,
                         scale=self.scale)


@dataclass(frozen=True, kw_only=True)
class ScaleFields:
    """Where the work runs: on a Dask cluster (local:N or tcp://HOST:PORT) in blocks of
    `block_tiles`, and whether a killed run is resumed from the manifest beside its output."""

    cluster: Optional[str] = None
    block_tiles: int = 4
    resume: bool = False


@dataclass(frozen=True, kw_only=True)
class ClassFields:
    """The ontology file the classes must be in (None: any class) and whether classes it lacks get
    new codes instead of an error."""

    classes: Optional[str] = None
    add_missing: bool = False

    def ontology(self):
        if not self.classes:
            return None
        from ..engine.ontology import load_ontology

        return load_ontology(self.classes)

    def check_classes(self, names: Sequence[str]):
        """The ontology (or None), after refusing in one sentence a class it lacks."""
        ontology = self.ontology()
        if ontology is not None and not self.add_missing:
            from ..engine.ontology import class_codes

            class_codes(list(names), ontology)
        return ontology


@dataclass
class JobResult:
    """What a run made. labels: the objects, when the sink kept them (the API's collector) or the
    job returns a layer in memory; rows: a table (change per date, agreement per class, QA
    findings); outputs: name -> path of every file written; count: objects or rows; notes: lines a
    front door shows the user (skipped prompts, warnings); details: anything else a door reports."""

    count: int = 0
    labels: Optional[List] = None
    rows: Optional[List[Dict[str, object]]] = None
    outputs: Dict[str, str] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    details: Dict[str, object] = field(default_factory=dict)


class Collect:
    """A sink that keeps every label in memory (the API turns them into a GeoDataFrame)."""

    def __init__(self):
        self.labels: List = []

    def add(self, label) -> None:
        self.labels.append(label)


def validate(request, choices: Optional[Mapping[str, Sequence[str]]] = None) -> None:
    """Refuse in one sentence a numeric field outside its documented range (core.ranges) or a
    field outside its choices. Called by every request's __post_init__."""
    for item in dataclasses.fields(request):
        value = getattr(request, item.name)
        if item.name in RANGES and value is not None:
            check_number(item.name, value, item.name)
    for name, allowed in (choices or {}).items():
        value = getattr(request, name)
        if value not in allowed:
            raise SettingError(f"{name} must be one of {', '.join(map(str, allowed))}, not {value!r}.")
    for name in ("backend", "precision"):
        allowed = {"backend": ("auto", "sam", "sam2", "sam3", "onnx", "classic"), "precision": ("auto", "fp32", "bf16")}[name]
        if hasattr(request, name) and getattr(request, name) not in allowed:
            raise SettingError(f"{name} must be one of {', '.join(allowed)}, not {getattr(request, name)!r}.")
    if getattr(request, "stretch", None) is not None and len(request.stretch) != 2:
        raise SettingError(f"A stretch is two numbers, min and max, not {len(request.stretch)}.")


def check_request_outputs(request) -> None:
    """Refuse, before any work, an output of the request that names one of its inputs or another
    output (core.outputs.output_checks)."""
    from ..outputs.output_checks import check_outputs

    outputs = {name: getattr(request, name) for name in type(request).OUTPUTS}
    inputs = {name: _paths(getattr(request, name)) for name in type(request).INPUTS}
    check_outputs(outputs, inputs, folders=type(request).FOLDERS)


def fingerprint(request, leave_out: Sequence[str] = ()) -> str:
    """sha256 of the request's work fields: what a resume manifest records, so a run resumes only
    the same request (outputs, the cluster and resume itself are not work and are left out)."""
    skip = set(leave_out) | set(type(request).OUTPUTS) | {"cluster", "resume", "mode"}
    values = {f.name: _plain(getattr(request, f.name)) for f in dataclasses.fields(request) if f.name not in skip}
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def _paths(value):
    if value is None or isinstance(value, (str, os.PathLike)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, os.PathLike)) for v in value):
        return list(value)
    return None  # features or frames in memory are no file


def _plain(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    wkb = getattr(value, "wkb_hex", None)
    return wkb if wkb is not None else repr(value)


__all__ = ["KW_ONLY", "ClassFields", "Collect", "JobResult", "ModelFields", "RasterFields", "ScaleFields",
           "check_request_outputs", "fingerprint", "validate"]
