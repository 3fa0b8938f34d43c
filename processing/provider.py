"""SegProvider: Seg's algorithms in the Processing toolbox, the graphical modeler and qgis_process."""
from __future__ import annotations

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms.encode_raster import EncodeRasterAlgorithm
from .algorithms.export_training_data import ExportTrainingDataAlgorithm
from .algorithms.polygonize_masks import PolygonizeMasksAlgorithm
from .algorithms.prelabel import PrelabelAlgorithm
from .algorithms.rasterize_labels import RasterizeLabelsAlgorithm
from .algorithms.tile_raster import TileRasterAlgorithm

ALGORITHMS = (TileRasterAlgorithm, EncodeRasterAlgorithm, PrelabelAlgorithm, PolygonizeMasksAlgorithm,
              RasterizeLabelsAlgorithm, ExportTrainingDataAlgorithm)


class SegProvider(QgsProcessingProvider):
    """Provider id "seg": algorithm ids are seg:<name> and never change once released."""

    def id(self):
        return "seg"

    def name(self):
        return "Seg"

    def longName(self):  # noqa: N802 (QGIS API)
        return "Seg: Segment Anything for maps"

    def icon(self):
        from .. import __file__ as package_file

        return QIcon(os.path.join(os.path.dirname(package_file), "icon.svg"))

    def loadAlgorithms(self):  # noqa: N802
        for algorithm in ALGORITHMS:
            self.addAlgorithm(algorithm())
