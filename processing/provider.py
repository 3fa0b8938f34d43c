"""SegProvider: Seg's algorithms in the Processing toolbox, the graphical modeler and qgis_process.

Algorithm modules import only QGIS and the standard library at load; the engine and its packages
are imported when an algorithm runs, and `canExecute()` says what is missing. So the provider
loads in a QGIS that has none of Seg's packages yet.
"""
from __future__ import annotations

import importlib
import os

from qgis.core import Qgis, QgsMessageLog, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

# (module under algorithms/, class name)
ALGORITHMS = (
    ("tile_raster", "TileRasterAlgorithm"),
    ("encode_raster", "EncodeRasterAlgorithm"),
    ("prelabel", "PrelabelAlgorithm"),
    ("polygonize_masks", "PolygonizeMasksAlgorithm"),
    ("rasterize_labels", "RasterizeLabelsAlgorithm"),
    ("export_training_data", "ExportTrainingDataAlgorithm"),
    ("propagate_labels", "PropagateLabelsAlgorithm"),
    ("change_report", "ChangeReportAlgorithm"),
    ("drift_map", "DriftMapAlgorithm"),
    ("label_qa", "LabelQaAlgorithm"),
    ("agreement", "AgreementAlgorithm"),
    ("assist", "AssistAlgorithm"),
    ("rank_tiles", "RankTilesAlgorithm"),
)


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
        for module_name, class_name in ALGORITHMS:
            try:
                algorithm = getattr(importlib.import_module(f".algorithms.{module_name}", __package__), class_name)
            except Exception as exc:  # one broken algorithm must not take the provider (or QGIS) down
                QgsMessageLog.logMessage(f"Seg could not load the algorithm {module_name}: {type(exc).__name__}: {exc}",
                                         "Seg", Qgis.MessageLevel.Warning)
                continue
            self.addAlgorithm(algorithm())
