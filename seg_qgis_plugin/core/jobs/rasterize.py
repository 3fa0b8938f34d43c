"""Labels to a class or instance GeoTIFF on exactly a given raster's grid (size, transform, CRS),
class codes from the ontology when given (core.outputs.label_rasters)."""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Dict, Optional

from ..errors import SegError
from .base import ClassFields, JobResult, check_request_outputs, validate

RETURNS = "path"
KINDS = ("class", "instance")


@dataclass(frozen=True)
class Request(ClassFields):
    """labels: polygons (a vector file, its `layer` in a multi-layer file; a GeoDataFrame; or
    Labels) in any CRS. like: the raster whose grid the output takes. out: the GeoTIFF (replaced
    only with overwrite). kind "class": the class code of `field` per pixel, 0 background (codes
    from the ontology `classes` when given); "instance": feature number 1..N."""

    labels: object
    like: str
    out: str
    _: KW_ONLY
    field: str = "class"
    layer: Optional[str] = None
    kind: str = "class"
    overwrite: bool = False

    OUTPUTS = ("out",)
    INPUTS = ("labels", "like", "classes")
    FOLDERS = ()

    def __post_init__(self):
        validate(self, {"kind": KINDS})

    def options(self):
        from ..outputs.label_rasters import RasterizeOptions

        return RasterizeOptions(self.field, self.kind, self.ontology(), self.add_missing)


def run(request: Request, progress=None, sink=None) -> JobResult:
    """Burn the labels into `request.out`; JobResult.details["classes"] maps class names to codes."""
    import os

    from ..outputs.label_rasters import check_output, rasterize_labels
    from .inputs import read_layer

    check_request_outputs(request)
    check_output(request.out, request.overwrite)
    labels = read_layer(request.labels, request.layer)
    if request.kind == "class" and labels and not any(request.field in lab.attributes for lab in labels):
        raise SegError(f"The labels have no field {request.field!r}; choose the field that holds the class.")
    classes: Dict[str, int] = rasterize_labels(labels, request.like, request.out, request.options(), request.overwrite,
                                               progress)
    return JobResult(count=len(labels), outputs={"out": os.path.abspath(request.out)}, details={"classes": classes})


def describe(request: Request, result: JobResult):
    """The line every door shows."""
    legend = ", ".join(f"{v}={k}" for k, v in sorted(result.details["classes"].items(), key=lambda kv: kv[1]))
    return [f"{result.count} features -> {request.out}" + (f" ({legend})" if legend else "")]
