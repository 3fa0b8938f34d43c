"""The classic backend's score judges the mask: a clean object outscores the whole box or a bad mask."""
import numpy as np
import pytest

from seg_qgis_plugin.core.models.classic import ClassicBackend
from seg_qgis_plugin.core.models.classic_score import mask_confidence, mask_cues
from seg_qgis_plugin.demo.scene import ORIGIN, make_scene, write_scene

SIZE, RESOLUTION = 768, 0.5


@pytest.fixture(scope="module")
def scene():
    """(lab uint8 (H, W, 3) as the classic backend sees the scene, truth objects)."""
    data, objects = make_scene(SIZE, SIZE)
    rgb = np.clip(data[:3].transpose(1, 2, 0) / 3000.0 * 255.0, 0, 255).astype(np.uint8)
    return ClassicBackend().encode(rgb).arrays["lab"], objects


def _pixel_box(obj, pad=6):
    x0, y0, x1, y1 = obj.box
    return int(x0) - pad, int(y0) - pad, int(x1) + pad, int(y1) + pad


def _rectangle(box, shape):
    mask = np.zeros(shape, bool)
    mask[box[1]:box[3] + 1, box[0]:box[2] + 1] = True
    return mask


def test_a_round_object_beats_its_whole_box(scene):
    lab, objects = scene
    for obj in (o for o in objects if o.class_name == "water"):
        box = _pixel_box(obj, pad=0)
        good = mask_confidence(lab, obj.mask, box)
        whole = mask_confidence(lab, _rectangle(box, obj.mask.shape), box)
        assert good > 0.75, (obj.name, good)
        assert good > whole + 0.05, (obj.name, good, whole)


def test_true_mask_beats_bad_masks(scene):
    lab, objects = scene
    for obj in (o for o in objects if o.class_name == "building"):
        box = _pixel_box(obj)
        good = mask_confidence(lab, obj.mask, box)
        sliver = obj.mask.copy()
        sliver[:, int(obj.box[0]) + 6:] = False  # a strip of the building's left edge
        shifted = np.roll(obj.mask, (obj.mask.any(axis=1).sum() // 2, obj.mask.any(axis=0).sum() // 2), axis=(0, 1)) \
            & _rectangle(box, obj.mask.shape)
        bad = [mask_confidence(lab, sliver, box), mask_confidence(lab, shifted, box)]
        assert good > 0.5, (obj.name, good)
        assert good > max(bad) + 0.15, (obj.name, good, bad)


def test_scores_lie_in_0_1(scene):
    lab, objects = scene
    rng = np.random.default_rng(0)
    masks = [o.mask for o in objects] + [rng.random(lab.shape[:2]) < 0.3, np.ones(lab.shape[:2], bool)]
    for mask in masks:
        probability = np.where(mask, 0.5 + 0.5 * rng.random(mask.shape), 0.2).astype(np.float32)
        for box in (None, (100, 100, 300, 300)):
            score = mask_confidence(lab, mask, box, probability=probability, agreement=0.9)
            assert 0.0 <= score <= 1.0
            assert all(0.0 <= v <= 1.0 for v in mask_cues(lab, mask, box, probability, 0.9).values())
    assert mask_confidence(lab, np.zeros(lab.shape[:2], bool), (1, 1, 5, 5)) == 0.0


def test_a_click_is_judged_by_the_cuts_certainty_and_a_box_by_the_geometric_mean_of_its_cues(scene):
    lab, objects = scene
    pond = next(o for o in objects if o.name == "pond")
    sure = np.where(pond.mask, 0.97, 0.03).astype(np.float32)
    unsure = np.where(pond.mask, 0.55, 0.45).astype(np.float32)
    assert mask_confidence(lab, pond.mask, None, probability=sure) == pytest.approx(0.94, abs=1e-6)
    assert mask_confidence(lab, pond.mask, None, probability=unsure) == pytest.approx(0.10, abs=1e-6)
    box = _pixel_box(pond, pad=0)
    agreed = mask_confidence(lab, pond.mask, box, agreement=1.0)
    assert mask_confidence(lab, pond.mask, box, agreement=0.5) == pytest.approx(agreed * 0.5 ** (1 / 4))  # edges, fill, span, agreement
    cues = mask_cues(lab, pond.mask, box, unsure, 1.0)
    assert cues["certainty"] == pytest.approx(0.10, abs=1e-6)
    assert mask_confidence(lab, pond.mask, box, probability=unsure, agreement=1.0) == pytest.approx(np.prod(list(cues.values())) ** (1 / 5))
    with pytest.raises(ValueError, match="probability"):
        mask_confidence(lab, pond.mask, None)


def test_engine_scores_a_pond_above_an_empty_field(tmp_path):
    import seg_qgis_plugin.api as seg

    objects = write_scene(str(tmp_path / "scene.tif"), SIZE, SIZE, resolution=RESOLUTION)
    pond = next(o for o in objects if o.name == "pond")

    def to_map(col0, row0, col1, row1):
        return (ORIGIN[0] + col0 * RESOLUTION, ORIGIN[1] - row1 * RESOLUTION,
                ORIGIN[0] + col1 * RESOLUTION, ORIGIN[1] - row0 * RESOLUTION)

    with seg.open(tmp_path / "scene.tif", backend="classic") as session:
        good = float(session.segment(box=to_map(*pond.box))["score"].iloc[0])
        field = float(session.segment(box=to_map(20, 20, 120, 90))["score"].iloc[0])  # inside one uniform field
    assert 0.0 <= field < good <= 1.0
    assert good - field > 0.15, (good, field)
