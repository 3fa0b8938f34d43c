"""Whether a tracked object is still there on a date: `kept`, `lost` or `uncertain`, from evidence,
with the reason in words.

The evidence:
- similarity: how much the object's inside still looks like itself on the previous date, once the
  change of its surroundings is removed. The inside expected now is the ring around it now plus its
  old contrast with the ring, rescaled band by band as the ring's spread changed (haze, a brighter
  date, another stretch are near-affine changes, which this cancels); 1 when the inside is what
  was expected, 0 when it moved as far as its whole old contrast (it became like its surroundings,
  or something else). Measured on the model's new outline and on the old outline.
- the model's answer: found, its score against the minimum, its area against the old one's.
- an index check where the class names an index and the bands allow (spectral.py): the share of
  the outline that is water (NDWI) or vegetation (NDVI), and its index contrast with a ring around
  it, now and on the previous date. Haze pulls an index towards 0 everywhere, so an index alone
  says "gone" only when the outline also no longer stands out from its ring by that index.

`lost` needs evidence that the object is gone (the index says so and its look does not say
otherwise, or its inside no longer looks like it on either outline); an object the model cannot
find with confidence while nothing says it is gone is `uncertain`, and keeps its previous outline.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .appearance import MIN_CONTRAST, Look
from .spectral import IndexLook

KEEP_SIMILARITY = 0.5    # at or above: the inside still looks like the object
LOST_SIMILARITY = 0.25   # below on both outlines: the object no longer looks like itself
STILL_THERE = 0.8        # at or above on its previous outline: the object is still there, whatever the model answered
INDEX_PRESENT = 0.5      # share of the outline where the index says "material": the object is there
INDEX_ABSENT = 0.2       # below, after being present, and ...
INDEX_CONTRAST_KEPT = 0.25  # ... its index contrast with its ring below this share of before's: the material is gone


@dataclass(frozen=True)
class Evidence:
    """What is known about one object on one date. similarity_*: None when the object did not stand
    out on its previous date (its look cannot be judged); index_old and index_new: by the index on
    its previous outline and on the model's answer now, index_before: on its outline when the
    index last showed it; None without an index check."""

    model_ok: bool
    model_problem: str
    similarity_found: Optional[float]
    similarity_old: Optional[float]
    index: Optional[str] = None
    index_old: Optional[IndexLook] = None
    index_new: Optional[IndexLook] = None
    index_before: Optional[IndexLook] = None


def similarity(before: Optional[Look], after: Optional[Look]) -> Optional[float]:
    """0..1 (see the module docstring); None when `before` did not stand out enough to judge."""
    if before is None or after is None or before.ring_std is None or after.ring_std is None:
        return None
    if float(np.linalg.norm(before.contrast)) < MIN_CONTRAST:
        return None
    gain = np.clip(np.maximum(after.ring_std, 1.0) / np.maximum(before.ring_std, 1.0), 0.2, 5.0)
    old_contrast = (before.inside - before.ring) * gain
    expected = after.ring + old_contrast
    return float(np.clip(1.0 - np.linalg.norm(after.inside - expected) / max(np.linalg.norm(old_contrast), 1e-9), 0.0, 1.0))


def decide(e: Evidence) -> tuple:
    """(status, reason, outline) for one object on one date; outline: "new" (the model's answer) or
    "previous" (its last outline)."""
    seen = [s for s in (e.similarity_found if e.model_ok else None, e.similarity_old) if s is not None]
    before = e.index_before
    if e.index and before is not None and before.share >= INDEX_PRESENT:
        name, old, new = e.index.upper(), e.index_old, e.index_new if e.model_ok else None
        shown = max((v for v in (old, new) if v is not None), key=lambda v: v.share, default=None)
        if shown is not None and shown.share >= INDEX_PRESENT:
            if e.model_ok:
                return "kept", f"found; {name} shows it on {shown.share:.0%} of its outline", "new"
            return "uncertain", f"{name} still shows it on {shown.share:.0%} of its outline, but {e.model_problem}", "previous"
        gone = (old is not None and old.share < INDEX_ABSENT and old.contrast < INDEX_CONTRAST_KEPT * before.contrast)
        if gone and not (seen and max(seen) >= KEEP_SIMILARITY):
            return "lost", (f"{name} shows it on {old.share:.0%} of its outline (against {before.share:.0%} when it last showed it), "
                            f"and it no longer stands out by {name} ({old.contrast:+.1f} ring deviations, against "
                            f"{before.contrast:+.1f})"), "previous"
    if e.similarity_found is None and e.similarity_old is None:
        return (("kept", "found (it did not stand out before, so its look is not compared)", "new") if e.model_ok else
                ("uncertain", e.model_problem, "previous"))
    if e.model_ok and e.similarity_found is not None and e.similarity_found >= KEEP_SIMILARITY:
        return "kept", f"found, and its inside still looks like it (similarity {e.similarity_found:.2f})", "new"
    if e.similarity_old is not None and e.similarity_old >= STILL_THERE:
        return "kept", (f"{e.model_problem or 'the model answered another shape'}, but its previous outline still looks like it "
                        f"(similarity {e.similarity_old:.2f}): kept there"), "previous"
    if seen and max(seen) < LOST_SIMILARITY:
        return "lost", f"its inside no longer looks like it once its surroundings' change is removed (similarity {max(seen):.2f})", "previous"
    if not e.model_ok:
        return "uncertain", e.model_problem, "previous"
    return "uncertain", f"found, but its inside looks only partly like it (similarity {e.similarity_found:.2f})", "previous"
