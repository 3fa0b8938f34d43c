"""Shared fixtures: small rasters written by code, a tiny SAM checkpoint, an oracle backend.

The oracle is a test double with the model-session interface whose answer is known exactly, so
georeferencing, tiling and export can be checked to the pixel independently of any model.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from seg_qgis_plugin.core.models.backend import Embedding, MaskPrediction, TilePrompt

# Automatic precision follows the CPU (bf16 where it has AMX or AVX512-bf16): the tests exercise fp32
# everywhere, and the bf16 tests ask for bf16 by name.
os.environ["SEG_PRECISION"] = "fp32"

SHARED_DATA = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


@pytest.fixture
def tree_fingerprint():
    """tree_fingerprint(folder) -> {relative path: sha256, or "dir"} for everything under `folder`."""
    import hashlib

    def walk(folder):
        found = {}
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                full = os.path.join(root, name)
                found[os.path.relpath(full, folder)] = (hashlib.sha256(open(full, "rb").read()).hexdigest()
                                                        if os.path.isfile(full) else "dir")
        return found

    return walk


@pytest.fixture
def shared():
    """shared("folder", "file") -> path in ../shared/data; skips the test where the data is absent."""

    def path_of(*parts: str) -> str:
        path = os.path.join(SHARED_DATA, *parts)
        if not os.path.exists(path):
            pytest.skip(f"real test data {os.path.join(*parts)} is not present beside the checkout (../shared/data)")
        return path

    return path_of


class OracleBackend:
    """Answers from the image itself. mode "bright": the 8-connected region of pixels with
    channel 0 > 127 that holds the positive points; mode "box": exactly the pixels whose centres
    lie in the box; mode "square": a (2k+1)-pixel square around each positive point's pixel."""

    checkpoint_sha256 = None
    cacheable = False
    capabilities = frozenset({"points", "boxes", "automatic"})

    def __init__(self, mode: str = "bright", k: int = 3):
        self.mode, self.k = mode, k
        self.model_id = f"oracle-{mode}"
        self.encoded = 0

    def close(self) -> None:
        pass

    def encode(self, image: np.ndarray) -> Embedding:
        self.encoded += 1
        return Embedding(image.shape[:2], {"image": image})

    def decode(self, embedding: Embedding, prompt: TilePrompt, multimask=None) -> MaskPrediction:
        import cv2

        h, w = embedding.image_size
        mask = np.zeros((h, w), bool)
        positives = [(int(round(x)), int(round(y))) for (x, y), l in zip(prompt.points, prompt.labels) if l == 1]
        if self.mode == "box" and prompt.box is not None:
            x0, y0, x1, y1 = prompt.box
            cols, rows = np.arange(w), np.arange(h)
            mask[np.ix_((rows >= y0) & (rows <= y1), (cols >= x0) & (cols <= x1))] = True
        elif self.mode == "square":
            for x, y in positives:
                mask[max(y - self.k, 0):y + self.k + 1, max(x - self.k, 0):x + self.k + 1] = True
        else:
            bright = (embedding.arrays["image"][:, :, 0] > 127).astype(np.uint8)
            _, labels = cv2.connectedComponents(bright, connectivity=8)
            ids = {labels[y, x] for x, y in positives if 0 <= x < w and 0 <= y < h and bright[y, x]}
            mask = np.isin(labels, list(ids))
        return MaskPrediction(mask=mask, probability=mask.astype(np.float32), score=1.0, stability=1.0)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's Seg settings, models or embedding cache."""
    home = tmp_path_factory.mktemp("seg-home")
    monkeypatch.setenv("SEG_CONFIG", str(home / "config.ini"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))


@pytest.fixture
def oracle():
    return OracleBackend


def write_raster(path, data, crs="EPSG:32633", transform=None, nodata=None, **extra):
    """Write data (bands, h, w) as a GeoTIFF; default transform: 0.5 m pixels at (500000, 4650000)."""
    import rasterio
    from rasterio.transform import from_origin

    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype.name,
                   crs=crs, transform=transform if transform is not None else from_origin(500000, 4650000, 0.5, 0.5), nodata=nodata)
    profile.update(extra)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return str(path)


@pytest.fixture
def raster_factory(tmp_path):
    counter = iter(range(1000))

    def make(data, name=None, **kw):
        return write_raster(tmp_path / (name or f"r{next(counter)}.tif"), data, **kw)

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A vit_tiny SAM checkpoint with random weights (fixed seed), saved as a real state dict."""
    torch = pytest.importorskip("torch", reason="torch is not installed; SAM tests need it")
    pytest.importorskip("segment_anything", reason="segment-anything is not installed")
    from seg_qgis_plugin.core.models.checkpoints import build_sam

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "sam_vit_tiny.pth"
    torch.save(build_sam("vit_tiny").state_dict(), path)
    return str(path)


@pytest.fixture(scope="session")
def sam21_tiny_exported(tmp_path_factory):
    """(checkpoint, ONNX folder): a random-weight SAM 2.1 Hiera-Tiny of the official configuration,
    made by `seg models random`, and its `seg models export-onnx` export (about 30 s)."""
    import warnings

    pytest.importorskip("sam2", reason="SAM 2 is not installed (make venv installs requirements-sam2.txt)")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (make venv installs it)")
    from seg_qgis_plugin.cli.main import main
    from seg_qgis_plugin.core.models.checkpoint_files import RandomWeightsWarning

    folder = tmp_path_factory.mktemp("sam2onnx")
    tiny = str(folder / "tiny.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        assert main(["models", "random", "sam2.1_hiera_tiny", "--out", tiny]) == 0
        assert main(["models", "export-onnx", tiny, "--folder", str(folder / "models")]) == 0
    return tiny, str(folder / "models" / "onnx" / "tiny-onnx")
