"""SAM 2.1 on ONNX Runtime: a random-weight Hiera-Tiny exported by `seg models export-onnx` answers
every prompt kind with the torch backend's masks, shares its embedding cache, and runs without torch."""
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sam2", reason="SAM 2 is not installed (make venv installs requirements-sam2.txt)")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (make venv installs it)")

from seg_qgis_plugin.core.errors import CheckpointError  # noqa: E402
from seg_qgis_plugin.core.models.backend import TilePrompt  # noqa: E402
from seg_qgis_plugin.core.models.checkpoint_files import RandomWeightsWarning  # noqa: E402

BOX = (150, 100, 299, 199)
CLICK = TilePrompt(np.array([[220, 150]], np.float32), np.array([1], np.int32))


@pytest.fixture(scope="module")
def exported(sam21_tiny_exported):
    return sam21_tiny_exported


@pytest.fixture(scope="module")
def sessions(exported):
    from seg_qgis_plugin.core.engine.labeling import open_backend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return open_backend(exported[0], threads=2), open_backend(exported[1], threads=2)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    pixels = (rng.random((300, 420, 3)) * 120).astype(np.uint8)
    pixels[100:200, 150:300] = (200, 180, 60)
    return pixels


def test_manifest_names_the_family_and_its_three_graphs(exported):
    manifest = json.loads(open(exported[1] + "/manifest.json").read())
    assert (manifest["family"], manifest["model_type"], manifest["model_id"]) == ("sam2", "sam2.1_hiera_tiny", "sam2.1-hiera_tiny")
    assert sorted(manifest["files"]) == ["decoder_prompt", "decoder_tile", "encoder"]
    assert manifest["single_mask_fallback"] == {"delta": 0.05, "threshold": 0.98}
    error = manifest["error_vs_torch_fp32"]
    assert error["embedding_rel_error"] < 1e-4 and error["end_to_end_mask_iou_min"] > 0.999


def test_each_hiera_attention_is_one_fused_kernel(exported):
    onnx = pytest.importorskip("onnx", reason="reading the graph needs the onnx package (the onnx-export extra)")
    graph = onnx.load(exported[1] + "/encoder.onnx", load_external_data=False).graph
    fused = [n for n in graph.node if n.op_type == "MultiHeadAttention"]
    assert len(fused) == 12 and all(n.domain == "com.microsoft" and len(n.input) == 4 for n in fused)  # Hiera-Tiny's 12 blocks, bias inside
    assert not [n for n in graph.node if n.op_type in ("Softmax", "Split")]


def test_embeddings_equal_the_torch_backend_and_share_its_cache_key(sessions, image):
    torch_backend, onnx_backend = sessions
    assert type(onnx_backend).__name__ == "Sam2OnnxBackend"
    assert (onnx_backend.model_id, onnx_backend.checkpoint_sha256) == (torch_backend.model_id, torch_backend.checkpoint_sha256)
    a, b = torch_backend.encode(image), onnx_backend.encode(image)
    assert a.meta == b.meta and a.arrays.keys() == b.arrays.keys()
    for name in a.arrays:
        assert a.arrays[name].shape == b.arrays[name].shape
        assert np.linalg.norm(a.arrays[name] - b.arrays[name]) < 1e-4 * np.linalg.norm(a.arrays[name]), name


@pytest.mark.parametrize("prompt, multimask", [
    (CLICK, None),
    (CLICK, False),  # one mask from one click: SAM 2 falls back to the best of three when token 0 is unstable
    (TilePrompt(box=BOX), None),
    (TilePrompt(np.array([[220, 150], [160, 110]], np.float32), np.array([1, 0], np.int32), box=BOX), None),
], ids=["click", "single-mask click", "box", "box and points"])
def test_each_prompt_kind_gives_the_torch_mask(sessions, image, prompt, multimask):
    torch_backend, onnx_backend = sessions
    embedding = torch_backend.encode(image)
    ours, reference = onnx_backend.decode(embedding, prompt, multimask), torch_backend.decode(embedding, prompt, multimask)
    assert ours.score == pytest.approx(reference.score, abs=1e-4)
    assert np.count_nonzero(ours.mask != reference.mask) <= 2, "the same mask, up to float rounding at the boundary"
    refined = TilePrompt(prompt.points, prompt.labels, prompt.box, reference.low_res_logits)
    ours, reference = onnx_backend.decode(embedding, refined), torch_backend.decode(embedding, refined)
    assert np.abs(ours.low_res_logits - reference.low_res_logits).max() < 1e-3


def test_the_exported_model_runs_without_torch(exported):
    code = ("import sys; sys.modules['torch'] = None; sys.modules['sam2'] = None; sys.modules['torchvision'] = None\n"
            "import numpy as np\n"
            "from seg_qgis_plugin.core.engine.labeling import open_backend\n"
            "from seg_qgis_plugin.core.models.backend import TilePrompt\n"
            f"b = open_backend({exported[1]!r}, threads=2)\n"
            "e = b.encode(np.full((300, 400, 3), 90, np.uint8))\n"
            "p = b.decode(e, TilePrompt(box=(20, 30, 200, 150)))\n"
            "print(type(b).__name__, p.mask.shape, e.arrays['high_res_0'].shape)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == "Sam2OnnxBackend (300, 400) (1, 32, 256, 256)"


def test_a_manifest_of_an_unknown_family_is_refused(exported, tmp_path):
    import shutil

    from seg_qgis_plugin.core.models.exported import open_exported

    copy = tmp_path / "copy"
    shutil.copytree(exported[1], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "family": "sam9"}))
    with pytest.raises(CheckpointError, match="'sam9' model"):
        open_exported(str(copy))
