"""Label QA: what is wrong with a label layer (invalid, empty, duplicate, overlapping, sliver, gap,
hole, area outlier, missing class; core/quality/qa.py), as a table of findings, with an optional
repaired copy (core/quality/qa_fix.py), a JSON report and an HTML report.

The same run from every door: the findings go to `out` (a layer: geometry, kind, fids, detail,
value) and to the sink, the table comes back as rows; `fix` writes the repaired copy (the input is
never touched), `repair` makes it without a file (JobResult.details["fixed"], for a door that
writes it elsewhere, as Processing does).
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Optional

from .base import JobResult, check_request_outputs, validate

RETURNS = "rows"
FIX_OVERLAPS = ("score", "earlier", "merge")
OVERLAP_SCOPES = ("any", "class")
FINDING_FIELDS = (("kind", "str"), ("fids", "str"), ("detail", "str"), ("value", "float"))


@dataclass(frozen=True)
class Request:
    """labels: a polygon layer (file path, core.quality.table.LabelTable or GeoDataFrame; any CRS,
    tolerances are metres either way); layer: its layer in a multi-layer file. out: the findings
    layer; report: the findings and counts as JSON; fix: a repaired copy (overlaps resolved by
    fix_overlaps: score, earlier or merge); repair: make the repaired copy without `fix`; html: a
    report with counts, a per-class table, histograms and thumbnails cut from `raster`.
    class_field, score_field: the fields holding each label's class and score. Tolerances (metres,
    square metres): overlap_area (overlaps larger are found), overlap_scope (any or class),
    gap_width, sliver_compactness (0-1) and sliver_width, hole_area, outlier_z (robust z within a
    class). overwrite: replace outputs that exist."""

    labels: object
    _: KW_ONLY
    layer: Optional[str] = None
    out: Optional[str] = None
    report: Optional[str] = None
    fix: Optional[str] = None
    fix_overlaps: str = "score"
    repair: bool = False
    html: Optional[str] = None
    raster: Optional[str] = None
    class_field: str = "class"
    score_field: str = "score"
    overlap_area: float = 0.01
    overlap_scope: str = "any"
    gap_width: float = 1.0
    sliver_compactness: float = 0.05
    sliver_width: float = 0.5
    hole_area: float = 1.0
    outlier_z: float = 5.0
    overwrite: bool = False

    OUTPUTS = ("out", "report", "fix", "html")
    INPUTS = ("labels", "raster")
    FOLDERS = ()

    def __post_init__(self):
        validate(self, {"fix_overlaps": FIX_OVERLAPS, "overlap_scope": OVERLAP_SCOPES})

    def tolerances(self):
        from ..quality.qa import Tolerances

        return Tolerances(self.overlap_area, self.gap_width, self.sliver_compactness, self.sliver_width, self.hole_area,
                          self.outlier_z, self.overlap_scope)


def run(request: Request, progress=None, sink=None) -> JobResult:
    """Check `request.labels`; findings go to `request.out` and `sink.add` (Labels whose attributes
    are FINDING_FIELDS), and come back as rows (those fields and the geometry)."""
    from ..engine.labels import Label
    from ..outputs.atomic import write_json_atomic
    from ..outputs.vectors import check_output
    from ..progress import Part
    from ..quality.qa import check_labels, polygonal, report, write_findings
    from ..quality.table import write_layer
    from .inputs import label_table, refuse_existing

    check_request_outputs(request)
    for path in (request.out, request.fix):
        if path:
            check_output(path, mode="overwrite" if request.overwrite else "create")
    refuse_existing((request.report, request.html), request.overwrite)
    table = label_table(request.labels, request.layer)
    tolerances = request.tolerances()
    findings = check_labels(table, tolerances, request.class_field, progress=Part(progress, 0, 90))
    doc = report(findings, table, tolerances)
    fixed = None
    if request.fix or request.repair:
        from ..quality.qa_fix import fix_labels

        fixed = fix_labels(table, findings, tolerances, request.fix_overlaps, request.class_field, request.score_field,
                           progress=progress)
    rows = [{"kind": f.kind, "fids": ",".join(map(str, f.fids)), "detail": f.detail, "value": float(f.value),
             "geometry": None if f.geometry is None else polygonal(f.geometry)} for f in findings]
    outputs = {}
    if request.out:
        outputs["out"] = write_findings(findings, request.out, table.crs, overwrite=request.overwrite)
    if request.report:
        outputs["report"] = write_json_atomic(request.report, doc)
    if request.fix:
        outputs["fix"] = write_layer(request.fix, fixed[0].geometries, fixed[0].columns, fixed[0].crs, overwrite=request.overwrite)
    if request.html:
        from ..quality.report_html import qa_html

        qa_html(doc, table, findings, request.html, request.raster, request.class_field, request.score_field,
                overwrite=request.overwrite)
        outputs["html"] = request.html
    if sink is not None:
        for row in rows:
            sink.add(Label(row["geometry"], table.crs, {k: v for k, v in row.items() if k != "geometry"}))
    if progress is not None:
        progress.set_progress(100)
    details = {"crs": table.crs, "labels": len(table), "counts": doc["counts"], "summary": doc["counts"]}
    if fixed is not None:
        details.update(fixed=fixed[0], repairs=fixed[1])
    return JobResult(count=len(findings), rows=rows, outputs=outputs, details=details)


def summary_line(result: JobResult, out: Optional[str]) -> str:
    """"12 labels: 3 findings (1 overlap, 2 sliver) -> out" (or "clean")."""
    counts = ", ".join(f"{n} {k}" for k, n in result.details["counts"].items() if n)
    found = f"{result.count} findings ({counts})" if result.count else "clean"
    return f"{result.details['labels']} labels: {found}" + (f" -> {out}" if out else "")


def repair_line(result: JobResult, fix: Optional[str]) -> str:
    """"repaired copy with 19 labels (made valid 1, ...) -> fix"."""
    done = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in result.details["repairs"].items() if n)
    return (f"repaired copy with {len(result.details['fixed'])} labels ({done or 'nothing to repair'})"
            + (f" -> {fix}" if fix else ""))
