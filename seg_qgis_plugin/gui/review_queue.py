"""The Review panel's queue: which features wait for a decision, in which order, and the fields and
reviewer name a decision writes (gui/review.py shows them and decides).
"""
from __future__ import annotations

import getpass
import math
from datetime import datetime, timezone
from typing import List, Optional

from qgis.core import QgsFeatureRequest, QgsSettings, QgsVectorDataProvider, QgsVectorLayer
from qgis.PyQt.QtCore import QVariant

from ..core.errors import OutputError
from ..qgis_adapters.sinks import new_field

STATUS_CHOICES = ("prelabel", "uncertain", "kept", "lost", "accepted", "reviewed", "rejected", "any")  # uncertain..lost: time series
DOUBT = "doubt: lowest score, then stability"
REVIEW_FIELDS = ("status", "reviewer", "reviewed")
REVIEWER_KEY = "seg/reviewer"
REVIEW_EDIT = "seg/review_edit"  # custom property of the scratch layer a re-prompt goes to
# what a new mask brings to an edited feature: its score and provenance (class, tags and created stay)
REMASKED = ("score", "stability", "prompt_type", "prompt_count", "model", "checkpoint_sha256", "source", "window",
            "radiometry")


def reviewer_name() -> str:
    """The reviewer setting (QgsSettings seg/reviewer), else the OS user."""
    name = str(QgsSettings().value(REVIEWER_KEY, "") or "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def ensure_review_fields(layer: QgsVectorLayer) -> List[str]:
    """Add status, reviewer and reviewed (text) where `layer` lacks them; returns those added.
    Raises OutputError when the layer cannot take new fields."""
    missing = [name for name in REVIEW_FIELDS if layer.fields().lookupField(name) < 0]
    if not missing:
        return []
    provider = layer.dataProvider()
    if not provider.capabilities() & QgsVectorDataProvider.Capability.AddAttributes:
        raise OutputError(f"The layer {layer.name()!r} lacks the fields {', '.join(missing)} and cannot take new ones; "
                          "save it as a GeoPackage first.")
    if layer.isEditable() and layer.isModified():
        raise OutputError(f"Save or discard the edits of {layer.name()!r} first: the review adds the fields {', '.join(missing)}.")
    if not provider.addAttributes([new_field(name, "str") for name in missing]):
        raise OutputError(f"Could not add the fields {', '.join(missing)} to {layer.name()!r}.")
    layer.updateFields()
    return missing


def review_queue(layer: QgsVectorLayer, status: str = "prelabel", order: Optional[str] = None, descending: bool = False) -> List[int]:
    """Feature ids with `status` ("any" for all), by doubt (order None) or by the field `order`."""
    fields = layer.fields()
    wanted = [n for n in ("status", "score", "stability", order) if n and fields.lookupField(n) >= 0]
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes(wanted, fields)
    rows = []
    for feature in layer.getFeatures(request):
        value = {n: plain_value(feature[n]) for n in wanted}
        if status != "any" and (value.get("status") or "prelabel") != status:
            continue
        if order is None:
            key = (_number(value.get("score")), _number(value.get("stability")))
        else:
            v = value.get(order)
            key = (v is not None, v if v is not None else 0)
        rows.append((key, feature.id()))
    rows.sort(key=lambda r: (r[0], r[1]), reverse=descending)
    return [fid for _, fid in rows]


def decision_text(layer: str, fid: int, status: str, values: dict) -> str:
    """What the panel says after a decision, naming the layer and the feature."""
    text = f"{layer}: feature {fid} {status}"
    if "class" in values:
        text += f", class {values['class']}"
    if "prompt_type" in values:
        score = values.get("score")
        text += f", new outline from a {values['prompt_type']} prompt" + (f" (score {score:.2f})" if score is not None else "")
    return text + "."


def plain_value(value):
    """A QVariant (null or not) as the plain Python value; anything else as it is."""
    if value is None:
        return None
    if isinstance(value, QVariant):
        return None if value.isNull() else value.value()
    return value


def _number(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return -math.inf
    return -math.inf if math.isnan(number) else number
