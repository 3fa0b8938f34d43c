"""The dock's "Find all" box: type a phrase (SAM 3), or press "Like this" on the selected labels or
the drawn box, and every instance in the view (or the whole raster) arrives as pre-labels in the
target layer, for review. The search runs in the background through core.batch.concepts."""
from __future__ import annotations

from typing import List, Optional

from qgis.PyQt.QtWidgets import QCheckBox, QHBoxLayout, QLineEdit, QPushButton, QWidget

from .worker import Job


def find_all(controller, text: str, like_this: bool, whole_raster: bool) -> bool:
    """Start the search; False (and one sentence through errorRaised) when it cannot start."""
    from ..core.batch.concepts import FindOptions, find_concepts, parse_concepts
    from ..core.errors import SegError

    segmenter, layer = controller.segmenter, controller.target_layer
    if segmenter is None:
        controller.errorRaised.emit("Press Start first: Find all searches the session's raster.")
        return False
    if layer is None:
        controller.errorRaised.emit("Choose a target layer in the Seg dock: the instances found go there as pre-labels.")
        return False
    try:
        concepts = parse_concepts([text] if text.strip() else [])
        examples = examples_for(controller) if like_this else []
        if not concepts and not examples:
            raise SegError("Type a phrase, or select labels (or draw a box) and press Like this.")
    except SegError as exc:
        controller.errorRaised.emit(str(exc))
        return False
    tiles = None if whole_raster else controller._tiles_in_view()
    class_name = controller.label_class.name if controller.label_class is not None else "object"
    options = FindOptions(tags=dict(controller.tags), class_name=class_name)

    def run(progress):
        return find_concepts(segmenter, concepts, examples, tiles, options, progress).labels

    what = f"finding every {text.strip() or 'look-alike'}" + (" on the raster" if whole_raster else " in the view")
    controller.statusChanged.emit(what.capitalize() + "...")
    controller.worker.submit(Job("find", what, run, lambda labels: _found(controller, layer, labels),
                                 lambda error: controller.errorRaised.emit(_message(error))))
    return True


def examples_for(controller) -> List:
    """The selected features of the target layer, else the drawn box, as positive Examples."""
    from shapely.geometry import box

    from ..core.batch.concepts import Example
    from ..core.errors import SegError
    from ..qgis_adapters.geometry import to_shapely

    layer = controller.target_layer
    selected = list(layer.selectedFeatures()) if layer is not None else []
    if selected:
        crs = layer.crs().toWkt()
        return [Example(to_shapely(f.geometry()), crs) for f in selected if not f.geometry().isEmpty()]
    state = controller._state()
    if state.box is not None:
        return [Example(box(*state.box), controller._canvas_crs())]
    raise SegError("Like this needs an example: select labels in the target layer, or draw a box around one object.")


def _found(controller, layer, labels) -> None:
    from .label_layer import add_label

    for label in labels:
        add_label(layer, label, controller.project)
    controller.statusChanged.emit(f"Found {len(labels)} object(s); added to {layer.name()} as pre-labels for review."
                                  if labels else "Found nothing like that here; try the whole raster or another example.")


def _message(error: Exception) -> str:
    from ..core.errors import SegError

    return str(error) if isinstance(error, SegError) else f"Find all failed: {error}"


class FindAllBox(QWidget):
    """A phrase field, "Find all", "Like this" and "Whole raster"."""

    def __init__(self, controller, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.controller = controller
        self.phrase = QLineEdit()
        self.phrase.setPlaceholderText("pond, building, tree... (SAM 3)")
        self.find_button = QPushButton("Find all")
        self.like_button = QPushButton("Like this")
        self.like_button.setToolTip("Every object like the selected labels (or the drawn box); works with every model.")
        self.whole = QCheckBox("Whole raster")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in (self.phrase, self.find_button, self.like_button, self.whole):
            row.addWidget(widget)
        self.find_button.clicked.connect(lambda: find_all(controller, self.phrase.text(), False, self.whole.isChecked()))
        self.phrase.returnPressed.connect(self.find_button.click)
        self.like_button.clicked.connect(lambda: find_all(controller, self.phrase.text(), True, self.whole.isChecked()))
