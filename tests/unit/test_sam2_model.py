"""SAM 2.1 through Seg: a random-weight Hiera-Tiny built from the official configuration by
`seg models random`, decoded by Seg and by the library's own `SAM2ImagePredictor` on the same
image, then a georeferenced click through the API with the embedding cache."""
import hashlib
import os
import warnings

import numpy as np
import pytest

pytest.importorskip("sam2", reason="SAM 2 is not installed (make venv installs requirements-sam2.txt)")

from seg_qgis_plugin.cli.main import main  # noqa: E402
from seg_qgis_plugin.core.errors import CheckpointError  # noqa: E402
from seg_qgis_plugin.core.models.backend import TilePrompt  # noqa: E402
from seg_qgis_plugin.core.models.checkpoint_files import RandomWeightsWarning  # noqa: E402

BOX = (150, 100, 299, 199)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("sam2") / "tiny.pt")
    assert main(["models", "random", "sam2.1_hiera_tiny", "--out", path]) == 0
    return path


@pytest.fixture(scope="module")
def backend(tiny):
    from seg_qgis_plugin.core.models.sam2 import Sam2Backend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return Sam2Backend(tiny, device="cpu", threads=2)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    pixels = (rng.random((300, 420, 3)) * 120).astype(np.uint8)
    pixels[100:200, 150:300] = (200, 180, 60)
    return pixels


def test_random_checkpoint_says_so_and_is_never_overwritten(tiny, capsys):
    from seg_qgis_plugin.core.models.sam2_checkpoints import load_sam2

    with pytest.warns(RandomWeightsWarning, match="random weights"):
        _, found, sha = load_sam2(tiny)
    assert found == "sam2.1_hiera_tiny" and sha == hashlib.sha256(open(tiny, "rb").read()).hexdigest()
    before = os.path.getmtime(tiny)
    assert main(["models", "random", "vit_tiny", "--out", tiny]) == 2
    assert "exists" in capsys.readouterr().err and os.path.getmtime(tiny) == before


def test_each_family_is_told_by_its_weights(tiny, tmp_path):
    from seg_qgis_plugin.core.engine.labeling import open_backend
    from seg_qgis_plugin.core.models.checkpoints import load_sam
    from seg_qgis_plugin.core.models.checkpoint_files import checkpoint_family
    from seg_qgis_plugin.core.models.sam2_checkpoints import build_sam2_model, detect_sam2_type

    assert checkpoint_family(tiny) == "sam2"
    with pytest.raises(CheckpointError, match="holds SAM 2.1 weights, which this step does not take"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        load_sam(tiny)
    assert detect_sam2_type(build_sam2_model("sam2.1_hiera_small").state_dict()) == "sam2.1_hiera_small"
    vit = str(tmp_path / "vit.pth")
    main(["models", "random", "vit_tiny", "--out", vit])
    assert checkpoint_family(vit) == "sam"
    with pytest.raises(CheckpointError, match="does not hold SAM 2.1 weights"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        open_backend(vit, backend="sam2", device="cpu")


@pytest.mark.parametrize("prompt, kwargs", [
    (TilePrompt(np.array([[220, 150]], np.float32), np.array([1], np.int32)),
     dict(point_coords=np.array([[220, 150]]), point_labels=np.array([1]), multimask_output=True)),
    (TilePrompt(box=BOX), dict(box=np.array(BOX), multimask_output=False)),
    (TilePrompt(np.array([[220, 150], [160, 110]], np.float32), np.array([1, 0], np.int32), box=BOX),
     dict(point_coords=np.array([[220, 150], [160, 110]]), point_labels=np.array([1, 0]), box=np.array(BOX), multimask_output=False)),
], ids=["click", "box", "box and points"])
def test_decode_equals_the_library_predictor(backend, image, prompt, kwargs):
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    embedding = backend.encode(image)
    assert embedding.arrays["high_res_0"].shape == (1, 32, 256, 256) and embedding.arrays["high_res_1"].shape == (1, 64, 128, 128)
    ours = backend.decode(embedding, prompt)
    predictor = SAM2ImagePredictor(backend.model)
    predictor.set_image(image)
    masks, scores, _ = predictor.predict(**kwargs)
    best = int(np.argmax(scores))
    assert ours.score == pytest.approx(float(scores[best]), abs=1e-5)
    assert ours.mask.shape == image.shape[:2]
    assert np.count_nonzero(ours.mask != (masks[best] > 0)) <= 2, "the same mask, up to float rounding at the boundary"
    again = backend.decode(embedding, TilePrompt(prompt.points, prompt.labels, prompt.box, ours.low_res_logits))
    assert again.mask.shape == image.shape[:2]


def test_a_click_through_the_api_is_georeferenced_and_cached(tiny, tmp_path):
    import rasterio
    from shapely.geometry import box

    import seg_qgis_plugin.api as seg
    from seg_qgis_plugin.demo.series import write_series

    series = write_series(str(tmp_path))
    raster = series.rasters[0]
    with rasterio.open(raster) as src:
        point = src.xy(src.height // 2, src.width // 2)
        bounds = src.bounds
    frames = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        for _ in range(2):
            with seg.open(raster, checkpoint=tiny, cache=str(tmp_path / "cache")) as session:
                frames.append(session.segment(points=[point]))
    first, cached = frames
    row = first.iloc[0]
    assert row["model"] == "sam2.1-hiera_tiny" and row["checkpoint_sha256"] == hashlib.sha256(open(tiny, "rb").read()).hexdigest()
    assert first.crs.to_epsg() == 32633 and first.geometry.iloc[0].within(box(*bounds).buffer(1e-6))
    assert first.geometry.iloc[0].equals(cached.geometry.iloc[0]) and len(os.listdir(tmp_path / "cache")) == 1


def test_propagate_with_sam2_memory_follows_each_object_through_the_dates(tiny, tmp_path):
    """`seg propagate --backend sam2`: one object through two later dates as the frames of a video.
    Random weights: the code path and the output's shape, not the quality of the masks."""
    import json

    import geopandas as gpd

    from seg_qgis_plugin.demo.series import write_series

    series = write_series(str(tmp_path))
    out = str(tmp_path / "memory.gpkg")
    first = gpd.read_file(series.labels).iloc[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        code = main(["propagate", series.labels, *series.rasters[:3], "--checkpoint", tiny, "--backend", "sam2",
                     "--classes", first["class"], "--out", out])
    assert code == 0
    rows = gpd.read_file(out, layer="memory")
    track = rows[rows["track_id"] == rows["track_id"].iloc[0]].sort_values("date")
    assert list(track["date"]) == sorted(series.dates[:3]) and track["status"].iloc[0] == "accepted"
    later = track.iloc[1:]
    assert set(later["status"]) <= {"kept", "lost", "uncertain"} and set(later["prompt_type"]) == {"memory"}
    assert later["reason"].str.len().gt(0).all()
    assert set(later["model"]) == {"sam2.1-hiera_tiny"} and later["score"].between(0, 1).all()
    assert all(json.loads(t)["date"] == d for t, d in zip(later["tags"], later["date"]))
    outlines, statuses = list(track.geometry), list(track["status"])
    assert all(outlines[i].equals(outlines[i - 1]) for i in range(1, len(track)) if statuses[i] in ("lost", "uncertain")), \
        "a lost or uncertain object keeps its last outline"
