"""SAM on ONNX Runtime: the model session with onnxruntime and numpy only (no torch).

The folder comes from `seg models export-onnx` (core.models.onnx_export): encoder.onnx,
decoder_tile.onnx, decoder_prompt.onnx and manifest.json (SAM 2.1: encoder.onnx and
decoder_prompt.onnx, run by onnx_sam2.Sam2OnnxBackend; exported.open_exported picks the class). Embeddings are the torch backend's
(same model id, same checkpoint sha256, same "features" array and "input_size"), so a cache
encoded by torch on a GPU server answers clicks here, and the other way round. An int8 export has
its own model id ("sam-vit_b-int8"), so its embeddings never mix with fp32 ones.

Each graph is opened when first needed: a session that only answers clicks on cached tiles never
loads the encoder, and the decoders open in a thread while the first tile encodes. Each file's
sha256 is checked against the manifest when it is opened, beside the opening itself. ONNX
Runtime's graph optimisation of an encoder takes seconds on every open (about 4.5 s for SAM 2.1
Hiera-Tiny on two cores), so the optimised graph is kept in the user's cache folder, keyed by
the graph's sha256, the ONNX Runtime version and the CPU's instruction sets (the optimised graph
may use kernels of this CPU), its weights in a file beside it that later opens map as they are.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import CheckpointError, MissingDependency
from .backend import AUTOMATIC, BATCHED, BOXES, MASKS, POINTS, Embedding, MaskPrediction, TilePrompt, model_frame
from .sam_frames import MaskUpsampler, encoder_input

FORMAT = "seg-onnx/1"
MANIFEST = "manifest.json"
OPTIMIZED_GRAPH, OPTIMIZED_WEIGHTS = "graph.onnx", "weights.bin"
GRAPHS = {"sam": ("encoder", "decoder_tile", "decoder_prompt"), "sam2": ("encoder", "decoder_prompt")}


def model_folder(path: str) -> str:
    """An exported model named by its folder or by its manifest.json (what a file picker gives) -> the folder."""
    path = os.fspath(path)
    return os.path.dirname(os.path.abspath(path)) if os.path.basename(path) == MANIFEST and os.path.isfile(path) else path


def is_exported_model(path: Optional[str]) -> bool:
    """True for a folder written by `seg models export-onnx`, or its manifest.json."""
    if not path:
        return False
    folder = model_folder(path)
    return os.path.isdir(folder) and os.path.isfile(os.path.join(folder, MANIFEST))


def read_manifest(folder: str) -> dict:
    """The manifest of an exported model; CheckpointError when it is missing or not ours."""
    folder = model_folder(folder)
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        raise CheckpointError(f"{folder} is not an exported ONNX model (no {MANIFEST}); export one with: seg models export-onnx MODEL.")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except ValueError as exc:
        raise CheckpointError(f"{path} is not readable JSON ({exc}).") from exc
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise CheckpointError(f"{path} is not a {FORMAT} manifest.")
    family = manifest.setdefault("family", "sam")  # exports before SAM 2 were all SAM
    if family not in GRAPHS:
        raise CheckpointError(f"{path} is a {family!r} model, which this version of Seg cannot run; update Seg.")
    for name in GRAPHS[family]:
        entry = manifest["files"].get(name)
        if not entry or not os.path.isfile(os.path.join(folder, entry["path"])):
            raise CheckpointError(f"The exported model in {folder} lacks its {name} graph; export it again.")
    return manifest


def optimized_path(sha256: str, version: str) -> Optional[str]:
    """Where the optimised copy of a graph lives in the user's cache folder (a folder of its own:
    the graph, and its weights beside it in OPTIMIZED_WEIGHTS, which ONNX Runtime maps instead of
    copying, so a large encoder opens in a quarter of the time); None when the cache cannot be made."""
    from ..settings import user_dir
    from .sam_encoder import cpu_flags

    flags = cpu_flags()
    isa = "-".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags) or "base"
    folder = os.path.join(user_dir("cache"), "onnx-optimized")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return os.path.join(folder, f"{sha256[:32]}-ort{version}-{isa}", OPTIMIZED_GRAPH)


class OnnxBackend:
    """A SAM model session on ONNX Runtime (CPU). threads: intra-op threads (None: all cores)."""

    cacheable = True
    capabilities = frozenset({POINTS, BOXES, MASKS, AUTOMATIC, BATCHED})

    def __init__(self, folder: str, threads: Optional[int] = None, verify: bool = True):
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            from ..dependencies import missing_sentence

            raise MissingDependency(missing_sentence(("onnx",)) or f"onnxruntime does not load here ({exc}).") from exc
        self.folder = os.path.abspath(model_folder(folder))
        self.manifest = read_manifest(self.folder)
        self.model_type = self.manifest["model_type"]
        self.model_id = self.manifest["model_id"]
        self.checkpoint_sha256 = self.manifest["checkpoint_sha256"]
        self.image_size = int(self.manifest["image_size"])
        self.threads, self.verify = threads, verify
        self._sessions: dict = {}
        self._tile_of: tuple = (None, None)
        self._opener: Optional[threading.Thread] = None
        self._opened: Dict[str, threading.Event] = {}

    def session(self, name: str):
        """The ONNX Runtime session of graph `name`, opened (and its sha256 checked) on first use."""
        opened = self._opened.get(name)
        if opened is not None and threading.current_thread() is not self._opener:
            opened.wait()
        if name not in self._sessions:
            self._sessions[name] = self._verified_session(name)
        return self._sessions[name]

    def open_meanwhile(self) -> None:
        """Open every graph in a thread (called by encode), the encoder first: the decoders open while
        the first tile encodes, and run once on zeros (ONNX Runtime's first run allocates), so the
        first click waits for neither. A failure is left for `session` to raise in the caller's
        thread. (Opening them earlier, beside the raster's opening, was measured: no faster.)"""
        names = [n for n in ("encoder", "decoder_tile", "decoder_prompt") if n in self.manifest["files"] and n not in self._sessions]
        if self._opener is not None or not names:
            return
        self._opened = {n: threading.Event() for n in names}

        def open_all():
            for n in names:
                try:
                    session = self._sessions.setdefault(n, self._verified_session(n))
                except Exception:  # noqa: BLE001 - raised again, in the caller's thread, by session()
                    continue
                finally:
                    self._opened[n].set()
                if n != "encoder":
                    try:
                        session.run(None, {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
                                           for i in session.get_inputs()})
                    except Exception:  # noqa: BLE001 - a first run that fails here fails again, visibly, on the first click
                        pass

        self._opener = threading.Thread(target=open_all, name="seg-onnx-open", daemon=True)
        self._opener.start()

    def _verified_session(self, name: str):
        """Open graph `name` once its sha256 matches the manifest. The optimised copy in the user's
        cache (never the unverified file itself) is opened while the hash is computed beside it:
        hashlib releases the GIL, so both cores work."""
        import onnxruntime as ort

        from .file_digest import file_sha256

        entry = self.manifest["files"][name]
        path = os.path.join(self.folder, entry["path"])
        optimized = optimized_path(entry["sha256"], ort.__version__)
        digest: list = []
        hashing = threading.Thread(target=lambda: digest.append(file_sha256(path)), daemon=True)
        session = None
        if self.verify:
            hashing.start()
        try:
            if optimized and os.path.isfile(optimized):
                try:
                    session = self._open(optimized, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
                except CheckpointError:  # a damaged copy: drop it and optimise again
                    shutil.rmtree(os.path.dirname(optimized), ignore_errors=True)
        finally:
            if self.verify:
                hashing.join()
        if self.verify and digest != [entry["sha256"]]:
            raise CheckpointError(f"{path} does not match the sha256 in its manifest; export the model again.")
        return session or self._optimize(path, optimized, ort)

    def _optimize(self, path: str, optimized: Optional[str], ort):
        """Open `path` with ONNX Runtime's optimisations and keep the optimised graph at `optimized`
        (its folder written whole under another name, then renamed into place)."""
        part = f"{os.path.dirname(optimized)}.{os.getpid()}.{threading.get_ident()}.part" if optimized else ""
        try:
            if part:
                os.makedirs(part)
        except OSError:  # no room or no rights in the cache: optimise again next time
            part = ""
        session = self._open(path, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, os.path.join(part, OPTIMIZED_GRAPH) if part else "")
        if part:
            try:
                os.replace(part, os.path.dirname(optimized))
            except OSError:  # another process was first, or no room: theirs serves, or optimise again next time
                shutil.rmtree(part, ignore_errors=True)
        return session

    def _open(self, path: str, level, save_to: str = ""):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.optimized_model_filepath = save_to
        if save_to:
            options.add_session_config_entry("session.optimized_model_external_initializers_file_name", OPTIMIZED_WEIGHTS)
            options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.enable_mem_pattern = False  # its one planned block took the Hiera-Tiny first mask from 1.1 to 1.7 GB, for no speed
        options.inter_op_num_threads = 1
        # Workers that sleep rather than spin between kernels leave QGIS's threads their core and burn no
        # battery: Start -> first mask in the desktop, five interleaved pairs, 3.9 s mean, 4.7 s spinning.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: the optimiser's shape notes on Hiera are not the user's
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
        try:
            return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own unrelated exception types
            raise CheckpointError(f"ONNX Runtime cannot load {path} ({str(exc).splitlines()[0][:160]}).") from exc

    def encode(self, image: np.ndarray) -> Embedding:
        """image uint8 (H, W, 3) -> Embedding with "features" float32 (1, 256, 64, 64)."""
        self.open_meanwhile()
        x, size_in = encoder_input(image, self.image_size)
        features = self.session("encoder").run(["features"], {"image": x})[0]
        return Embedding(image_size=tuple(image.shape[:2]), arrays={"features": features.astype(np.float32, copy=False)},
                         meta={"input_size": list(size_in)})

    def tile_state(self, embedding: Embedding, mask_input: Optional[np.ndarray] = None) -> dict:
        """The per-tile decoder tensors (kept for the embedding prompted last without a mask)."""
        if mask_input is None and self._tile_of[0] is embedding:
            return self._tile_of[1]
        low = 4 * self.image_size // 16
        mask = np.zeros((1, 1, low, low), np.float32) if mask_input is None else np.asarray(mask_input, np.float32).reshape(1, 1, low, low)
        has_mask = np.array([0.0 if mask_input is None else 1.0], np.float32)
        names = ("keys", "first_k", "first_v", "first_image_q")
        outputs = self.session("decoder_tile").run(list(names), {
            "features": np.ascontiguousarray(embedding.arrays["features"], np.float32), "mask_input": mask, "has_mask": has_mask})
        state = dict(zip(names, outputs))
        if mask_input is None:
            self._tile_of = (embedding, state)
        return state

    def decode(self, embedding: Embedding, prompt: TilePrompt, multimask: Optional[bool] = None) -> MaskPrediction:
        multimask, sx, sy = model_frame(embedding, prompt, multimask)
        h, w = embedding.image_size
        h_in, w_in = embedding.meta["input_size"]
        scale = np.array([sx, sy], np.float32)
        coords = [np.asarray(prompt.points, np.float32).reshape(-1, 2) * scale]
        labels = [np.asarray(prompt.labels, np.float32).reshape(-1)]
        if prompt.box is None:  # SAM pads point prompts without a box with one "not a point"
            coords.append(np.zeros((1, 2), np.float32))
            labels.append(np.array([-1.0], np.float32))
        else:
            coords.append(np.asarray(prompt.box, np.float32).reshape(2, 2) * scale)
            labels.append(np.array([2.0, 3.0], np.float32))
        feeds = dict(self.tile_state(embedding, prompt.mask_input))
        feeds["point_coords"] = np.concatenate(coords)[None]
        feeds["point_labels"] = np.concatenate(labels)[None]
        feeds["multimask"] = np.array([1.0 if multimask else 0.0], np.float32)
        low_res, score = self.session("decoder_prompt").run(["low_res_logits", "score"], feeds)
        return MaskUpsampler((h, w), (h_in, w_in), self.image_size)(low_res[0, 0], float(score[0]))

    def decode_points(self, embedding: Embedding, points: np.ndarray, batch: int = 16) -> List[Tuple[np.ndarray, float, float]]:
        """(mask bool (h, w), score, stability) for each single-point prompt of `points` float32
        (N, 2), the best of three candidates each. One prompt-graph run per point (the per-tile
        part is shared), so `batch` only keeps the signature of the torch backend."""
        out = []
        for x, y in np.asarray(points, np.float32).reshape(-1, 2):
            p = self.decode(embedding, TilePrompt(points=np.array([[x, y]], np.float32), labels=np.ones(1, np.int32)), True)
            out.append((p.mask, p.score, p.stability))
        return out

    def close(self) -> None:
        """Drop the ONNX Runtime sessions and the per-tile state."""
        if self._opener is not None:
            self._opener.join()
        self._sessions, self._tile_of, self._opener, self._opened = {}, (None, None), None, {}
