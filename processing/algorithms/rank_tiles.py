"""seg:ranktiles: the tiles to label next, ranked by how much labeling them would help."""
from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsWkbTypes,
)

from .base import SegAlgorithm


class RankTilesAlgorithm(SegAlgorithm):
    LABELS = "LABELS"
    MODEL = "MODEL"
    OUTPUT = "OUTPUT"
    TOP = "TOP"
    UNCERTAINTY = "UNCERTAINTY"

    ALG_ID = "ranktiles"
    DISPLAY = "Rank tiles to label next"
    GROUP = "Assistant"
    GROUP_ID = "assistant"
    HELP = ("Ranks the raster's tiles by how much labeling them would help: priority = mean uncertainty x share not yet "
            "labelled x (0.5 + 0.5 x diversity), where diversity is how unlike the tiles already labelled or already chosen "
            "a tile looks. The uncertainty comes from an uncertainty raster made by the assistant on this raster's grid, or "
            "from a saved assistant model run on every tile. Writes the top N tiles as squares with their rank (1 first).")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Raster")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.UNCERTAINTY, self.tr("Uncertainty raster (from the assistant)"), optional=True))
        self.addParameter(QgsProcessingParameterFile(self.MODEL, self.tr("Or: saved assistant model (.json)"),
                                                     QgsProcessingParameterFile.Behavior.File, "json", optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.LABELS, self.tr("Labels already made"), [QgsProcessing.SourceType.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.TOP, self.tr("Number of tiles"), QgsProcessingParameterNumber.Type.Integer, 20, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(self.TILE, self.tr("Tile size (pixels)"), QgsProcessingParameterNumber.Type.Integer, 256, minValue=16))
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Next tiles")))

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.assist.rank import RANK_FIELDS
        from ...core.geo.raster import RasterSource
        from ...core.jobs import rank_tiles
        from ...qgis_adapters.crs import crs_from_core
        from ...qgis_adapters.layers import raster_layer_path, source_to_labels
        from ...qgis_adapters.sinks import FeatureSinkAdapter, make_fields

        raster = self.raster_path(parameters, self.INPUT, context)
        unc_layer = self.parameterAsRasterLayer(parameters, self.UNCERTAINTY, context)
        model_path = self.parameterAsFile(parameters, self.MODEL, context) or None
        if (unc_layer is None) == (model_path is None):
            raise QgsProcessingException(self.tr("Give either an uncertainty raster or a saved model, not both or neither."))
        if model_path:
            from ... import deps

            missing = deps.missing(("assist",))
            if missing:
                raise QgsProcessingException(self.tr("Ranking with a saved model needs {}; install it from the Seg dock "
                                                     "(Install dependencies).").format(", ".join(missing)))
        source = self.parameterAsSource(parameters, self.LABELS, context)
        request = rank_tiles.Request(
            raster, uncertainty=raster_layer_path(unc_layer) if unc_layer is not None else None, model=model_path,
            labels=source_to_labels(source, feedback) if source is not None else None,
            top=self.parameterAsInt(parameters, self.TOP, context), tile=self.parameterAsInt(parameters, self.TILE, context))
        with RasterSource(raster) as src:
            crs = src.crs.to_wkt()
        fields = make_fields([(name, kind) for name, kind, _ in RANK_FIELDS])
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, fields, QgsWkbTypes.Type.Polygon, crs_from_core(crs))
        result = rank_tiles.run(request, progress, FeatureSinkAdapter(sink, fields, multi=False))
        feedback.pushInfo(result.details["table"])
        feedback.pushInfo(f"{result.count} tiles ranked")
        return {self.OUTPUT: dest}
