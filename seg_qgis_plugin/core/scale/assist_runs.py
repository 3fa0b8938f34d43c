"""`seg assist` in blocks of windows: on a Dask cluster, resumable after a kill, or both.

The assistant predicts window by window (core.assist.predict); here consecutive windows form
blocks. A block runs where it is sent (a worker opens the raster, the model and the embedding cache
once, `_predictor`) and returns its WindowResults; the main process writes them into the rasters
as they arrive and emits polygons in window order, so any run gives the serial run's output. Each
finished block is stored in the resume manifest (probability and uncertainty arrays, blob WKB); the
learned model is stored there too, so `--resume` reuses it instead of learning again.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..assist.options import PredictOptions
from ..assist.predict import Blob, WindowPredictor, WindowResult
from ..progress import Progress, check_canceled
from .cluster import open_client, run_blocks
from .manifest import ResumeManifest
from .runs import split_blocks

_PREDICTORS: Dict[str, WindowPredictor] = {}
MODEL_FILE = "model.json"


@dataclass(frozen=True)
class PredictorSpec:
    """How a worker builds the WindowPredictor: paths valid on the worker, the model as its JSON
    text (AssistModel.to_dict: data, no pickle), and the prediction options. threads: LightGBM
    threads per worker (1 for a LocalCluster, whose workers share this machine's cores; 0: all)."""

    raster: str
    model: str
    options: PredictOptions = PredictOptions()
    cache: Optional[str] = None
    checkpoint: Optional[str] = None
    threads: int = 0

    @property
    def key(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()

    def open(self) -> WindowPredictor:
        from ..assist.classifier import model_from_dict
        from ..geo.raster import RasterSource

        model = model_from_dict(json.loads(self.model))
        model.threads = self.threads
        source = RasterSource(self.raster)
        embedding = None
        if self.cache:
            from ..assist.embedding_features import EmbeddingFeatures

            embedding = EmbeddingFeatures.open(self.cache, source, self.checkpoint)
            embedding.use_recipe(model.recipe)
        return WindowPredictor(source, model, self.options, embedding)


def block_windows(spec: PredictorSpec, windows: List) -> List[WindowResult]:
    """Runs on a worker: the results of one block of windows, in order."""
    if spec.key not in _PREDICTORS:
        _PREDICTORS.clear()  # one run at a time per worker: let the previous raster and model go
        _PREDICTORS[spec.key] = spec.open()
    predictor = _PREDICTORS[spec.key]
    return [predictor(tuple(w)) for w in windows]


class BlockRunner:
    """A runner for predict_raster: windows in blocks of `block_windows`, finished blocks stored in
    `manifest` (and taken from it when a resumed run finds them there), the rest run here or, with
    `cluster` (local:N or tcp://HOST:PORT), on Dask workers that rebuild the predictor (cache and
    checkpoint: the embedding cache it reads, as given to EmbeddingFeatures.open)."""

    def __init__(self, manifest: Optional[ResumeManifest] = None, cluster: Optional[str] = None, block_windows: int = 4,
                 cache: Optional[str] = None, checkpoint: Optional[str] = None):
        self.manifest, self.cluster, self.block_windows = manifest, cluster, block_windows
        self.cache, self.checkpoint = cache, checkpoint

    def spec(self, predictor: WindowPredictor) -> PredictorSpec:
        """What workers need to build `predictor`; a LocalCluster's workers share this machine's
        cores, so each predicts with one thread."""
        threads = 1 if self.cluster.startswith("local:") else predictor.model.threads
        return PredictorSpec(os.path.abspath(predictor.source.path), json.dumps(predictor.model.to_dict()), predictor.options,
                             self.cache, self.checkpoint, threads)

    def __call__(self, predictor: WindowPredictor, windows: List, deliver: Callable, progress: Optional[Progress] = None) -> None:
        blocks = split_blocks(list(range(len(windows))), self.block_windows)
        finished = set()

        def done(block: int, results: List[WindowResult]) -> None:
            if self.manifest is not None and not self.manifest.done(block):
                self.manifest.save_arrays(block, results_to_arrays(results))
            finished.add(block)
            for index, result in zip(blocks[block], results):
                deliver(index, result)
            if progress is not None:
                progress.set_progress(100.0 * len(finished) / max(len(blocks), 1))

        for block in blocks:
            if self.manifest is not None and self.manifest.done(block):
                done(block, self.manifest.load_arrays(block, results_from_arrays))
        todo = {b: [windows[i] for i in indices] for b, indices in blocks.items() if b not in finished}
        if self.cluster and todo:
            with open_client(self.cluster) as client:
                spec = client.scatter(self.spec(predictor), broadcast=True)  # the model text travels once, not with every block
                run_blocks(client, block_windows, todo, (spec,), done, progress)
            return
        for block, block_list in todo.items():
            check_canceled(progress)
            done(block, [predictor(w) for w in block_list])


def assist_fingerprint(source, labels: Optional[Sequence], model_path: Optional[str], options: Dict[str, object]) -> Dict[str, object]:
    """What makes two assist runs the same run: the raster, what the model comes from (the labels'
    geometry and attributes, or the saved model file) and every option that changes the output."""
    from ..geo.wkb import to_wkb

    from ..models.file_digest import file_sha256

    if model_path:
        origin = "model:" + file_sha256(model_path)
    else:
        digest = hashlib.sha256()
        for label in labels or []:
            digest.update(to_wkb(label.geometry))
            digest.update(json.dumps([label.crs, label.attributes], sort_keys=True, default=str).encode())
        origin = "labels:" + digest.hexdigest()
    return {"version": 1, "kind": "assist", "raster": source.fingerprint(), "origin": origin,
            "options": json.loads(json.dumps({k: options[k] for k in sorted(options)}, default=str))}


def stored_model_path(manifest: ResumeManifest) -> Optional[str]:
    """The file of the model a killed run learned (saved in its manifest folder), or None."""
    path = os.path.join(manifest.folder, MODEL_FILE)
    return path if os.path.isfile(path) else None


def store_model(manifest: ResumeManifest, model) -> None:
    with manifest.writing():
        model.save(os.path.join(manifest.folder, MODEL_FILE))


def results_to_arrays(results: List[WindowResult]) -> Dict[str, np.ndarray]:
    """WindowResults as plain arrays (for np.savez): per window w: w{i}_window int64 (4,),
    w{i}_pixels, w{i}_probability / w{i}_uncertainty float32 when present, w{i}_blobs float64
    (n, 4) = class, total, count, at_edge, and w{i}_wkb uint8 with w{i}_offsets int64 (n + 1,)."""
    from ..geo.wkb import to_wkb

    arrays: Dict[str, np.ndarray] = {"windows": np.array([len(results)], np.int64)}
    for i, r in enumerate(results):
        arrays[f"w{i}_window"] = np.array(r.window, np.int64)
        arrays[f"w{i}_pixels"] = r.pixels
        for name in ("probability", "uncertainty"):
            if getattr(r, name) is not None:
                arrays[f"w{i}_{name}"] = getattr(r, name)
        arrays[f"w{i}_blobs"] = np.array([(b.cls, b.total, b.count, b.at_edge) for b in r.blobs], np.float64).reshape(-1, 4)
        wkbs = [to_wkb(b.polygon) for b in r.blobs]
        arrays[f"w{i}_offsets"] = np.cumsum([0] + [len(w) for w in wkbs]).astype(np.int64)
        arrays[f"w{i}_wkb"] = np.frombuffer(b"".join(wkbs), np.uint8)
    return arrays


def results_from_arrays(data) -> List[WindowResult]:
    from shapely import from_wkb

    results = []
    for i in range(int(data["windows"][0])):
        wkb, offsets = data[f"w{i}_wkb"].tobytes(), data[f"w{i}_offsets"]
        blobs = [Blob(int(c), from_wkb(wkb[offsets[k]:offsets[k + 1]]), float(t), int(n), bool(e))
                 for k, (c, t, n, e) in enumerate(data[f"w{i}_blobs"])]
        optional = {name: data[f"w{i}_{name}"] if f"w{i}_{name}" in data.files else None for name in ("probability", "uncertainty")}
        results.append(WindowResult(tuple(int(v) for v in data[f"w{i}_window"]), optional["probability"],
                                    optional["uncertainty"], data[f"w{i}_pixels"], blobs))
    return results
