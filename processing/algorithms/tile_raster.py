"""seg:tileraster: a raster's tile grid as a polygon layer, optionally with image chips."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
    QgsWkbTypes,
)

from ...core.outputs.chips import FORMATS
from ...core.geo.raster import RasterSource
from ...core.batch.tile_index import TILE_FIELDS, tile_index
from ...core.geo.tiling import scale_for_gsd
from ...qgis_adapters.crs import crs_from_core
from ...qgis_adapters.sinks import add_features, make_fields
from .base import SegAlgorithm


class TileRasterAlgorithm(SegAlgorithm):
    ALG_ID = "tileraster"
    DISPLAY = "Tile raster"
    HELP = ("Cuts a raster into the tile grid Seg uses for encoding and pre-labeling, and writes the tiles as polygons "
            "(tile id, grid row and column, window, working-resolution scale, share of valid pixels).\n\n"
            "Tile size and overlap are in working-resolution pixels: the grid has 1 + ceil((n - tile) / (tile - overlap)) "
            "tiles per axis, the last one shifted back to end at the raster edge. Tiles that are all nodata can be skipped, "
            "and an optional polygon layer limits the grid to an area of interest.\n\n"
            "Optionally writes one image chip per tile into a new or empty folder: GeoTIFF (all bands, original values, "
            "georeferenced) or PNG (8-bit RGB as SAM sees it). The chip column names each tile's file.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", self.tr("Raster")))
        self.add_tiling(1024, 256)
        self.add_bool("SKIP_NODATA", "Skip tiles that are all nodata", True)
        self.add_aoi()
        self.addParameter(QgsProcessingParameterEnum("CHIP_FORMAT", self.tr("Chip format"), list(FORMATS), defaultValue=0))
        self.addParameter(QgsProcessingParameterFolderDestination("CHIPS", self.tr("Image chips folder"), optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFeatureSink("OUTPUT", self.tr("Tile index")))
        self.addOutput(QgsProcessingOutputNumber("TILE_COUNT", self.tr("Number of tiles")))

    def run_seg(self, parameters, context, feedback, progress):
        raster = self.raster_path(parameters, "INPUT", context)
        tile, overlap, gsd = self.tiling(parameters, context)
        with RasterSource(raster) as src:
            scale, crs = scale_for_gsd(src.info().resolution[0], gsd), src.crs.to_wkt()
        chips = self.parameterAsFileOutput(parameters, "CHIPS", context) if parameters.get("CHIPS") else ""
        chip_format = FORMATS[self.parameterAsEnum(parameters, "CHIP_FORMAT", context)]
        records = tile_index(raster, tile, overlap, scale, self.aoi(parameters, context, raster),
                             self.parameterAsBool(parameters, "SKIP_NODATA", context), chips or None, chip_format, progress=progress)
        fields = make_fields(TILE_FIELDS)
        sink, dest = self.parameterAsSink(parameters, "OUTPUT", context, fields, QgsWkbTypes.Type.Polygon, crs_from_core(crs))
        add_features(sink, fields, records, multi=False)
        feedback.pushInfo(f"{len(records)} tiles" + (f", chips in {chips}" if chips else ""))
        return {"OUTPUT": dest, "CHIPS": chips or None, "TILE_COUNT": len(records)}
