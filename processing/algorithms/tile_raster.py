"""seg:tileraster: a raster's tile grid as a polygon layer, optionally with image chips."""
from __future__ import annotations

from qgis.core import (
    QgsFillSymbol,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFolderDestination,
    QgsWkbTypes,
)

from ...core.outputs import CHIP_FORMATS
from ...qgis_adapters.crs import crs_from_core
from ...qgis_adapters.sinks import add_features, make_fields
from .base import SegAlgorithm


class OutlineOnly(QgsProcessingLayerPostProcessorInterface):
    """Draws the tile index as outlines, so the imagery under it stays visible."""

    instance = None  # QGIS keeps only a pointer: the post-processor must outlive the algorithm

    @classmethod
    def create(cls):
        cls.instance = cls()
        return cls.instance

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API)
        symbol = QgsFillSymbol.createSimple({"color": "0,0,0,0", "outline_color": "255,140,0,255", "outline_width": "0.4"})
        layer.renderer().setSymbol(symbol)
        layer.triggerRepaint()


class TileRasterAlgorithm(SegAlgorithm):
    CHIPS = "CHIPS"
    CHIP_FORMAT = "CHIP_FORMAT"
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"
    SKIP_NODATA = "SKIP_NODATA"
    TILE_COUNT = "TILE_COUNT"

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
        self.add_raster(self.INPUT, self.tr("Raster"))
        self.add_tiling(1024, 256)
        self.add_bool(self.SKIP_NODATA, "Skip tiles that are all nodata", True)
        self.add_aoi()
        self.addParameter(QgsProcessingParameterEnum(self.CHIP_FORMAT, self.tr("Chip format"), list(CHIP_FORMATS), defaultValue=0))
        self.addParameter(QgsProcessingParameterFolderDestination(self.CHIPS, self.tr("Image chips folder"), optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Tile index")))
        self.addOutput(QgsProcessingOutputNumber(self.TILE_COUNT, self.tr("Number of tiles")))

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.geo.raster import RasterSource
        from ...core.batch.tile_index import TILE_FIELDS, tile_index
        from ...core.geo.tiling import Tiling, scale_for_gsd

        raster = self.raster_path(parameters, self.INPUT, context)
        tile, overlap, gsd = self.tiling(parameters, context)
        with RasterSource(raster) as src:
            scale, crs = scale_for_gsd(src.info().resolution[0], gsd), src.crs.to_wkt()
        chips = self.parameterAsFileOutput(parameters, self.CHIPS, context) if parameters.get(self.CHIPS) else ""
        chip_format = CHIP_FORMATS[self.parameterAsEnum(parameters, self.CHIP_FORMAT, context)]
        records = tile_index(raster, Tiling(tile, overlap, scale), self.aoi(parameters, context, raster),
                             self.parameterAsBool(parameters, self.SKIP_NODATA, context), chips or None, chip_format, progress=progress)
        fields = make_fields(TILE_FIELDS)
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, fields, QgsWkbTypes.Type.Polygon, crs_from_core(crs))
        add_features(sink, fields, records, multi=False)
        if context.willLoadLayerOnCompletion(dest):
            context.layerToLoadOnCompletionDetails(dest).setPostProcessor(OutlineOnly.create())
        feedback.pushInfo(f"{len(records)} tiles" + (f", chips in {chips}" if chips else ""))
        return {self.OUTPUT: dest, self.CHIPS: chips or None, self.TILE_COUNT: len(records)}
