"""An outline as a mask prompt: backends that take masks get it burned on SAM's 256 x 256 low-resolution
frame of the start tile, exactly where it lies; others never see it."""
import numpy as np
from shapely.geometry import box

from seg_qgis_plugin.core.engine.segmenter import Segmenter
from seg_qgis_plugin.core.geo.tiling import Tiling
from seg_qgis_plugin.core.geo.prompts import Prompt
from seg_qgis_plugin.core.geo.raster import RasterSource
from seg_qgis_plugin.core.models.backend import Embedding, MaskPrediction


class RecordingBackend:
    """Says it takes masks; records each prompt; answers with the box (SAM-like input size: longest side 1024)."""

    model_id, checkpoint_sha256, cacheable = "recording", None, False

    def __init__(self, capabilities):
        self.capabilities, self.prompts = frozenset(capabilities), []

    def close(self):
        pass

    def encode(self, image):
        h, w = image.shape[:2]
        scale = 1024 / max(h, w)
        return Embedding((h, w), {}, {"input_size": [round(h * scale), round(w * scale)]})

    def decode(self, embedding, prompt, multimask=None):
        self.prompts.append(prompt)
        mask = np.zeros(embedding.image_size, bool)
        x0, y0, x1, y1 = (int(round(v)) for v in prompt.box)
        mask[y0:y1 + 1, x0:x1 + 1] = True
        return MaskPrediction(mask, mask.astype(np.float32), 1.0, 1.0)


def test_the_outline_lands_on_the_low_resolution_frame(raster_factory):
    path = raster_factory(np.zeros((3, 512, 512), np.uint8))
    source = RasterSource(path)
    t = source.transform
    # raster pixels 128..256 x 64..192: on a 512 tile resized to 1024, a quarter-resolution frame of 256 shows it at 64..128 x 32..96
    outline = box(*(t * (128, 192)), *(t * (256, 64)))
    prompt = Prompt(crs=source.crs.to_wkt(), box=(*(t * (100, 220)), *(t * (280, 40))))
    backend = RecordingBackend({"points", "boxes", "masks"})
    with Segmenter(source, backend, tiling=Tiling(512, 0)) as segmenter:
        segmenter.segment(prompt, mask_prompt=outline)
    logits = backend.prompts[0].mask_input
    assert logits.shape == (1, 256, 256) and logits.dtype == np.float32
    inside = np.argwhere(logits[0] > 0)
    assert inside.min(axis=0).tolist() == [32, 64] and inside.max(axis=0).tolist() == [95, 127]


def test_a_backend_without_masks_gets_no_mask_prompt(raster_factory):
    source = RasterSource(raster_factory(np.zeros((3, 256, 256), np.uint8)))
    t = source.transform
    backend = RecordingBackend({"points", "boxes"})
    with Segmenter(source, backend, tiling=Tiling(256, 0)) as segmenter:
        segmenter.segment(Prompt(crs=source.crs.to_wkt(), box=(*(t * (10, 100)), *(t * (100, 10)))),
                          mask_prompt=box(*(t * (10, 100)), *(t * (100, 10))))
    assert backend.prompts[0].mask_input is None
