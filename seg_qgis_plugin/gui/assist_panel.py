"""The flywheel in the dock: "Learn from accepted labels".

Trains the assistant on the target layer's accepted (and reviewed) features over the dock's
raster and pre-labels the current view or the whole raster in a QgsTask (progress and cancel in
QGIS's task manager). Each run writes a new GeoPackage of pre-labels, a probability and an
uncertainty raster and the model (JSON) beside the target layer and adds them to the project (the
probability unticked); after review, the next run learns from more accepted labels and does better.

Interpretability: "Explain selected" shows, for the selected feature of the active layer, its class,
score (mean probability), the uncertainty under it, the prompt and window it came from, and the
assistant's most important features.

Background: the class named "background" (any case) in the dock's class list (e.g. from the
ontology), else in the labels; a class list without one gets it added, and the panel says so.

The engine runs on one long-lived thread (pyproj's context must stay on one thread; see worker.py).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateTransform,
    QgsMessageLog,
    QgsProject,
    QgsRasterLayer,
    QgsTask,
    QgsVectorLayer,
)
from qgis.PyQt.QtWidgets import QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton

from ..core.errors import Canceled, SegError
from .classes import LabelClass

LOG_TAG = "Seg"
BACKGROUND = "background"
BACKGROUND_COLOR = "#9e9e9e"
START_TEXT = "Accept a few small labels of every class and of a 'background' class, then learn."
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seg-assist")


class _TaskProgress:
    def __init__(self, task: QgsTask):
        self.task = task

    def set_progress(self, percent: float) -> None:
        self.task.setProgress(min(float(percent), 99.0))

    def is_canceled(self) -> bool:
        return self.task.isCanceled()


class AssistTask(QgsTask):
    """Runs `job(progress)` on the assistant's thread; `done(result, error)` on the UI thread."""

    def __init__(self, description: str, job, done):
        super().__init__(description, QgsTask.Flag.CanCancel)
        self.job, self.done = job, done
        self.result, self.error = None, None

    def run(self) -> bool:
        try:
            self.result = _EXECUTOR.submit(self.job, _TaskProgress(self)).result()
            return True
        except Exception as exc:  # shown in finished(), on the UI thread
            self.error = exc
            return False

    def finished(self, ok: bool) -> None:
        self.done(self.result, self.error)


class AssistPanel(QGroupBox):
    """Reads the raster and target layer from `dock` (its raster_combo and target_combo)."""

    def __init__(self, dock, canvas=None):
        super().__init__("Assistant: learn from accepted labels", dock)
        self.setObjectName("SegAssistPanel")
        self.dock, self.canvas = dock, canvas
        self.task: Optional[AssistTask] = None
        self.model_path = ""
        self.uncertainty_path = ""
        form = QFormLayout(self)
        self.scope = QComboBox()
        self.scope.addItem("Current view", "view")
        self.scope.addItem("Whole raster", "raster")
        form.addRow("Pre-label", self.scope)
        buttons = QHBoxLayout()
        self.learn_button = QPushButton("Learn from accepted labels")
        self.learn_button.setToolTip("Train on the target layer's accepted features and pre-label (a QGIS task)")
        self.learn_button.clicked.connect(self.learn)
        self.explain_button = QPushButton("Explain selected")
        self.explain_button.setToolTip("Probability, uncertainty, provenance and the assistant's feature importances")
        self.explain_button.clicked.connect(self.explain)
        buttons.addWidget(self.learn_button)
        buttons.addWidget(self.explain_button)
        form.addRow(buttons)
        self.info = QLabel(START_TEXT)
        self.info.setObjectName("SegAssistInfo")
        self.info.setWordWrap(True)
        form.addRow(self.info)
        QgsProject.instance().cleared.connect(self.project_cleared)  # a bound slot: disconnected when the panel goes

    def project_cleared(self) -> None:
        """A new project: forget the last run's model and rasters."""
        self.model_path = self.uncertainty_path = ""
        self.info.setText(START_TEXT)

    def learn(self) -> None:
        from ..qgis_adapters.layers import raster_layer_path

        raster_layer = self.dock.raster_combo.currentLayer()
        target = self.dock.target_combo.currentLayer()
        if raster_layer is None or not isinstance(target, QgsVectorLayer):
            self.info.setText("Choose a raster and a target layer with accepted labels first.")
            return
        if self.task is not None:
            self.info.setText("The assistant is already running.")
            return
        raster = raster_layer_path(raster_layer)
        labels_path = target.source().split("|")[0]
        folder = os.path.dirname(labels_path) if os.path.isfile(labels_path) else QgsProject.instance().homePath() or os.getcwd()
        stem = os.path.join(folder, _free_stem(folder, os.path.splitext(os.path.basename(labels_path))[0] + "_assist"))
        region = self._view_region(raster_layer) if self.scope.currentData() == "view" else None
        labels = _layer_labels(target)
        background, note = self.background_class(labels)
        if background is None:
            self.info.setText(note + "Accept a few small labels of 'background' (what is none of your classes), then learn.")
            return
        paths = {"out": stem + ".gpkg", "probability": stem + "_probability.tif", "uncertainty": stem + "_uncertainty.tif",
                 "save_model": stem + "_model.json"}

        def job(progress):
            from ..core.jobs import assist

            request = assist.Request(raster, labels=labels, status=("accepted", "reviewed"), region=region,
                                     background=background, **paths)
            return assist.run(request, progress)  # the same job as `seg assist` and seg:assist

        self.task = AssistTask("Seg: learn from accepted labels", job,
                               lambda result, error: self._finished(result, error, paths, note))
        self.learn_button.setEnabled(False)
        self.info.setText(note + "Learning and pre-labeling…")
        QgsApplication.taskManager().addTask(self.task)

    def _view_region(self, raster_layer: QgsRasterLayer):
        """The canvas extent as a raster pixel window (col, row, width, height), or None."""
        canvas = self.canvas
        if canvas is None:
            return None
        extent = canvas.extent()
        transform = QgsCoordinateTransform(canvas.mapSettings().destinationCrs(), raster_layer.crs(), QgsProject.instance())
        box = transform.transformBoundingBox(extent).intersect(raster_layer.extent())
        if box.isEmpty():
            return None
        full = raster_layer.extent()
        px, py = raster_layer.rasterUnitsPerPixelX(), raster_layer.rasterUnitsPerPixelY()
        c0, r0 = int((box.xMinimum() - full.xMinimum()) / px), int((full.yMaximum() - box.yMaximum()) / py)
        c1, r1 = int((box.xMaximum() - full.xMinimum()) / px + 0.999), int((full.yMaximum() - box.yMinimum()) / py + 0.999)
        c1, r1 = min(c1, raster_layer.width()), min(r1, raster_layer.height())
        return (c0, r0, c1 - c0, r1 - r0) if c1 > c0 and r1 > r0 else None

    def background_class(self, labels):
        """(the background class name or None, a note): the dock's class named background (e.g. from
        the ontology), else the labels' one; a dock class list without one gets it added, and the note says so."""
        listed = [c.name for c in self.dock.classes()] if hasattr(self.dock, "classes") else []
        labelled = sorted({str(lab.attributes.get("class") or "") for lab in labels})
        name = next((n for n in listed + labelled if n.strip().lower() == BACKGROUND), None)
        note = ""
        if hasattr(self.dock, "add_class_row") and not any(n.strip().lower() == BACKGROUND for n in listed):
            self.dock.add_class_row(LabelClass(name or BACKGROUND, BACKGROUND_COLOR))
            note = "Added a 'background' class to the class list. "
        return name, note

    def _finished(self, summary, error, paths, note="") -> None:
        self.task = None
        self.learn_button.setEnabled(True)
        if error is not None or summary is None:
            if isinstance(error, Canceled) or error is None:
                self.info.setText("Canceled; nothing was written.")
            elif isinstance(error, SegError):
                self.info.setText(f"<b>Problem:</b> {error}")
            else:
                QgsMessageLog.logMessage(f"The assistant failed: {type(error).__name__}: {error}", LOG_TAG, Qgis.MessageLevel.Critical)
                self.info.setText(f"<b>Problem:</b> {type(error).__name__}: {error} (the Seg log has the details)")
            return
        self.model_path, self.uncertainty_path = paths["save_model"], paths["uncertainty"]
        project = QgsProject.instance()
        name = os.path.splitext(os.path.basename(paths["out"]))[0]
        probability = QgsRasterLayer(paths["probability"], name + " probability")
        project.addMapLayer(probability, False)  # in the legend, unticked: the uncertainty says where to look
        project.layerTreeRoot().insertLayer(0, probability).setItemVisibilityChecked(False)
        project.addMapLayer(QgsRasterLayer(paths["uncertainty"], name + " uncertainty"))
        project.addMapLayer(QgsVectorLayer(paths["out"], name, "ogr"))
        pixels = ", ".join(f"{k} {v}" for k, v in summary.details["learned_pixels"].items())
        found = ", ".join(f"{k} {v}" for k, v in summary.details["per_class"].items())
        self.info.setText(f"{note}Learned from {pixels} px; pre-labels: {found}. Review them, accept the good ones, learn again.")

    def explain(self) -> None:
        from ..core.assist.classifier import top_importances

        layer = _active_vector_layer(self.canvas) or self.dock.target_combo.currentLayer()
        feature = next(iter(layer.selectedFeatures()), None) if isinstance(layer, QgsVectorLayer) else None
        lines = []
        if feature is None:
            lines.append("Select one feature of a pre-label layer to explain it.")
        else:
            names = feature.fields().names()
            get = lambda n: feature[n] if n in names else None  # noqa: E731
            lines.append(f"<b>{get('class')}</b>: score (mean probability) {_fmt(get('score'))}, status {get('status')}")
            unc = self._uncertainty_at(layer, feature)
            if unc is not None:
                lines.append(f"uncertainty under it: {unc:.2f} (0 sure, 1 unsure)")
            lines.append(f"from: {get('prompt_type') or '?'} prompt(s) {get('prompt_count') or ''}, window {get('window') or '?'}, "
                         f"model {get('model') or '?'}, raster {get('source') or '?'}")
        if self.model_path and os.path.isfile(self.model_path):
            from ..core.assist.classifier import load_model

            try:
                model = load_model(self.model_path)
                lines.append("assistant's most important features: " +
                             ", ".join(f"{n} {s:.0%}" for n, s in top_importances(model, 6)))
            except SegError as exc:
                lines.append(str(exc))
        self.info.setText("<br>".join(lines))

    def _uncertainty_at(self, layer, feature) -> Optional[float]:
        if not self.uncertainty_path or not os.path.isfile(self.uncertainty_path):
            return None
        raster = QgsRasterLayer(self.uncertainty_path, "u")
        point = feature.geometry().pointOnSurface().asPoint()
        point = QgsCoordinateTransform(layer.crs(), raster.crs(), QgsProject.instance()).transform(point)
        value, ok = raster.dataProvider().sample(point, 1)
        return float(value) if ok and value >= 0 else None


def optional_assist_panel(dock, canvas=None) -> Optional[AssistPanel]:
    """The panel, or None (with a log line) when it cannot be built, so the dock still opens."""
    try:
        if canvas is None:
            from qgis.utils import iface

            canvas = iface.mapCanvas() if iface is not None else None
        return AssistPanel(dock, canvas)
    except Exception as exc:  # a missing optional piece must not take the dock down
        QgsMessageLog.logMessage(f"The assistant panel is off: {type(exc).__name__}: {exc}", LOG_TAG, Qgis.MessageLevel.Warning)
        return None


def _layer_labels(layer: QgsVectorLayer):
    from ..core.engine.labels import Label
    from ..qgis_adapters.crs import crs_to_core
    from ..qgis_adapters.geometry import to_shapely
    from ..qgis_adapters.layers import plain

    crs = crs_to_core(layer.crs())
    names = layer.fields().names()
    return [Label(to_shapely(f.geometry()), crs, {n: plain(v) for n, v in zip(names, f.attributes())})
            for f in layer.getFeatures() if f.hasGeometry()]


def _active_vector_layer(canvas):
    try:
        from qgis.utils import iface

        layer = iface.activeLayer() if iface is not None else None
    except Exception:
        layer = None
    return layer if isinstance(layer, QgsVectorLayer) and layer.selectedFeatureCount() else None


def _free_stem(folder: str, stem: str) -> str:
    n = 1
    while any(os.path.exists(os.path.join(folder, f"{stem}{n}{ext}")) for ext in (".gpkg", "_model.json")):
        n += 1
    return f"{stem}{n}"


def _fmt(value) -> str:
    try:
        return f"{float(value):.2f}"
    except (TypeError, ValueError):
        return "?"
