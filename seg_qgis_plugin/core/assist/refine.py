"""--refine sam: each blob the assistant finds becomes a SAM box prompt, for crisp outlines.

The assistant's blobs follow its pixel classifier, so their edges are as ragged as the features;
SAM draws an object's outline from the image. The box is the blob's bounding box in the raster CRS;
the refined feature keeps the assistant's class, tags and score (mean probability) and records
SAM's model, checkpoint, stability and window, with prompt_type "assist+box". A blob SAM finds
nothing in (or only less than `min_area`) is kept as the assistant drew it (prompt_type "assist").
Cost: one SAM decode per blob, plus one encoding per raster tile the blobs start on (none when the
tile is in the embedding cache).
"""
from __future__ import annotations

import json
import os
from typing import Callable, Optional

from ..engine.labeling import to_label
from ..engine.labels import Label
from ..geo.prompts import Prompt
from ..geo.vectorize import Cleanup
from ..progress import check_canceled


class SamRefiner:
    """Wraps a label sink: `refiner(label)` segments the label's box with `segmenter` (an open
    Segmenter on the same raster) and passes the refined label, or the label itself when SAM finds
    nothing, to `sink` (settable after construction, so the checkpoint is checked before the output
    is opened). `refined` counts the labels SAM redrew."""

    def __init__(self, segmenter, sink: Optional[Callable[[Label], None]] = None, simplify: float = 0.0,
                 min_area: float = 0.0, progress=None):
        self.segmenter, self.sink = segmenter, sink
        self.simplify, self.min_area = simplify, min_area
        self.progress = progress
        self.refined = 0

    def __call__(self, label: Label) -> None:
        check_canceled(self.progress)
        refined = self.refine(label)
        if refined is not None:
            self.refined += 1
        self.sink(refined or label)

    def refine(self, label: Label) -> Optional[Label]:
        """The label redrawn by SAM from its bounding box, or None when SAM finds nothing there."""
        x0, y0, x1, y1 = label.geometry.bounds
        if not (x1 > x0 and y1 > y0):
            return None
        segmentation = self.segmenter.segment(Prompt(crs=label.crs, box=(x0, y0, x1, y1)))
        attrs = label.attributes
        tags = json.loads(attrs["tags"]) if attrs.get("tags") else {}
        result = to_label(segmentation, self.segmenter, str(attrs["class"]), tags, str(attrs.get("status") or "prelabel"),
                          Cleanup(self.simplify, self.min_area))
        if result is None:
            return None
        result.attributes.update(score=attrs.get("score"), prompt_type="assist+box")
        return result

    def close(self) -> None:
        self.segmenter.close()


def sam_refiner(raster: str, checkpoint: str, cache: Optional[str] = None, sink: Optional[Callable[[Label], None]] = None,
                simplify: float = 0.0, min_area: float = 0.0, progress=None) -> SamRefiner:
    """A SamRefiner on `raster` with the SAM `checkpoint` (a file, or a name from `seg models list`);
    raises SegError for a checkpoint that is neither. Close it when done."""
    from ..engine.labeling import open_backend, open_segmenter
    from ..models.registry import checkpoint_path
    from ..settings import load_settings

    path = checkpoint if os.path.isfile(checkpoint) else checkpoint_path(checkpoint, load_settings().models_folder)
    return SamRefiner(open_segmenter(raster, open_backend(path, backend="sam"), cache_dir=cache), sink, simplify, min_area, progress)
