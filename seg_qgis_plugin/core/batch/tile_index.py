"""A raster's tile grid as polygons: what will be (or has been) encoded, where, and how much of it
holds data.

`tile_index` walks a `TileGrid` (see tiling.py for the count formula) and gives each tile its
footprint in the raster CRS (exact pixel edges), its grid position, its window label (the same
label the embedding cache and the `window` attribute use) and the share of valid pixels. Tiles that
are all nodata or miss an area of interest are left out. Memory is one tile's validity mask at a
time: reading it costs one windowed read of the mask per tile, the expensive part on a big raster.

`cache_coverage` lists the tiles an embedding cache already holds for a raster and model, so a user
can see which parts are ready to prompt instantly.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional

from ..engine.embedding_cache import EmbeddingCache
from ..errors import SegError
from ..progress import Progress, check_canceled
from ..geo.raster import RasterSource
from ..geo.tiling import Tile, TileGrid, Tiling

TILE_FIELDS = (("tile_id", "int"), ("grid_row", "int"), ("grid_col", "int"), ("window", "str"), ("scale", "int"),
               ("valid_fraction", "float"), ("chip", "str"))


@dataclass
class TileRecord:
    """One tile: its footprint (shapely Polygon in the raster CRS) and attributes (TILE_FIELDS)."""

    tile: Tile
    geometry: object
    attributes: Dict[str, object] = field(default_factory=dict)


def tile_footprint(tile: Tile, raster_transform):
    """The tile's outline in map coordinates: a shapely box on the tile's pixel edges."""
    from shapely.geometry import box

    t = tile.transform(raster_transform)
    x0, y0 = t * (0, 0)
    x1, y1 = t * (tile.width, tile.height)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def valid_fraction(source: RasterSource, tile: Tile) -> float:
    """Share of the tile's level pixels that hold data (not nodata, alpha or masked)."""
    from rasterio.windows import Window

    c, r, w, h = tile.raster_window
    mask = source.dataset.dataset_mask(window=Window(c, r, w, h), out_shape=(tile.height, tile.width))
    return float((mask > 0).mean())


def select_tiles(source: RasterSource, grid: TileGrid, aoi=None, skip_nodata: bool = True,
                 progress: Optional[Progress] = None) -> Iterator[TileRecord]:
    """The grid's tiles that intersect `aoi` (a shapely geometry in the raster CRS, or None for
    all) and, when `skip_nodata`, hold at least one valid pixel. Yields records in row-major order
    with progress over the whole grid."""
    from shapely import prepared

    target = prepared.prep(aoi) if aoi is not None else None
    total = len(grid)
    rows, cols = grid.shape
    for number, tile in enumerate(grid):
        check_canceled(progress)
        footprint = tile_footprint(tile, source.transform)
        if target is None or target.intersects(footprint):
            fraction = valid_fraction(source, tile)
            if fraction > 0 or not skip_nodata:
                i, j = divmod(number, cols)
                yield TileRecord(tile, footprint, {
                    "tile_id": number + 1, "grid_row": i, "grid_col": j, "window": tile.label(), "scale": tile.scale,
                    "valid_fraction": round(fraction, 6), "chip": ""})
        if progress is not None:
            progress.set_progress(100.0 * (number + 1) / total)


def tile_index(raster: str, tiling: Tiling = Tiling(), aoi=None, skip_nodata: bool = True, chips_dir: Optional[str] = None,
               chip_format: str = "tif", radiometry=None, progress: Optional[Progress] = None) -> List[TileRecord]:
    """The tile index of `raster` cut by `tiling`; with `chips_dir` (a new or empty folder, filled
    atomically) also one image chip per kept tile, named tile_<row>_<col>.<chip_format> and recorded
    in the `chip` attribute (relative to chips_dir). PNG chips use `radiometry` (default: the
    raster's global stretch)."""
    from ..outputs.atomic import atomic_folder
    from ..outputs import CHIP_FORMATS as FORMATS
    from ..outputs.chips import write_image_chip

    if not chips_dir:
        with RasterSource(raster) as source:
            grid = tiling.grid(source.width, source.height)
            return list(select_tiles(source, grid, aoi, skip_nodata, progress))
    if chip_format not in FORMATS:
        raise SegError(f"Chip format must be one of {', '.join(FORMATS)}, not {chip_format!r}.")
    records = []
    with RasterSource(raster) as source, atomic_folder(chips_dir, overwrite=False) as tmp:
        grid = tiling.grid(source.width, source.height)
        if chip_format == "png" and radiometry is None:
            from ..geo.radiometry import compute_radiometry

            radiometry = compute_radiometry(source)
        for record in select_tiles(source, grid, aoi, skip_nodata, progress):
            name = f"tile_{record.attributes['grid_row']:04d}_{record.attributes['grid_col']:04d}.{chip_format}"
            write_image_chip(source, record.tile, os.path.join(tmp, name), radiometry)
            record.attributes["chip"] = name
            records.append(record)
    return records


def cache_coverage(cache: EmbeddingCache, raster_transform, fingerprint: Optional[str] = None,
                   model_id: Optional[str] = None) -> List[TileRecord]:
    """The tiles `cache` holds (for one raster fingerprint and model, when given) as footprints
    with attributes window, scale, model, created, file. Footprints use `raster_transform`, so
    pass the transform of the raster the fingerprint belongs to."""
    records = []
    for number, entry in enumerate(cache.entries(), start=1):
        if fingerprint and entry.get("fingerprint") != fingerprint:
            continue
        if model_id and entry.get("model_id") != model_id:
            continue
        col, row, width, height = json.loads(entry["tile"])
        tile = Tile(col, row, width, height, int(entry.get("scale", 1)))
        records.append(TileRecord(tile, tile_footprint(tile, raster_transform), {
            "window": tile.label(), "scale": tile.scale, "model": entry.get("model_id", ""),
            "created": entry.get("created", ""), "file": entry["file"]}))
    return records
