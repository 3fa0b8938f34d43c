"""Where the dates' images differ: per tile of the earliest raster and per consecutive pair of
dates, a 0..1 drift between the pixel distributions (and between SAM embeddings when caches are
given); tiles whose drift after removing each date's global shift exceeds a threshold (the
user's, or one the series sets) are flagged (core/timeseries/drift.py).

The job makes a layer: one polygon per tile and pair of dates with its drift values (DRIFT_FIELDS),
so it returns "labels" (the API's GeoDataFrame of tiles, each with a geometry and values, the form
a map and a spatial join need); the tiles go to `out` (.gpkg keeps the summary in its metadata)
and to the sink; `png` draws the map. The summary per pair of dates is JobResult.details.
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Dict, Optional, Tuple

from ..errors import SegError, SettingError
from .base import Bands, JobResult, Stretch, check_request_outputs, validate

RETURNS = "labels"


@dataclass(frozen=True)
class Request:
    """rasters: two or more rasters of the same area on different dates; dates: one per raster
    (YYYY-MM-DD; a comma separated text or a sequence; None: from metadata, then file name).
    out: the tiles layer; tile: tile size in pixels of the earliest raster; threshold: tiles
    whose local drift exceeds it are flagged (0-1, both excluded; None: each pair's from the
    series, a robust z-score); cache: SAM embedding caches by date
    ({"2020-08-31": folder} or "DATE=FOLDER" texts), with two or more embedding_drift is added;
    per_raster: each date under its own stretch instead of the earliest one's; bands (1-based)
    and stretch (min, max) for every date; png: a picture of the drift map. overwrite: replace
    outputs that exist."""

    rasters: Tuple[str, ...]
    _: KW_ONLY
    out: Optional[str] = None
    tile: int = 256
    threshold: Optional[float] = None
    dates: Optional[Tuple[str, ...]] = None
    cache: Dict[str, str] = field(default_factory=dict)
    per_raster: bool = False
    bands: Bands = None
    stretch: Stretch = None
    png: Optional[str] = None
    overwrite: bool = False

    OUTPUTS = ("out", "png")
    INPUTS = ("rasters",)
    FOLDERS = ()

    def __post_init__(self):
        from .inputs import names, paths

        object.__setattr__(self, "rasters", paths(self.rasters))
        object.__setattr__(self, "dates", names(self.dates))
        object.__setattr__(self, "cache", caches_by_date(self.cache))
        validate(self)
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise SettingError(f"The drift threshold must lie between 0 and 1, not {self.threshold}.")


def caches_by_date(value) -> Dict[str, str]:
    """{ISO date: folder} from a mapping or "DATE=FOLDER" texts; one sentence for anything else."""
    from ..timeseries.dates import parse_date

    if hasattr(value, "items"):
        items = list(value.items())
    else:
        items = [text.partition("=")[::2] for text in ([value] if isinstance(value, str) else value or ())]
    found = {}
    for key, folder in items:
        when = parse_date(key)
        if when is None or not folder:
            raise SegError(f"Cannot read the cache {key}={folder}; write DATE=FOLDER, e.g. 2020-08-31=cache/2020.")
        found[when.isoformat()] = str(folder)
    return found


def run(request: Request, progress=None, sink=None) -> JobResult:
    """The drift map of `request.rasters`; see the module docstring."""
    from ..outputs.styles import VectorStyle
    from ..outputs.vectors import check_output, write_labels
    from ..timeseries.dates import dated_series
    from ..timeseries.drift import DRIFT_FIELDS, drift_map, layer_metadata, summary_lines
    from .inputs import refuse_existing

    check_request_outputs(request)
    refuse_existing((request.png,), request.overwrite)
    mode = "overwrite" if request.overwrite else "create"
    if request.out:
        check_output(request.out, mode=mode, fields=DRIFT_FIELDS)
    series = dated_series(request.rasters, request.dates)
    result = drift_map(series, request.tile, request.threshold, request.bands, request.stretch, request.cache,
                       request.per_raster, progress=progress)
    outputs = {}
    if request.out:
        outputs["out"] = write_labels(result.tiles, request.out, crs=result.crs, mode=mode, fields=DRIFT_FIELDS,
                                      layer_metadata=layer_metadata(result), style=VectorStyle("drift"))
    for tile in result.tiles if sink is not None else ():
        sink.add(tile)
    if request.png:
        from ..timeseries.pictures import drift_png

        drift_png(result, series[0].path, request.png)
        outputs["png"] = request.png
    flagged = sum(int(t.attributes["flagged"]) for t in result.tiles)
    return JobResult(count=len(result.tiles), outputs=outputs, notes=list(result.notes),
                     details={"crs": result.crs, "series": [(item.path, item.iso) for item in series], "summary": result.summary, "summary_lines": summary_lines(result),
                              "flagged": flagged})
