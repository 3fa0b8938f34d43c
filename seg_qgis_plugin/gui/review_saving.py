"""How the Review panel (gui/review.py) saves a decision, and takes it back.

On a file layer a decision goes through the layer's edit buffer as one edit command and is
committed at once ("saved as it goes"). QGIS empties a layer's undo stack on commit, so the panel
keeps its own history: Ctrl+Z puts the previous values (and geometry) back through the edit buffer
and commits again.

On a PostGIS label table (gui/postgis_layer.py: a `postgres` layer with `fid` and `version`), several
reviewers work at once, so a decision is one UPDATE through core update_label instead of the edit
buffer: it applies only if the row's `version` is still the one read when the feature was shown,
and bumps it. If someone changed the row meanwhile, the panel refuses in one sentence, writes
nothing, and shows the row's current values so that the reviewer can decide again. Ctrl+Z goes
through the same check.

`ReviewSaving` is mixed into ReviewPanel and uses its `layer`, `queue`, `position`, `decided`,
`history`, `postgis_target`, `shown_versions`, `_started_editing`, `_show` and `_say`.
"""
from __future__ import annotations

from typing import Dict, Optional

from qgis.core import QgsGeometry

from ..core.errors import SegError
from ..qgis_adapters.geometry import to_shapely
from .review_queue import plain_value


class ReviewSaving:
    """Writing and undoing the Review panel's decisions."""

    def _write(self, fid: int, values: Dict[str, object], geometry: Optional[QgsGeometry], text: str, remember: bool = True) -> bool:
        if self.postgis_target is not None:
            return self._write_versioned(fid, values, geometry, remember)
        layer = self.layer
        if not layer.isEditable():
            if not layer.startEditing():
                self._say(f"The layer {layer.name()!r} cannot be edited.")
                return False
            self._started_editing = True
        feature = layer.getFeature(fid)
        old = {name: feature[name] for name in values}
        old_geometry = QgsGeometry(feature.geometry()) if geometry is not None else None
        layer.beginEditCommand(text)
        for name, value in values.items():
            layer.changeAttributeValue(fid, layer.fields().lookupField(name), value)
        if geometry is not None:
            layer.changeGeometry(fid, geometry)
        layer.endEditCommand()
        stop = self._started_editing  # a layer the panel put in edit mode leaves it once saved
        if not layer.commitChanges(stop):
            errors = "; ".join(layer.commitErrors()[-2:])
            layer.rollBack(stop)
            self._say(f"Could not save the decision: {errors}")
            return False
        self._started_editing = False
        if remember:
            self.history.append((fid, old, old_geometry))
        return True

    def _write_versioned(self, fid: int, values: Dict[str, object], geometry: Optional[QgsGeometry], remember: bool) -> bool:
        """One UPDATE of the row behind `fid`, only if its version is still the one shown (core update_label)."""
        from ..core.outputs.postgis import StaleLabelError, update_label

        layer = self.layer
        feature = layer.getFeature(fid)
        old = {name: plain_value(feature[name]) for name in values}
        old_geometry = QgsGeometry(feature.geometry()) if geometry is not None else None
        expected = self.shown_versions.get(fid, plain_value(feature["version"]))
        changes = {name: plain_value(value) for name, value in values.items()}
        if geometry is not None:
            changes["geometry"] = to_shapely(geometry)
        try:
            self.shown_versions[fid] = update_label(self.postgis_target, int(plain_value(feature["fid"])), changes, int(expected))
        except StaleLabelError:
            layer.reload()
            self._show(fid)
            self._say(f"Not saved: someone else changed feature {fid} since it was shown; its current values are shown now, "
                      "decide again.")
            return False
        except SegError as exc:
            self._say(f"Could not save the decision: {exc}")
            return False
        layer.reload()
        layer.triggerRepaint()
        if remember:
            self.history.append((fid, old, old_geometry))
        return True

    def undo(self) -> None:
        """Put back what the last decision changed, and save."""
        if not self.history or self.layer is None:
            self._say("No decision to undo.")
            return
        fid, old, old_geometry = self.history.pop()
        if self._write(fid, old, old_geometry, f"Seg review: undo {fid}", remember=False):
            self.decided.discard(fid)
            if fid in self.queue:
                self.position = self.queue.index(fid)
            self._show(self.current_fid)
            self._say(f"Undid the decision on feature {fid}.")
