"""The attribute schema every Seg feature carries, whatever made it.

Provenance travels with each feature: class, tags, model confidence, how it was prompted, which
model and checkpoint, which raster and window, when, and where it stands in review.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, Optional

STATUSES = ("prelabel", "accepted", "reviewed", "rejected", "kept", "lost", "uncertain", "outside")  # kept..outside: time series

# Tags with their own column, so they can be filtered and styled in QGIS; every tag is also kept
# in the `tags` JSON column.
CONTEXT_TAGS = ("date", "sensor", "season", "annotator")

# (name, type, Shapefile name: at most 10 characters)
FIELDS = (
    ("class", "str", "class"),
    ("tags", "str", "tags"),
    *((tag, "str", tag) for tag in CONTEXT_TAGS),
    ("score", "float", "score"),
    ("stability", "float", "stability"),
    ("prompt_type", "str", "prompt_typ"),
    ("prompt_count", "int", "prompt_cnt"),
    ("model", "str", "model"),
    ("checkpoint_sha256", "str", "ckpt_sha"),
    ("source", "str", "source"),
    ("window", "str", "window"),
    ("radiometry", "str", "radiometry"),
    ("created", "str", "created"),
    ("status", "str", "status"),
    ("reviewer", "str", "reviewer"),
    ("reviewed", "str", "reviewed"),
)
FIELD_NAMES = tuple(name for name, _, _ in FIELDS)


@dataclass
class Label:
    """One feature: a shapely geometry in `crs` (WKT or "EPSG:n") and its attributes."""

    geometry: object
    crs: str
    attributes: Dict[str, object] = field(default_factory=dict)


# The provenance fields `attributes` takes by name, with their values when not given.
PROVENANCE = {"score": None, "stability": None, "prompt_type": "", "prompt_count": 0, "model": "",
              "checkpoint_sha256": "", "source": "", "window": "", "radiometry": "", "reviewer": "", "reviewed": ""}


def attributes(class_name: str, tags: Optional[Dict[str, str]] = None, *, status: str = "prelabel",
               created: Optional[str] = None, **provenance: object) -> Dict[str, object]:
    """A complete attribute row. `provenance` takes the fields of PROVENANCE by name (score,
    stability, prompt_type, prompt_count, model, checkpoint_sha256, source, window, radiometry,
    reviewer, reviewed); the rest keep their defaults. `created` defaults to now (UTC, ISO 8601);
    `reviewer` and `reviewed` (UTC) are written by review."""
    if status not in STATUSES:
        raise ValueError(f"Status must be one of {', '.join(STATUSES)}, not {status!r}.")
    unknown = sorted(set(provenance) - set(PROVENANCE))
    if unknown:
        raise TypeError(f"attributes() got unexpected field(s) {', '.join(unknown)}; the fields are {', '.join(PROVENANCE)}.")
    tags = dict(tags or {})
    row = {"class": class_name, "tags": json.dumps(tags, sort_keys=True) if tags else "",
           **{tag: tags.get(tag, "") for tag in CONTEXT_TAGS}, **PROVENANCE, **provenance,
           "checkpoint_sha256": provenance.get("checkpoint_sha256") or "", "created": created or now_utc(), "status": status}
    return {name: row[name] for name in FIELD_NAMES}


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def check_field_types(values: Dict[str, object], fields=FIELDS) -> None:
    """One sentence (OutputError) when a value does not fit its field's type: a float field takes
    a real number, an int field a whole number (bool is neither); None is always allowed; str
    fields take anything (written as text)."""
    import numbers

    from ..errors import OutputError

    for name, kind, _ in fields:
        value = values.get(name)
        if value is None or kind == "str":
            continue
        fits = (isinstance(value, numbers.Real) and not isinstance(value, bool)
                and (kind == "float" or float(value).is_integer()))
        if not fits:
            whole = "a whole number" if kind == "int" else "a number"
            raise OutputError(f"The field {name!r} takes {whole}, not {value!r}; fix or drop that column.")
