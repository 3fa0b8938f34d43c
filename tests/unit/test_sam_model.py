"""The real loading path and the real segment-anything model code, on a tiny architecture."""
import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed; SAM tests need it")
pytest.importorskip("segment_anything", reason="segment-anything is not installed")

from seg_qgis_plugin.core.models.checkpoints import detect_model_type, load_sam  # noqa: E402
from seg_qgis_plugin.core.errors import CheckpointError, PromptError  # noqa: E402
from seg_qgis_plugin.core.models.backend import TilePrompt  # noqa: E402
from seg_qgis_plugin.core.models.sam import SamBackend  # noqa: E402


def test_checkpoint_is_loaded_by_path_with_its_sha256(tiny_checkpoint):
    model, model_type, sha = load_sam(tiny_checkpoint)
    assert model_type == "vit_tiny"
    assert sha == hashlib.sha256(open(tiny_checkpoint, "rb").read()).hexdigest()
    saved = torch.load(tiny_checkpoint, weights_only=True)
    assert torch.equal(model.state_dict()["mask_decoder.iou_prediction_head.layers.0.weight"], saved["mask_decoder.iou_prediction_head.layers.0.weight"])


def test_wrong_missing_and_corrupt_checkpoints(tiny_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="holds vit_tiny weights, not vit_b"):
        load_sam(tiny_checkpoint, "vit_b")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_sam(str(tmp_path / "none.pth"))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(open(tiny_checkpoint, "rb").read()[:5000])
    with pytest.raises(CheckpointError, match="not a readable SAM checkpoint"):
        load_sam(str(corrupt))
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="does not hold SAM weights"):
        load_sam(str(other))
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": torch.load(tiny_checkpoint, weights_only=True)}, wrapped)
    assert load_sam(str(wrapped))[1] == "vit_tiny"


def test_pickled_code_is_refused(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"obj": object()}, evil)
    with pytest.raises(CheckpointError, match="not a readable SAM checkpoint"):
        load_sam(str(evil))


def test_model_type_detection_for_the_official_architectures():
    state = {"image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 16, 16)}
    state.update({f"image_encoder.blocks.{i}.norm1.weight": torch.zeros(1) for i in range(12)})
    assert detect_model_type(state) == "vit_b"


@pytest.fixture(scope="module")
def session(tiny_checkpoint):
    """fp32: the decoder is compared with SamPredictor's to 1e-5."""
    return SamBackend(tiny_checkpoint, device="cpu", threads=2, precision="fp32")


def test_fast_decode_matches_sam_predictor(session):
    from segment_anything import SamPredictor

    image = np.random.default_rng(0).integers(0, 255, (600, 800, 3)).astype(np.uint8)
    embedding = session.encode(image)
    predictor = SamPredictor(session.model)
    predictor.set_image(image)
    assert np.abs(predictor.features.numpy() - embedding.arrays["features"]).max() < 0.05  # resizing differs slightly
    embedding.arrays["features"] = predictor.features.numpy()  # compare the decoder alone
    for prompt in (TilePrompt(points=np.array([[300.0, 200.0]], np.float32), labels=np.array([1], np.int32)),
                   TilePrompt(box=(100.0, 50.0, 500.0, 400.0))):
        ours = session.decode(embedding, prompt)
        logits, scores, _ = predictor.predict(point_coords=prompt.points if len(prompt.points) else None,
                                              point_labels=prompt.labels if len(prompt.points) else None,
                                              box=np.array(prompt.box) if prompt.box else None,
                                              multimask_output=prompt.box is None, return_logits=True)
        best = int(np.argmax(scores))
        assert ours.score == pytest.approx(float(scores[best]), abs=1e-5)
        assert ours.mask.shape == (600, 800) and ours.probability.dtype == np.float32
        theirs = logits[best]
        ours_logits = np.log(np.clip(ours.probability, 1e-7, 1 - 1e-7) / np.clip(1 - ours.probability, 1e-7, 1))
        close = np.abs(ours_logits - theirs) < 1e-3
        assert close[np.abs(theirs) < 15].all()
        assert 0.0 <= ours.stability <= 1.0 and ours.low_res_logits.shape == (1, 256, 256)


def test_bf16_encoder_stays_near_sam_predictor(tiny_checkpoint):
    """bf16 autocast (the automatic choice on CPUs with AMX or AVX512-bf16): embedding within 2 %."""
    from segment_anything import SamPredictor

    image = np.random.default_rng(0).integers(0, 255, (600, 800, 3)).astype(np.uint8)
    bf16 = SamBackend(tiny_checkpoint, device="cpu", threads=2, precision="bf16")
    features = bf16.encode(image).arrays["features"]
    predictor = SamPredictor(bf16.model)
    predictor.set_image(image)
    reference = predictor.features.numpy()
    assert np.linalg.norm(features - reference) / np.linalg.norm(reference) < 0.02


def test_refinement_feeds_back_low_res_logits(session):
    image = np.random.default_rng(1).integers(0, 255, (512, 512, 3)).astype(np.uint8)
    embedding = session.encode(image)
    first = session.decode(embedding, TilePrompt(points=np.array([[100.0, 100.0]], np.float32), labels=np.array([1], np.int32)))
    refined = session.decode(embedding, TilePrompt(points=np.array([[100.0, 100.0], [300.0, 300.0]], np.float32),
                                                   labels=np.array([1, 0], np.int32), mask_input=first.low_res_logits))
    plain = session.decode(embedding, TilePrompt(points=np.array([[100.0, 100.0], [300.0, 300.0]], np.float32), labels=np.array([1, 0], np.int32)))
    assert not np.allclose(refined.probability, plain.probability)


def test_empty_prompt_is_refused(session):
    embedding = session.encode(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(PromptError):
        session.decode(embedding, TilePrompt())
