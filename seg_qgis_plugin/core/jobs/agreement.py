"""Agreement of label layer B with reference A (two annotators, or pre-labels against checked
labels): one-to-one matching at an IoU, precision, recall, F1, mean IoU, Dice, Cohen's kappa and
Boundary IoU, overall and per class (core/quality/agreement.py).

The same run from every door: the figures go to `out` (JSON) and come back as rows (the overall
row first, then one per class); the objects left unmatched go to `unmatched` and to the sink.
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Optional

from .base import JobResult, check_request_outputs, validate

RETURNS = "rows"
UNMATCHED_FIELDS = (("side", "str"), ("source_fid", "int64"), ("class", "str"), ("best_iou", "float"))
FIGURES = ("objects_a", "objects_b", "matched", "precision", "recall", "f1", "mean_iou", "dice", "boundary_iou", "kappa")


@dataclass(frozen=True)
class Request:
    """a: the reference labels; b: the labels compared with A (reprojected to A's CRS); each a file
    path, a core.quality.table.LabelTable or a GeoDataFrame, layer_a and layer_b their layers in
    multi-layer files. out: the figures as JSON; by_class: also per class (kappa over the
    classes); like: a raster whose grid kappa is burnt on, or resolution: the grid's metres (None:
    2048 pixels across); iou: the IoU at which two objects match (0-1]; boundary_distance: the
    Boundary IoU band width in metres (None: 2 % of each pair's diagonal). unmatched: a layer of
    the objects left unmatched; html: a report with thumbnails cut from `raster` (default: like).
    class_field, score_field: the fields holding the class and the score. overwrite: replace
    outputs that exist."""

    a: object
    b: object
    _: KW_ONLY
    out: Optional[str] = None
    by_class: bool = False
    like: Optional[str] = None
    resolution: Optional[float] = None
    iou: float = 0.5
    boundary_distance: Optional[float] = None
    unmatched: Optional[str] = None
    html: Optional[str] = None
    raster: Optional[str] = None
    class_field: str = "class"
    score_field: str = "score"
    layer_a: Optional[str] = None
    layer_b: Optional[str] = None
    overwrite: bool = False

    OUTPUTS = ("out", "unmatched", "html")
    INPUTS = ("a", "b", "like", "raster")
    FOLDERS = ()

    def __post_init__(self):
        validate(self)
        self.options()  # the cross-field checks (like or resolution) live there, once

    def options(self):
        from ..quality.agreement import AgreementOptions

        return AgreementOptions(self.iou, self.class_field, self.by_class, self.like, self.resolution, self.boundary_distance)


def run(request: Request, progress=None, sink=None) -> JobResult:
    """Compare `request.b` with `request.a`; see the module docstring."""
    from ..engine.labels import Label
    from ..outputs.atomic import write_json_atomic
    from ..outputs.vectors import check_output
    from ..quality.agreement import compare, unmatched
    from ..quality.table import write_layer
    from .inputs import label_table, refuse_existing

    check_request_outputs(request)
    refuse_existing((request.out, request.html), request.overwrite)
    if request.unmatched:
        check_output(request.unmatched, mode="overwrite" if request.overwrite else "create")
    a, b = label_table(request.a, request.layer_a), label_table(request.b, request.layer_b)
    result = compare(a, b, request.options(), progress)
    outputs = {}
    if request.unmatched or sink is not None:
        geometries, columns = unmatched(result, request.class_field)
        if request.unmatched:
            outputs["unmatched"] = write_layer(request.unmatched, geometries, columns, result.a.crs, overwrite=request.overwrite)
        for k, geometry in enumerate(geometries if sink is not None else ()):
            sink.add(Label(geometry, result.a.crs, {name: columns[name][k] for name, _ in UNMATCHED_FIELDS}))
    if request.out:
        outputs["out"] = write_json_atomic(request.out, result.summary)
    if request.html:
        from ..quality.report_html import agreement_html

        agreement_html(result, request.html, request.raster or request.like, request.class_field, request.score_field,
                       overwrite=request.overwrite)
        outputs["html"] = request.html
    summary = result.summary
    rows = [{"scope": "overall", "class": None, **{k: summary.get(k) for k in FIGURES}}]
    rows += [{"scope": "class", "class": name, **{k: doc.get(k) for k in FIGURES}}
             for name, doc in summary.get("classes", {}).items()]
    return JobResult(count=len(rows), rows=rows, outputs=outputs, details={"crs": result.a.crs, "summary": summary})


def summary_line(result: JobResult, iou: float, out: Optional[str]) -> str:
    """"2 of 3 (A) and 4 (B) matched at IoU >= 0.5: F1 0.571, mean IoU ..., kappa ... -> out"."""
    s = result.details["summary"]
    return (f"{s['matched']} of {s['objects_a']} (A) and {s['objects_b']} (B) matched at IoU >= {iou:g}: "
            f"F1 {_f(s['f1'])}, mean IoU {_f(s['mean_iou'])}, Dice {_f(s['dice'])}, kappa {_f(s['kappa'])}"
            + (f" -> {out}" if out else ""))


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
