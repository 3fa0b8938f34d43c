"""The labeling controller: owns the Segmenter, turns map-tool prompts into masks and masks into
features.

Map tools and shortcuts call `add_point`, `set_box`, `hover`, `accept`, `clear`, `undo`, `redo`;
the dock calls `start_session`, `set_target_layer`, `set_label_class`, `set_tags`. Every model call (opening a
session, encoding, decoding) runs in a `ModelWorker` task, never in the UI thread; results come
back here on the UI thread and are drawn as rubber bands (`MaskPreview`).

CRSs: prompts are kept in the canvas CRS and sent with it (the core reprojects them to the raster);
masks come back in the raster CRS and are transformed to the canvas CRS for the preview and to the
target layer's CRS when accepted. The three may all differ.

Messages: `statusChanged` carries the state of the object being labeled (the dock's status line);
`backgroundChanged` carries what runs in the background (encoding ahead), shown apart so it never
replaces the status. Nothing third-party is imported until a session opens.

The hover preview, encoding ahead and the canvas-raster helpers are gui/canvas_raster.py (mixed in);
opening a session in the background is `session.open_session`.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional

from qgis.core import QgsPointXY, QgsProject, QgsRectangle, QgsVectorLayer
from qgis.PyQt.QtCore import QObject, QTimer, pyqtSignal
from qgis.PyQt.QtGui import QColor

from ..core.errors import PromptError, SegError
from ..qgis_adapters.crs import crs_from_core
from .canvas_raster import ENCODE_AHEAD_TILES, CanvasRaster
from .classes import LabelClass
from .label_layer import add_label, check_label_layer, style_by_class
from .preview import MaskPreview
from .prompt_state import PromptState, Step
from .session import SessionConfig, open_session
from .worker import Job, ModelWorker, error_message, log_problem

__all__ = ["ENCODE_AHEAD_DELAY_MS", "ENCODE_AHEAD_TILES", "LOW_SCORE", "SegController", "open_session"]

ENCODE_AHEAD_DELAY_MS = 600  # wait for the view to settle after a pan or zoom
LOW_SCORE = 0.5  # below this predicted IoU the status warns before the mask is accepted


class SegController(CanvasRaster, QObject):
    statusChanged = pyqtSignal(str)
    backgroundChanged = pyqtSignal(str)
    errorRaised = pyqtSignal(str)
    sessionChanged = pyqtSignal(bool)
    previewChanged = pyqtSignal()
    featureAdded = pyqtSignal(int)

    def __init__(self, canvas, project=None, backend_factory: Optional[Callable] = None, parent=None):
        """backend_factory(config) -> model session replaces open_backend (tests inject an oracle)."""
        super().__init__(parent)
        self.canvas = canvas
        self.project = project or QgsProject.instance()
        self.backend_factory = backend_factory
        self.segmenter = None
        self.target_layer: Optional[QgsVectorLayer] = None
        self.label_class: Optional[LabelClass] = None  # none until the user adds a class or loads an ontology
        self.classes: List[LabelClass] = []
        self.tags: Dict[str, str] = {}
        self._hover_enabled = False
        self.session_config: Optional[SessionConfig] = None  # the last session asked for (opened or not)
        self.steps: List[Step] = []
        self._redo: List[Step] = []
        self._accept_when_decoded = False
        self._raster_crs = None
        self.label_filter: Optional[Callable] = None  # (Label, Segmentation) -> Label, just before a label is written
        # () -> None or a thread-safe Segmentation -> polygon or None, run in the background after each decode
        # instead of plain vectorizing (e.g. shared borders, gui/ontology_panel.py): the preview shows what accept writes
        self.border_cutter: Optional[Callable] = None
        self.worker = ModelWorker(self)
        self.worker.errorRaised.connect(self.errorRaised)
        self.preview = MaskPreview(canvas)
        self._encode_timer = QTimer(self)
        self._encode_timer.setSingleShot(True)
        self._encode_timer.setInterval(ENCODE_AHEAD_DELAY_MS)
        self._encode_timer.timeout.connect(self.encode_view)
        canvas.extentsChanged.connect(self._encode_timer.start)
        canvas.destinationCrsChanged.connect(self.clear)

    # -- session ------------------------------------------------------------------------------

    def start_session(self, config: SessionConfig) -> None:
        """Open the raster and the model in the background; `sessionChanged(True)` when ready."""
        self.clear()
        self.segmenter = None
        self.session_config = config
        self.backgroundChanged.emit("")
        self.sessionChanged.emit(False)
        self.statusChanged.emit("Opening the raster and the model...")
        factory = self.backend_factory
        self.worker.submit(Job("open", "opening the model and raster", lambda progress: open_session(config, factory),
                               self._session_opened, self._session_failed))

    def _session_opened(self, opened) -> None:
        segmenter, raster_wkt = opened
        self.segmenter = segmenter
        self._raster_crs = crs_from_core(raster_wkt)
        self.statusChanged.emit(f"Ready: {segmenter.backend.model_id} on {os.path.basename(segmenter.source.path)}. "
                                "Click an object.")
        self.sessionChanged.emit(True)
        self.encode_view()

    def _session_failed(self, error: Exception) -> None:
        self.statusChanged.emit("No session: " + error_message(error))
        self.errorRaised.emit(error_message(error))

    @property
    def ready(self) -> bool:
        return self.segmenter is not None

    @property
    def is_idle(self) -> bool:
        return self.worker.is_idle

    def shutdown(self) -> None:
        """Cancel running work and take everything off the canvas (plugin unload)."""
        self._encode_timer.stop()
        for signal, slot in ((self.canvas.extentsChanged, self._encode_timer.start), (self.canvas.destinationCrsChanged, self.clear)):
            try:
                signal.disconnect(slot)
            except TypeError:
                pass
        self.worker.close()
        self.preview.remove()
        self.segmenter = None

    # -- what the dock sets -------------------------------------------------------------------

    def set_target_layer(self, layer: Optional[QgsVectorLayer]) -> None:
        if layer is not None:
            check_label_layer(layer)
            style_by_class(layer, self.classes)
        self.target_layer = layer

    def set_classes(self, classes: List[LabelClass]) -> None:
        self.classes = list(classes)
        if self.target_layer is not None:
            style_by_class(self.target_layer, self.classes)

    def set_label_class(self, label_class: Optional[LabelClass]) -> None:
        self.label_class = label_class
        if label_class is not None:
            self.preview.set_color(QColor(label_class.color))

    def set_tags(self, tags: Dict[str, str]) -> None:
        self.tags = dict(tags)

    @property
    def hover_enabled(self) -> bool:
        return self._hover_enabled

    @hover_enabled.setter
    def hover_enabled(self, on: bool) -> None:
        """Switching hover off takes its overlay off the canvas at once."""
        self._hover_enabled = bool(on)
        if not on:
            self.worker.drop("hover")
            self.preview.show_hover(None)

    # -- prompts ------------------------------------------------------------------------------

    def add_point(self, point: QgsPointXY, positive: bool = True) -> None:
        """A click at `point` (canvas CRS): positive = on the object, else background."""
        self._push(self._state().with_point(point.x(), point.y(), positive))

    def set_box(self, rect: QgsRectangle) -> None:
        """A dragged box (canvas CRS) around the object; it combines with the points."""
        if rect.width() <= 0 or rect.height() <= 0:
            return
        self._push(self._state().with_box(rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()))

    def undo(self) -> str:
        """Ctrl+Z: drop the last prompt; with no prompt left, undo the last accepted feature on
        the target layer's undo stack. Returns what was undone ("prompt", "feature" or "")."""
        if self.steps:
            self._redo.append(self.steps.pop())
            self._accept_when_decoded = False
            self._show_latest()
            return "prompt"
        stack = self.target_layer.undoStack() if self.target_layer is not None else None
        if stack is not None and stack.canUndo():
            stack.undo()
            self.statusChanged.emit(f"Removed the last accepted feature from {self.target_layer.name()}; "
                                    "Ctrl+Shift+Z puts it back.")
            return "feature"
        self.statusChanged.emit("Nothing to undo.")
        return ""

    def redo(self) -> str:
        """Ctrl+Shift+Z: bring back the last undone prompt (its mask is kept), or, with none, the
        last undone feature. Returns what was redone ("prompt", "feature" or "")."""
        if self._redo and self.ready:
            self.steps.append(self._redo.pop())
            self._show_latest()
            return "prompt"
        stack = self.target_layer.undoStack() if self.target_layer is not None else None
        if not self.steps and stack is not None and stack.canRedo():
            stack.redo()
            self.statusChanged.emit(f"Restored the feature in {self.target_layer.name()}.")
            return "feature"
        self.statusChanged.emit("Nothing to redo.")
        return ""

    def clear(self) -> None:
        """Esc: forget the prompts and the preview (nothing is written)."""
        had_prompts = bool(self.steps)
        self.steps = []
        self._redo = []
        self._accept_when_decoded = False
        self.worker.drop("segment")
        self.preview.clear()
        if had_prompts:
            self.statusChanged.emit("Cleared: click the next object.")
        self.previewChanged.emit()

    def _state(self) -> PromptState:
        return self.steps[-1].state if self.steps else PromptState()

    def _push(self, state: PromptState) -> None:
        if not self.ready:
            self.errorRaised.emit("Start a session first: choose a raster and a model in the Seg dock, then press Start.")
            return
        if 1 not in state.labels and state.box is None:
            self.errorRaised.emit("Start with a point on the object (left click) or a box; a background point alone "
                                  "does not say which object.")
            return
        step = Step(state)
        self.steps.append(step)
        self._redo = []
        self.preview.show_hover(None)
        self.preview.show_prompts(state.points, state.labels, state.box)
        self._decode(step)

    def _decode(self, step: Step) -> None:
        segmenter = self.segmenter
        index = self.steps.index(step)
        previous = self.steps[index - 1].segmentation if index > 0 else None
        try:
            prompt = step.state.to_prompt(self._canvas_crs())
            encoded = self._start_tile_encoded(step.state)
        except SegError as exc:
            self._decode_failed(step, exc)
            return
        what = "segmenting" if encoded else "encoding a tile, then segmenting"
        cut = self.border_cutter() if self.border_cutter is not None else None

        def run(progress):
            from ..core.geo.vectorize import mask_to_geometry

            segmentation = segmenter.segment(prompt, previous=previous, progress=progress)
            if cut is not None:
                return segmentation, cut(segmentation)
            return segmentation, mask_to_geometry(segmentation.mask, segmentation.transform)

        self.statusChanged.emit(what.capitalize() + "...")
        self.worker.submit(Job("segment", what, run, lambda result: self._decoded(step, result),
                               lambda error: self._decode_failed(step, error)))

    def _decoded(self, step: Step, result) -> None:
        step.segmentation, step.geometry = result
        step.decoded = True
        if self.steps and step is self.steps[-1]:
            self._show_latest()
            if self._accept_when_decoded:
                self.accept()
        elif step in self.steps:
            self._show_latest()

    def _decode_failed(self, step: Step, error: Exception) -> None:
        if step in self.steps:
            self.steps.remove(step)
        self._accept_when_decoded = False
        self._show_latest()
        message = error_message(error)
        if isinstance(error, PromptError) and message.endswith("outside the raster.") and self.session_config:
            message = (message[:-1] + f" {os.path.basename(self.session_config.raster)}; click inside it, or choose "
                       "another raster in the Seg dock.")
        self.statusChanged.emit(message)
        self.errorRaised.emit(message)

    def _show_latest(self) -> None:
        """Draw the latest step (decoding it again if its job was replaced by a newer one)."""
        if not self.steps:
            self.preview.clear()
            self.statusChanged.emit("No prompt: click an object (or drag a box)." if self.ready else "")
            self.previewChanged.emit()
            return
        step = self.steps[-1]
        self.preview.show_prompts(step.state.points, step.state.labels, step.state.box)
        if not step.decoded:
            if not self.worker.has_job("segment"):
                self._decode(step)
            return
        self.preview.show_mask(self._to_canvas(step.geometry))
        score = float(step.segmentation.score)
        if step.geometry is None:
            self.statusChanged.emit("The mask is empty; add or move a point.")
        elif score < LOW_SCORE:
            self.statusChanged.emit(f"<b>Low score {score:.2f}:</b> the model is unsure of this mask; add a point or a "
                                    "box to correct it, or press Enter to accept it anyway.")
        else:
            self.statusChanged.emit(f"Mask ready (score {score:.2f}). Enter accepts, Esc clears, Ctrl+Z undoes the last "
                                    "prompt.")
        self.previewChanged.emit()

    @property
    def current_step(self) -> Optional[Step]:
        return self.steps[-1] if self.steps else None

    # -- accept -------------------------------------------------------------------------------

    def accept(self) -> Optional[int]:
        """Enter: write the current mask to the target layer now (class, tags, provenance,
        status "accepted"). Returns the feature id, or None (nothing to accept, or decoding still
        running: then it is accepted as soon as the mask arrives)."""
        step = self.current_step
        if step is None:
            self.statusChanged.emit("Nothing to accept: click an object first.")
            return None
        if not step.decoded:
            self._accept_when_decoded = True
            return None
        self._accept_when_decoded = False
        if step.geometry is None:
            self.errorRaised.emit("The mask is empty, or lies entirely under labels already in the layer; nothing to accept.")
            return None
        if self.target_layer is None:
            self.errorRaised.emit("Choose a target layer in the Seg dock (or create a new GeoPackage) before accepting.")
            return None
        review_edit = self.target_layer.customProperty("seg/review_edit", False)  # keeps the feature's own class
        if self.label_class is None and not review_edit:
            self.errorRaised.emit("Choose a class in the Seg dock (Add class, or load an ontology) before saving a label.")
            return None
        try:
            from ..core.engine.labeling import to_label

            class_name = self.label_class.name if self.label_class is not None else "object"
            label = to_label(step.segmentation, self.segmenter, class_name, self.tags, status="accepted",
                             geometry=step.geometry)
            if self.label_filter is not None:  # e.g. class fields (gui/ontology_panel.py)
                label = self.label_filter(label, step.segmentation)
            fid = add_label(self.target_layer, label, self.project)
        except Exception as exc:  # noqa: BLE001 (one sentence for the user; a bug also goes to the log with its traceback)
            self.errorRaised.emit(log_problem(exc, "saving the mask"))
            return None
        if self.label_class is not None and self.label_class.name not in [c.name for c in self.classes]:
            self.set_classes(self.classes + [self.label_class])
        self.clear()
        score = float(step.segmentation.score)
        warning = f" Its score is low ({score:.2f}): check it." if score < LOW_SCORE else ""
        if not self.target_layer.customProperty("seg/review_edit", False):  # a re-prompt: the review panel tells
            self.statusChanged.emit(f"Saved a {self.label_class.name} (feature {fid}) to {self.target_layer.name()}.{warning}")
        self.featureAdded.emit(fid)
        return fid
