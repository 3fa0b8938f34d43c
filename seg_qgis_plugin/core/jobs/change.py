"""What changed between consecutive dates of a labelled series (e.g. the output of propagate):
per class (or per track) and pair of dates the areas, what was gained and lost, and the IoU
(core/timeseries/change.py).

The same run from every door: the rows come back as a table and go to `out` (JSON, with each
track's areas through time) and `csv`; the gained and lost geometries go to `changes` (a styled
layer) and to the sink; `png` draws them.
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Optional

from .base import JobResult, check_request_outputs, validate

RETURNS = "rows"
BY = ("class", "track")


@dataclass(frozen=True)
class Request:
    """labels: a series layer, every feature with a `date` (file path, Labels or GeoDataFrame);
    layer: its layer in a multi-layer file. by: one row per class or per track. out: the report as
    JSON ({"dates", "rows", "tracks"}); csv: the rows as CSV; changes: the gained and lost
    geometries as a styled layer (.gpkg keeps the style); png: a picture of them. overwrite:
    replace outputs that exist."""

    labels: object
    _: KW_ONLY
    out: Optional[str] = None
    layer: Optional[str] = None
    csv: Optional[str] = None
    changes: Optional[str] = None
    png: Optional[str] = None
    by: str = "class"
    overwrite: bool = False

    OUTPUTS = ("out", "csv", "changes", "png")
    INPUTS = ("labels",)
    FOLDERS = ()

    def __post_init__(self):
        validate(self, {"by": BY})


def run(request: Request, progress=None, sink=None) -> JobResult:
    """The change report of `request.labels`; see the module docstring."""
    import os

    from ..outputs.atomic import write_json_atomic, write_text_atomic
    from ..outputs.vectors import check_output, write_labels
    from ..timeseries.change import CHANGE_FIELDS, COLOURS, change_report
    from ..timeseries.styles import add_gpkg_style, categorized_qml
    from .inputs import read_layer, refuse_existing

    check_request_outputs(request)
    refuse_existing((request.out, request.csv, request.png), request.overwrite)
    mode = "overwrite" if request.overwrite else "create"
    if request.changes:
        check_output(request.changes, mode=mode, fields=CHANGE_FIELDS)
    labels = read_layer(request.labels, request.layer)
    report = change_report(labels, by=request.by)
    crs = labels[0].crs
    outputs = {}
    if request.changes:
        layer = os.path.splitext(os.path.basename(request.changes))[0]
        finish = ((lambda tmp: add_gpkg_style(tmp, layer, categorized_qml("change", COLOURS)))
                  if request.changes.lower().endswith(".gpkg") else None)
        outputs["changes"] = write_labels(report.changes, request.changes, crs=crs, mode=mode, fields=CHANGE_FIELDS,
                                          style=finish)
    for change in report.changes if sink is not None else ():
        sink.add(change)
    if request.out:
        outputs["out"] = write_json_atomic(request.out, report.to_json())
    if request.csv:
        outputs["csv"] = write_text_atomic(request.csv, report.to_csv())
    if request.png:
        from ..timeseries.pictures import change_png

        change_png(report, request.png)
        outputs["png"] = request.png
    if progress is not None:
        progress.set_progress(100)
    return JobResult(count=len(report.rows), rows=[dict(row) for row in report.rows], outputs=outputs,
                     details={"crs": crs, "tracks": report.tracks, "dates": report.dates, "summary": report.to_json()})


def row_line(row: dict, by: str) -> str:
    """"water: 2021-04-15 -> 2021-06-15: 1,200.0 -> 1,000.0 m2, +0.0 / -200.0 m2, IoU 0.833", and
    ", 300.0 m2 uncertain (77 % explained)" where some objects are uncertain on the later date."""
    who = f"track {row['track_id']}" if by == "track" else row["class"]
    iou = "-" if row["iou"] is None else f"{row['iou']:.3f}"
    unsure = (f", {row['uncertain']:,.1f} m2 uncertain ({row['explained']:.0%} explained)"
              if row.get("uncertain") and row.get("explained") is not None else "")
    return (f"{who}: {row['date_from']} -> {row['date_to']}: {row['area_from']:,.1f} -> {row['area_to']:,.1f} m2, "
            f"+{row['gained']:,.1f} / -{row['lost']:,.1f} m2, IoU {iou}{unsure}")
