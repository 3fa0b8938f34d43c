"""--refine sam: each blob the assistant finds becomes a SAM box prompt, for crisp outlines.

The assistant's blobs follow its pixel classifier, so their edges are as ragged as the features;
SAM draws an object's outline from the image. The box is the blob's bounding box in the raster CRS;
the refined feature keeps the assistant's class and score (mean probability) and records SAM's
model, checkpoint, stability and window. A blob SAM finds nothing in is kept as it was.
"""
from __future__ import annotations

import os
from typing import Callable, Optional

from ..engine.labeling import to_label
from ..engine.labels import Label
from ..geo.prompts import Prompt


class SamRefiner:
    """Wraps a label sink: `refiner(label)` segments the label's box with `segmenter` (an open
    Segmenter on the same raster) and passes the refined label to `sink`."""

    def __init__(self, segmenter, sink: Callable[[Label], None], simplify: float = 0.0, min_area: float = 0.0):
        self.segmenter, self.sink = segmenter, sink
        self.simplify, self.min_area = simplify, min_area
        self.refined = 0

    def __call__(self, label: Label) -> None:
        refined = self.refine(label)
        if refined is not None:
            self.refined += 1
        self.sink(refined or label)

    def refine(self, label: Label) -> Optional[Label]:
        x0, y0, x1, y1 = label.geometry.bounds
        if not (x1 > x0 and y1 > y0):
            return None
        prompt = Prompt(crs=label.crs, box=(x0, y0, x1, y1))
        segmentation = self.segmenter.segment(prompt)
        attrs = label.attributes
        tags = {k: attrs[k] for k in ("date", "sensor", "season", "annotator") if attrs.get(k)}
        result = to_label(segmentation, self.segmenter, str(attrs["class"]), tags, "prelabel", self.simplify, self.min_area)
        if result is None:
            return None
        result.attributes.update(score=attrs.get("score"), prompt_type="assist+box", tags=attrs.get("tags", ""))
        return result


def sam_refiner(raster: str, checkpoint: str, cache: Optional[str], sink: Callable[[Label], None], simplify: float = 0.0,
                min_area: float = 0.0) -> SamRefiner:
    """A SamRefiner on `raster` with the SAM `checkpoint` (a file, or a name from `seg models list`)."""
    from ..engine.labeling import open_backend, open_segmenter
    from ..models.registry import checkpoint_path
    from ..settings import load_settings

    path = checkpoint if os.path.isfile(checkpoint) else checkpoint_path(checkpoint, load_settings().models_folder)
    return SamRefiner(open_segmenter(raster, open_backend(path, backend="sam"), cache_dir=cache), sink, simplify, min_area)
