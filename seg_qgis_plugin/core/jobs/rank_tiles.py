"""The tiles to label next: the raster's tiles ranked by mean uncertainty x share not yet labelled x
diversity (core.assist.rank), the top N as a layer of tile squares (rank 1 first).

The uncertainty comes from an uncertainty GeoTIFF on the raster's grid (`seg assist
--uncertainty`) or from a saved assistant model run on every tile; labels already made count their
tiles as labelled.
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Optional

from ..errors import SettingError
from .base import JobResult, check_request_outputs, validate

RETURNS = "labels"
MODES = ("create", "overwrite")


@dataclass(frozen=True)
class Request:
    """raster: any GDAL raster with a CRS. uncertainty: an uncertainty GeoTIFF on its grid (from
    assist), or model: a saved assistant model (.json) run on every tile (one of the two). labels:
    labels already made (a vector file in any CRS, a GeoDataFrame or Labels). top: how many tiles
    (at least 1); tile: their side in pixels (at least 16). out: the layer of chosen tiles, in
    `mode` create or overwrite."""

    raster: str
    _: KW_ONLY
    uncertainty: Optional[str] = None
    model: Optional[str] = None
    labels: object = None
    top: int = 20
    tile: int = 256
    out: Optional[str] = None
    mode: str = "create"

    OUTPUTS = ("out",)
    INPUTS = ("raster", "uncertainty", "model", "labels")
    FOLDERS = ()

    def __post_init__(self):
        validate(self, {"mode": MODES})
        if (self.uncertainty is None) == (self.model is None):
            raise SettingError("Give either an uncertainty raster or a saved model, not both or neither.")
        if self.tile < 16:
            raise SettingError(f"The tile size must be at least 16 pixels, not {self.tile}.")


def run(request: Request, progress=None, sink=None) -> JobResult:
    """Rank the tiles; the chosen ones go to `request.out` (when set) and to `sink.add` (when given)."""
    from ..assist.rank import RankOptions, describe, rank_tiles, tile_labels
    from ..geo.raster import RasterSource

    check_request_outputs(request)
    model = None
    if request.model:
        from ..assist.classifier import load_model

        model = load_model(request.model)
    labels = None
    if request.labels is not None:
        from .inputs import read_layer

        labels = read_layer(request.labels)
    chosen = rank_tiles(request.raster, request.out, request.uncertainty, model, labels,
                        RankOptions(request.top, request.tile), request.mode, progress)
    with RasterSource(request.raster) as source:
        squares, crs = tile_labels(source, chosen), source.crs.to_wkt()
    if sink is not None:
        for square in squares:
            sink.add(square)
    outputs = {"out": request.out} if request.out else {}
    rows = [dict(square.attributes) for square in squares]
    return JobResult(count=len(chosen), rows=rows, outputs=outputs, details={"crs": crs, "table": describe(chosen)})
