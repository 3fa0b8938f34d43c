"""The weights-free classic backend on synthetic images made here with fixed seeds."""
import numpy as np
import pytest

from seg_qgis_plugin.core.models.classic import ClassicBackend
from seg_qgis_plugin.core.errors import PromptError
from seg_qgis_plugin.core.models.backend import TilePrompt

HEIGHT, WIDTH = 160, 200


def _noisy(shape, mean, rng):
    return np.clip(rng.normal(mean, 12.0, shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def scene():
    """A bright disk (centre col 70, row 80, radius 30) and a red rectangle (cols 130-179,
    rows 40-119) on a noisy dark background. Returns (image uint8 (H, W, 3), disk, rect)."""
    rng = np.random.default_rng(42)
    image = _noisy((HEIGHT, WIDTH, 3), 50.0, rng)
    rows, cols = np.mgrid[:HEIGHT, :WIDTH]
    disk = (rows - 80) ** 2 + (cols - 70) ** 2 <= 30 ** 2
    rect = (cols >= 130) & (cols <= 179) & (rows >= 40) & (rows <= 119)
    image[disk] = _noisy((int(disk.sum()), 3), 200.0, rng)
    image[rect] = _noisy((int(rect.sum()), 3), [190.0, 40.0, 40.0], rng)
    return image, disk, rect


@pytest.fixture(scope="module")
def backend():
    return ClassicBackend()


def _iou(a, b):
    return np.count_nonzero(a & b) / np.count_nonzero(a | b)


def _point(x, y, label=1):
    return TilePrompt(points=np.array([[x, y]], np.float32), labels=np.array([label], np.int32))


def test_identity():
    backend = ClassicBackend()
    assert backend.model_id == "classic-grabcut"
    assert backend.checkpoint_sha256 is None
    assert backend.cacheable is False


def test_point_segments_the_disk(backend, scene):
    image, disk, rect = scene
    pred = backend.decode(backend.encode(image), _point(70, 80))
    assert _iou(pred.mask, disk) > 0.9
    assert not (pred.mask & rect).any()  # only the clicked component is kept


def test_box_segments_the_rectangle(backend, scene):
    image, disk, rect = scene
    pred = backend.decode(backend.encode(image), TilePrompt(box=(122.0, 32.0, 187.0, 127.0)))
    assert _iou(pred.mask, rect) > 0.9


def test_negative_point_excludes_a_region(backend):
    """A box around a white and a yellow square takes both; a negative click on the yellow one
    removes it."""
    rng = np.random.default_rng(7)
    image = _noisy((HEIGHT, WIDTH, 3), 50.0, rng)
    white = np.zeros((HEIGHT, WIDTH), bool)
    white[50:110, 30:90] = True
    yellow = np.zeros((HEIGHT, WIDTH), bool)
    yellow[50:110, 110:170] = True
    image[white] = _noisy((int(white.sum()), 3), 210.0, rng)
    image[yellow] = _noisy((int(yellow.sum()), 3), [210.0, 200.0, 30.0], rng)
    embedding = backend.encode(image)
    box = (25.0, 45.0, 175.0, 115.0)
    both = backend.decode(embedding, TilePrompt(box=box)).mask
    assert both[white].mean() > 0.9 and both[yellow].mean() > 0.9
    prompt = TilePrompt(points=np.array([[140, 80]], np.float32), labels=np.array([0], np.int32), box=box)
    pred = backend.decode(embedding, prompt).mask
    assert pred[white].mean() > 0.9
    assert pred[yellow].mean() < 0.1


def test_outputs_have_the_documented_types(backend, scene):
    image, disk, _ = scene
    embedding = backend.encode(image)
    assert embedding.image_size == (HEIGHT, WIDTH)
    pred = backend.decode(embedding, _point(70, 80))
    assert pred.mask.shape == (HEIGHT, WIDTH) and pred.mask.dtype == bool
    assert pred.probability.shape == (HEIGHT, WIDTH) and pred.probability.dtype == np.float32
    assert 0.0 <= pred.probability.min() and pred.probability.max() <= 1.0
    assert np.array_equal(pred.mask, pred.probability > 0.5)
    assert 0.0 <= pred.score <= 1.0 and 0.0 <= pred.stability <= 1.0
    assert pred.score > 0.7  # a clean, well-separated object is a confident one
    assert pred.low_res_logits is None
    soft = pred.probability[disk]
    assert soft.mean() > 0.7 and len(np.unique(soft)) > 10  # a real soft estimate, not a 0/1 mask


def test_empty_prompt_raises(backend, scene):
    embedding = backend.encode(scene[0])
    with pytest.raises(PromptError, match="empty"):
        backend.decode(embedding, TilePrompt())


def test_only_negative_points_raise(backend, scene):
    embedding = backend.encode(scene[0])
    with pytest.raises(PromptError):
        backend.decode(embedding, _point(10, 10, label=0))


def test_point_outside_tile_raises(backend, scene):
    embedding = backend.encode(scene[0])
    with pytest.raises(PromptError):
        backend.decode(embedding, _point(WIDTH + 5, 10))


def test_bad_image_is_refused(backend):
    with pytest.raises(ValueError):
        backend.encode(np.zeros((10, 10), np.uint8))


def test_random_walker_is_selectable(scene):
    pytest.importorskip("skimage")
    image, disk, _ = scene
    backend = ClassicBackend(method="randomwalker")
    assert backend.model_id == "classic-randomwalker"
    pred = backend.decode(backend.encode(image), _point(70, 80))
    assert pred.mask[80, 70] and pred.mask.shape == disk.shape


def test_the_same_prompt_gives_the_same_mask_whatever_ran_before(tmp_path):
    import cv2

    from seg_qgis_plugin.core.geo.radiometry import compute_radiometry
    from seg_qgis_plugin.core.geo.raster import RasterSource
    from seg_qgis_plugin.demo.scene import write_scene

    truth = write_scene(str(tmp_path / "scene.tif"), 512, 512)
    with RasterSource(str(tmp_path / "scene.tif")) as src:
        radiometry = compute_radiometry(src)
        image = radiometry.apply(*src.read(radiometry.bands, (0, 0, 512, 512)))
    backend = ClassicBackend()
    prompt = TilePrompt(points=np.array([truth[0].point], np.float32), labels=np.ones(1, np.int32))  # the big pond
    first = backend.decode(backend.encode(image), prompt).mask
    cv2.randu(np.zeros((50, 50), np.float32), 0, 1)  # moves OpenCV's global RNG, as any other OpenCV user may
    assert np.array_equal(backend.decode(backend.encode(image), prompt).mask, first)
