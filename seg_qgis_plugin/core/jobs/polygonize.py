"""A class or instance raster to polygons with Seg's full attribute schema (status prelabel), class
names from the ontology, else the raster's own names, else the value (core.outputs.label_rasters)."""
from __future__ import annotations

import os
from dataclasses import KW_ONLY, dataclass
from typing import Optional

from ..errors import SegError
from .base import ClassFields, JobResult, check_request_outputs, validate

RETURNS = "labels"
KINDS = ("class", "instance")
MODES = ("create", "overwrite")


@dataclass(frozen=True)
class Request(ClassFields):
    """mask: a class raster (one integer per class, 0 background) or an instance raster (one
    integer per object). kind "class": one feature per connected region of a value; "instance":
    one feature per value. class_field: the field holding the class (also "class"). out: the layer
    (.gpkg, .geojson, .fgb, .shp) in `mode` create or overwrite. classes: an ontology naming the
    codes (a code it lacks is an error unless add_missing)."""

    mask: str
    _: KW_ONLY
    out: Optional[str] = None
    mode: str = "create"
    class_field: str = "class"
    kind: str = "class"

    OUTPUTS = ("out",)
    INPUTS = ("mask", "classes")
    FOLDERS = ()

    def __post_init__(self):
        validate(self, {"kind": KINDS, "mode": MODES})


def run(request: Request, progress=None, sink=None) -> JobResult:
    """Polygonize `request.mask`; the features go to `request.out` (when set) and to `sink.add`."""
    from ..geo.raster import RasterSource
    from ..outputs.label_rasters import polygonize_raster
    from ..outputs.vectors import check_output, write_labels

    check_request_outputs(request)
    if request.out:
        check_output(request.out, mode=request.mode, fields=layer_fields(request.class_field))
    labels = polygonize_raster(request.mask, request.class_field or "class", request.kind,
                               os.path.basename(request.mask), progress, request.ontology(), request.add_missing)
    if not labels:
        raise SegError(f"{request.mask} holds no labelled pixels (all 0 or nodata).")
    with RasterSource(request.mask) as source:
        crs = source.crs.to_wkt()
    outputs = {}
    if request.out:
        write_labels(labels, request.out, mode=request.mode, fields=layer_fields(request.class_field))
        outputs["out"] = os.path.abspath(request.out)
    if sink is not None:
        for label in labels:
            sink.add(label)
    return JobResult(count=len(labels), outputs=outputs, details={"crs": crs})


def layer_fields(class_field: str):
    """The Seg schema, plus the class field when it has another name."""
    from ..engine.labels import FIELDS

    if class_field in {name for name, _, _ in FIELDS}:
        return FIELDS
    return tuple(FIELDS) + ((class_field, "str", class_field[:10]),)
