"""SAM on ONNX Runtime: exported through `seg models export-onnx` from a tiny random-weights
checkpoint, loaded through the registry, compared with the torch backend on the demo scene.

Tolerances: embeddings within 1e-4 relative (L2), low-resolution logits within 1e-3 (both are
float32 graphs of the same arithmetic; measured ~2e-5 and ~3e-7), masks IoU >= 0.99."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed; exporting needs it")
pytest.importorskip("segment_anything", reason="segment-anything is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytest.importorskip("onnx", reason="onnx is not installed (int8 quantisation needs it)")

from seg_qgis_plugin.cli.main import main  # noqa: E402
from seg_qgis_plugin.core.engine.labeling import open_backend  # noqa: E402
from seg_qgis_plugin.core.errors import CheckpointError, PromptError  # noqa: E402
from seg_qgis_plugin.core.models.backend import TilePrompt  # noqa: E402
from seg_qgis_plugin.core.models.download import sha256_file  # noqa: E402
from seg_qgis_plugin.core.models.onnx_backend import OnnxBackend  # noqa: E402
from seg_qgis_plugin.core.models.onnx_export import mask_iou  # noqa: E402
from seg_qgis_plugin.core.models.registry import add_local_model, checkpoint_path, list_models, read_exported_models  # noqa: E402
from seg_qgis_plugin.core.models.sam import SamBackend  # noqa: E402
from seg_qgis_plugin.demo.scene import write_scene  # noqa: E402


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    """(models folder, exported folder): the tiny checkpoint added, then exported by the CLI."""
    folder = tmp_path_factory.mktemp("models")
    add_local_model(tiny_checkpoint, str(folder), name="tiny")
    assert main(["models", "export-onnx", "tiny", "--folder", str(folder)]) == 0
    return str(folder), str(folder / "onnx" / "sam_vit_tiny-onnx")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The demo scene's 1024 x 1024 top-left corner as the model sees it, and its objects."""
    import rasterio

    path = str(tmp_path_factory.mktemp("scene") / "scene.tif")
    truth = write_scene(path, 1024, 1024)
    with rasterio.open(path) as src:
        image = src.read([1, 2, 3]).transpose(1, 2, 0)
    return image, truth


@pytest.fixture(scope="module")
def sessions(exported, tiny_checkpoint):
    return SamBackend(tiny_checkpoint, device="cpu", threads=2, precision="fp32"), OnnxBackend(exported[1], threads=2)


def test_manifest_records_the_checkpoint_and_every_graph_by_sha256(exported, tiny_checkpoint):
    with open(os.path.join(exported[1], "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["format"] == "seg-onnx/1" and manifest["model_type"] == "vit_tiny" and manifest["model_id"] == "sam-vit_tiny"
    assert manifest["checkpoint_sha256"] == sha256_file(tiny_checkpoint)
    assert set(manifest["files"]) == {"encoder", "decoder_tile", "decoder_prompt"}
    for entry in manifest["files"].values():
        assert entry["sha256"] == sha256_file(os.path.join(exported[1], entry["path"]))
    error = manifest["error_vs_torch_fp32"]
    assert error["embedding_rel_error"] < 1e-4 and error["decoder_logits_max_abs"] < 1e-3
    assert error["decoder_mask_iou_min"] >= 0.99 and error["end_to_end_mask_iou_min"] >= 0.99


def test_registry_knows_the_exported_model_and_keeps_the_added_checkpoint(exported, tiny_checkpoint):
    folder, path = exported
    entry = read_exported_models(folder)["sam_vit_tiny-onnx"]
    assert entry.path == path and entry.sha256 == sha256_file(tiny_checkpoint) and entry.quantization == "none"
    assert entry.files["encoder"] == sha256_file(os.path.join(path, "encoder.onnx"))
    rows = {r.name: r for r in list_models(folder)}
    assert rows["sam_vit_tiny-onnx"].state == "onnx" and rows["tiny"].state == "added"
    assert checkpoint_path("sam_vit_tiny-onnx", folder) == path
    assert checkpoint_path("tiny", folder) == os.path.abspath(tiny_checkpoint)
    assert isinstance(open_backend(checkpoint_path("sam_vit_tiny-onnx", folder)), OnnxBackend)  # auto picks onnx
    with pytest.raises(PromptError, match="export-onnx"):
        open_backend(tiny_checkpoint, backend="onnx")
    with pytest.raises(PromptError, match="exported ONNX model"):
        open_backend(path, backend="sam")


def test_a_changed_graph_is_refused(exported, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(exported[1], copy)
    with open(copy / "decoder_prompt.onnx", "ab") as f:
        f.write(b"\0")
    backend = OnnxBackend(str(copy))
    with pytest.raises(CheckpointError, match="sha256"):
        backend.decode(backend.encode(np.zeros((64, 64, 3), np.uint8)), TilePrompt(points=np.array([[5.0, 5.0]], np.float32), labels=np.ones(1, np.int32)))


def test_the_optimised_graph_is_kept_whole_reused_and_rebuilt_when_damaged(exported, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)

    def encode():
        backend = OnnxBackend(exported[1])
        features = backend.encode(image).arrays["features"]
        backend.close()  # waits for the decoders, opened meanwhile
        return features

    first = encode()
    kept = tmp_path / "cache" / "seg" / "onnx-optimized"
    folders = sorted(kept.iterdir())
    assert len(folders) == 3 and all(sorted(os.listdir(f)) == ["graph.onnx", "weights.bin"] for f in folders)  # no .part left
    encoder = next(f for f in folders if (f / "weights.bin").stat().st_size > 1_000_000)
    mtime = (encoder / "graph.onnx").stat().st_mtime_ns
    assert np.array_equal(encode(), first)
    assert (encoder / "graph.onnx").stat().st_mtime_ns == mtime  # opened as it was, not optimised again
    with open(encoder / "weights.bin", "r+b") as f:
        f.truncate(1000)
    assert np.array_equal(encode(), first)
    assert (encoder / "weights.bin").stat().st_size > 1_000_000  # rebuilt whole

def test_masks_and_logits_equal_the_torch_backend_on_the_demo_objects(sessions, scene):
    sam, onnx = sessions
    image, truth = scene
    ours, theirs = onnx.encode(image), sam.encode(image)
    a, b = theirs.arrays["features"], ours.arrays["features"]
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 1e-4
    assert ours.meta == theirs.meta and ours.image_size == theirs.image_size
    inside = [t for t in truth if 0 <= t.point[0] < 1024 and 0 <= t.point[1] < 1024]
    assert len(inside) >= 3
    for obj in inside:
        for prompt in (TilePrompt(points=np.array([obj.point], np.float32), labels=np.ones(1, np.int32)),
                       TilePrompt(box=tuple(float(v) for v in obj.box))):
            p, q = sam.decode(theirs, prompt), onnx.decode(theirs, prompt)
            assert np.abs(p.low_res_logits - q.low_res_logits).max() < 1e-3
            assert q.score == pytest.approx(p.score, abs=1e-4)
            assert mask_iou(p.mask, q.mask) >= 0.99
            assert np.abs(p.probability - q.probability).max() < 1e-3
            refined = TilePrompt(points=prompt.points, labels=prompt.labels, box=prompt.box, mask_input=p.low_res_logits)
            assert mask_iou(sam.decode(theirs, refined).mask, onnx.decode(theirs, refined).mask) >= 0.99
            assert mask_iou(p.mask, onnx.decode(ours, prompt).mask) >= 0.99  # end to end, each its own embedding


def test_resized_tiles_match_too(sessions):
    sam, onnx = sessions
    image = np.random.default_rng(3).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    ours, theirs = onnx.encode(image), sam.encode(image)
    assert ours.meta["input_size"] == [768, 1024]
    assert np.linalg.norm(theirs.arrays["features"] - ours.arrays["features"]) / np.linalg.norm(theirs.arrays["features"]) < 1e-4
    prompt = TilePrompt(points=np.array([[120.0, 500.0], [400.0, 100.0]], np.float32), labels=np.array([1, 0], np.int32))
    p, q = sam.decode(theirs, prompt), onnx.decode(theirs, prompt)
    assert p.mask.shape == q.mask.shape == (600, 800)
    assert mask_iou(p.mask, q.mask) >= 0.99


def test_embeddings_share_one_cache_key_with_the_torch_backend(sessions):
    sam, onnx = sessions
    assert (onnx.model_id, onnx.checkpoint_sha256, onnx.cacheable) == (sam.model_id, sam.checkpoint_sha256, True)


def test_the_onnx_backend_runs_without_torch(exported):
    code = ("import sys; sys.modules['torch'] = None; sys.modules['segment_anything'] = None; sys.modules['torchvision'] = None\n"
            "import numpy as np\n"
            "from seg_qgis_plugin.core.engine.labeling import open_backend\n"
            "from seg_qgis_plugin.core.models.backend import TilePrompt\n"
            f"b = open_backend({exported[1]!r}, threads=2)\n"
            "e = b.encode(np.full((300, 400, 3), 90, np.uint8))\n"
            "p = b.decode(e, TilePrompt(points=np.array([[50.0, 60.0]], np.float32), labels=np.ones(1, np.int32)))\n"
            "print(type(b).__name__, p.mask.shape, e.arrays['features'].shape, 'torch' in sys.modules and sys.modules['torch'] is not None)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == "OnnxBackend (300, 400) (1, 256, 64, 64) False"


def test_int8_export_records_its_measured_error(tiny_checkpoint, tmp_path):
    folder = tmp_path / "models"
    assert main(["models", "export-onnx", tiny_checkpoint, "--int8", "--folder", str(folder)]) == 0
    path = folder / "onnx" / (os.path.splitext(os.path.basename(tiny_checkpoint))[0] + "-onnx-int8")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["quantization"] == "int8" and manifest["model_id"] == "sam-vit_tiny-int8"
    error = manifest["error_vs_torch_fp32"]
    assert 0 < error["embedding_rel_error"] < 1 and 0 <= error["end_to_end_mask_iou_min"] <= 1
    assert error["decoder_logits_max_abs"] > 1e-4  # the decoder's weights were quantised too
    backend = OnnxBackend(str(path))
    assert backend.model_id == "sam-vit_tiny-int8"  # never shares cache entries with fp32 embeddings


def test_without_onnxruntime_the_sentence_says_what_to_install(tmp_path, monkeypatch):
    from seg_qgis_plugin.core.errors import MissingDependency
    from seg_qgis_plugin.core.models.onnx_backend import OnnxBackend

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependency, match=r"^SAM on ONNX Runtime needs onnxruntime, which is not installed: "):
        OnnxBackend(str(tmp_path))
