"""seg:propagatelabels: carry labels of one date through rasters of other dates."""
from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from .base import SegAlgorithm, split_tags
from .job_sinks import LayerSink
from .temporal import date_outputs, date_rasters



class PropagateLabelsAlgorithm(SegAlgorithm):
    CLASSES = "CLASSES"
    DATES = "DATES"
    FOUND = "FOUND"
    LOST = "LOST"
    INDEX_BANDS = "INDEX_BANDS"
    MIN_SCORE = "MIN_SCORE"
    ONTOLOGY = "ONTOLOGY"
    OUTPUT = "OUTPUT"
    OUTSIDE = "OUTSIDE"
    RASTERS = "RASTERS"
    SIMPLIFY = "SIMPLIFY"
    START_DATE = "START_DATE"
    TAGS = "TAGS"
    UNCERTAIN = "UNCERTAIN"

    ALG_ID = "propagatelabels"
    DISPLAY = "Propagate labels through dates"
    GROUP = "Time series"
    GROUP_ID = "timeseries"
    HELP = ("Carries labels drawn on one date to rasters of other dates of the same area, like `seg propagate`. Each "
            "object's outline on the latest date it was found becomes the prompt on the next date (its box, grown a little, "
            "and interior points that still look like it), and the answer becomes its label there.\n\n"
            "The output holds the whole series in one layer, the starting labels included, with track_id (one per object), "
            "date (ISO 8601), status, similarity and reason. Each answer is judged from evidence: how the object's inside "
            "compares with itself on the previous date once its surroundings' change is removed, the model's score and area, "
            "and, where the class names a spectral index (the ontology's \"index\", or a name such as water or tree) and the "
            "raster has red, green and near-infrared bands, NDWI or NDVI. Status kept: the answer is its outline there; lost: "
            "something says it is gone; uncertain: the model is unsure and nothing says it is gone (both keep the previous "
            "outline); outside: off a raster. The layer is temporal: the Temporal Controller plays the series.\n\n"
            "A raster's date comes from the Dates parameter, else its metadata (TIFFTAG_DATETIME, ACQUISITIONDATETIME, DATE), "
            "else a YYYYMMDD or YYYY-MM-DD in its file name; a label's from its date field, else the start date. Include the "
            "raster the labels were drawn on so lost objects are told by their look from the first step on.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFeatureSource(self.INPUT, self.tr("Labels"), [QgsProcessing.SourceType.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterMultipleLayers(self.RASTERS, self.tr("Rasters of the dates"), QgsProcessing.SourceType.TypeRaster))
        self.addParameter(QgsProcessingParameterString(self.DATES, self.tr("Dates of the rasters, in their order (YYYY-MM-DD, comma separated; empty = from the rasters)"), optional=True))
        self.addParameter(QgsProcessingParameterString(self.START_DATE, self.tr("Date of labels without one (YYYY-MM-DD)"), optional=True))
        self.addParameter(QgsProcessingParameterString(self.CLASSES, self.tr("Only these classes (comma separated; empty = all)"), optional=True))
        self.addParameter(QgsProcessingParameterString(self.TAGS, self.tr("Tags for every propagated feature (key=value, comma separated)"), optional=True))
        self.add_backend()
        self.add_model(checkpoint_optional=True)
        self.add_tiling(1024, 256)
        self.addParameter(QgsProcessingParameterFile(self.ONTOLOGY, self.tr("Ontology (classes may name their index: ndwi, ndvi)"),
                                                     QgsProcessingParameterFile.Behavior.File, "json", optional=True))
        self.addParameter(QgsProcessingParameterString(self.INDEX_BANDS, self.tr("Red, green and near-infrared bands for the index check "
                                                                                 "(e.g. 1,2,4; empty = from the raster)"), optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.MIN_SCORE, self.tr("Answers scored lower are not trusted"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.5, minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(self.SIMPLIFY, self.tr("Simplify outlines (map units; 0 = none)"),
                                                       QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Labels through time")))
        for name, text in ((self.FOUND, "Objects kept"), (self.LOST, "Objects lost"), (self.UNCERTAIN, "Objects uncertain"),
                           (self.OUTSIDE, "Objects outside a raster")):
            self.addOutput(QgsProcessingOutputNumber(name, self.tr(text)))
        self._dest, self._series = None, []

    def run_seg(self, parameters, context, feedback, progress):
        from ...core.jobs import propagate
        from ...core.timeseries.propagate import TRACK_FIELDS
        from ...qgis_adapters.layers import raster_layer_path, source_to_labels

        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            from qgis.core import QgsProcessingException

            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        rasters = [raster_layer_path(layer) for layer in self.parameterAsLayerList(parameters, self.RASTERS, context)]
        classic = self.backend_is_classic(parameters, context)
        tile, overlap, gsd = self.tiling(parameters, context)
        bands, stretch = self.radiometry_choice(parameters, context)
        request = propagate.Request(
            source_to_labels(source, feedback), rasters, dates=self.parameterAsString(parameters, self.DATES, context) or None,
            start_date=self.parameterAsString(parameters, self.START_DATE, context).strip() or None,
            classes=self.parameterAsString(parameters, self.CLASSES, context) or None,
            tags=split_tags(self.parameterAsString(parameters, self.TAGS, context)),
            min_score=self.parameterAsDouble(parameters, self.MIN_SCORE, context),
            simplify=self.parameterAsDouble(parameters, self.SIMPLIFY, context),
            ontology=self.parameterAsFile(parameters, self.ONTOLOGY, context) or None,
            index_bands=self.parameterAsString(parameters, self.INDEX_BANDS, context).strip() or None, bands=bands, stretch=stretch, tile=tile,
            overlap=overlap, gsd=gsd, **self.model_fields(parameters, context, classic=classic))
        sink = LayerSink(self, parameters, context, self.OUTPUT, TRACK_FIELDS)
        result = propagate.run(request, progress, sink)
        for note in result.notes:
            feedback.pushInfo(note)
        feedback.pushInfo(propagate.summary_line(result, None))
        self._dest, self._series = sink.destination(result.details["crs"]), result.details["series"]
        counts = result.details["counts"]
        return {self.OUTPUT: self._dest, self.FOUND: counts["kept"], self.LOST: counts["lost"], self.UNCERTAIN: counts["uncertain"],
                self.OUTSIDE: counts["outside"]}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        date_outputs(context, self._dest)
        date_rasters(self._series, context.project())
        return {}

