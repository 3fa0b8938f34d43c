"""The SAM checkpoints Seg knows by name, and the ones a user added from disk.

The official checkpoints (Meta's segment-anything README) are known by name, file, URL, size and
sha256. A models folder holds downloads under their official file names, plus `models.json`, which
records local files a user added (by absolute path: they are the user's files, not a cache) with
their sha256 and model type, and models exported to ONNX (`seg models export-onnx`: a folder with
a manifest) with the source checkpoint's sha256 and each graph's.

    download_model("vit_b", folder, progress)   # -> path; resumable, verified, atomic
    add_local_model("/data/sam_b.pth", folder)  # -> LocalModel; loads it once or matches a sha256
    add_exported_model("/data/vit_b-onnx", folder)  # -> ExportedModel; every graph checked by sha256
    checkpoint_path("vit_b", folder)            # name (official, added, exported) or path -> a path
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

from .download import ChecksumError, download_file, part_path
from .file_digest import file_sha256
from ..errors import CheckpointError
from ..progress import Progress

BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
SAM2_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
REGISTRY_FILE = "models.json"


@dataclass(frozen=True)
class ModelSpec:
    """An official checkpoint: size in bytes, sha256 in lowercase hex."""

    name: str
    filename: str
    size: int
    sha256: str
    description: str
    base_url: str = BASE_URL

    @property
    def url(self) -> str:
        return self.base_url + self.filename


# Checked against several independent public records of these files (sizes and sha256 agree).
OFFICIAL_MODELS: Dict[str, ModelSpec] = {
    "vit_b": ModelSpec("vit_b", "sam_vit_b_01ec64.pth", 375042383,
                       "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
                       "SAM ViT-B: fastest, the one to use on a CPU (~14 s per tile, ~8 s in bf16)"),
    "vit_l": ModelSpec("vit_l", "sam_vit_l_0b3195.pth", 1249524607,
                       "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
                       "SAM ViT-L: close to ViT-H in quality at half its size"),
    "vit_h": ModelSpec("vit_h", "sam_vit_h_4b8939.pth", 2564550879,
                       "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
                       "SAM ViT-H: best masks, needs a GPU to be interactive"),
    # SAM 2.1 (Apache-2.0). sha256 as Meta's Hugging Face pages (facebook/sam2.1-hiera-*) and micro-sam's
    # download table publish them; sizes from the files' Git LFS pointers.
    "sam2.1_hiera_tiny": ModelSpec("sam2.1_hiera_tiny", "sam2.1_hiera_tiny.pt", 156008466,
                                   "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
                                   "SAM 2.1 Hiera-Tiny: 39 M parameters, the fastest SAM on a CPU", SAM2_BASE_URL),
    "sam2.1_hiera_small": ModelSpec("sam2.1_hiera_small", "sam2.1_hiera_small.pt", 184416285,
                                    "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
                                    "SAM 2.1 Hiera-Small: 46 M parameters", SAM2_BASE_URL),
    "sam2.1_hiera_base_plus": ModelSpec("sam2.1_hiera_base_plus", "sam2.1_hiera_base_plus.pt", 323606802,
                                        "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
                                        "SAM 2.1 Hiera-B+: 81 M parameters", SAM2_BASE_URL),
    "sam2.1_hiera_large": ModelSpec("sam2.1_hiera_large", "sam2.1_hiera_large.pt", 898083611,
                                    "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
                                    "SAM 2.1 Hiera-L: 224 M parameters, best SAM 2.1 masks, GPU", SAM2_BASE_URL),
}


@dataclass(frozen=True)
class LocalModel:
    """A checkpoint a user added from disk."""

    name: str
    path: str
    sha256: str
    model_type: str
    size: int
    added: str  # UTC ISO 8601


@dataclass(frozen=True)
class ModelStatus:
    """One row of `seg models list`. state: "ready", "partial" (a resumable .part), "missing",
    "manual" (SAM 3: gated, the user downloads it), or "added" (a local file; "gone" when it has
    disappeared)."""

    name: str
    model_type: str
    path: str
    size: int
    state: str
    detail: str


def spec_for(name: str) -> ModelSpec:
    spec = OFFICIAL_MODELS.get(name)
    if spec is None:
        raise CheckpointError(f"Unknown model {name!r}; the official ones are {', '.join(OFFICIAL_MODELS)}.")
    return spec


def download_model(name: str, folder: str, progress: Optional[Progress] = None, url: Optional[str] = None) -> str:
    """Download official model `name` into `folder` (resuming a `.part`); returns its path.

    A file already in place with the right size is returned as is (it was verified when it was
    placed). `url` may point to a mirror; the official size and sha256 are still required.
    """
    spec = spec_for(name)
    dest = os.path.join(folder, spec.filename)
    if os.path.isfile(dest) and os.path.getsize(dest) == spec.size:
        return dest
    return download_file(url or spec.url, dest, sha256=spec.sha256, size=spec.size, progress=progress)


def add_local_model(path: str, folder: str, name: Optional[str] = None, model_type: Optional[str] = None) -> LocalModel:
    """Record a checkpoint file on disk under `name` (default: its file name without extension).

    A file whose sha256 is an official one is accepted without loading it; any other file is loaded
    once through the real loading path (needs torch and segment-anything) to prove it is SAM weights.
    Raises CheckpointError (missing, not SAM, wrong model type) or MissingDependency.
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    digest = file_sha256(path)
    official = next((s for s in OFFICIAL_MODELS.values() if s.sha256 == digest), None)
    if official is not None:
        found = official.name
        if model_type and model_type != found:
            raise CheckpointError(f"{path} is the official {found} checkpoint, not {model_type}.")
    else:
        from .checkpoints import load_sam
        from .checkpoint_files import checkpoint_family
        from .sam2_checkpoints import load_sam2

        _, found, _ = (load_sam2 if checkpoint_family(path) == "sam2" else load_sam)(path, model_type, device="cpu")
    name = name or os.path.splitext(os.path.basename(path))[0]
    if name in OFFICIAL_MODELS:
        raise CheckpointError(f"{name!r} is the name of an official model; give the added file another --name.")
    entry = LocalModel(name, path, digest, found, os.path.getsize(path), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    entries = read_local_models(folder)
    entries[name] = entry
    _write_registry(folder, entries)
    return entry


def _read_registry(folder: str) -> dict:
    path = os.path.join(folder, REGISTRY_FILE)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        return raw
    except ValueError as exc:
        raise CheckpointError(f"{path} is not a readable Seg models list ({exc}); fix or delete it.") from exc


def read_local_models(folder: str) -> Dict[str, LocalModel]:
    try:
        return {name: LocalModel(**fields) for name, fields in _read_registry(folder).get("local", {}).items()}
    except (TypeError, AttributeError) as exc:
        raise CheckpointError(f"{os.path.join(folder, REGISTRY_FILE)} is not a readable Seg models list ({exc}); fix or delete it.") from exc


@dataclass(frozen=True)
class ExportedModel:
    """A model exported to ONNX (`seg models export-onnx`): a folder with a manifest. sha256 is
    the source checkpoint's; files maps each graph to its own sha256."""

    name: str
    path: str
    model_type: str
    model_id: str
    sha256: str
    files: Dict[str, str]
    quantization: str
    size: int
    added: str


def add_exported_model(path: str, folder: str, name: Optional[str] = None) -> ExportedModel:
    """Record an exported ONNX model folder under `name` (default: the folder's name), after
    checking every graph against the sha256 in its manifest. Raises CheckpointError."""
    from .onnx_backend import read_manifest

    path = os.path.abspath(os.fspath(path))
    manifest = read_manifest(path)
    files = {}
    for graph, entry in manifest["files"].items():
        if file_sha256(os.path.join(path, entry["path"])) != entry["sha256"]:
            raise CheckpointError(f"{os.path.join(path, entry['path'])} does not match the sha256 in its manifest; export the model again.")
        files[graph] = entry["sha256"]
    name = name or os.path.basename(path)
    if name in OFFICIAL_MODELS or name in read_local_models(folder):
        raise CheckpointError(f"{name!r} already names a checkpoint; give the exported model another --name.")
    size = sum(os.path.getsize(os.path.join(path, e["path"])) for e in manifest["files"].values())
    entry = ExportedModel(name, path, manifest["model_type"], manifest["model_id"], manifest["checkpoint_sha256"], files,
                          manifest.get("quantization", "none"), size, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    exported = read_exported_models(folder)
    exported[name] = entry
    _write_registry(folder, read_local_models(folder), exported)
    return entry


def read_exported_models(folder: str) -> Dict[str, ExportedModel]:
    try:
        return {name: ExportedModel(**fields) for name, fields in _read_registry(folder).get("onnx", {}).items()}
    except (TypeError, AttributeError) as exc:
        raise CheckpointError(f"{os.path.join(folder, REGISTRY_FILE)} is not a readable Seg models list ({exc}); fix or delete it.") from exc


def list_models(folder: str) -> List[ModelStatus]:
    """The official models with their state in `folder`, then the added ones."""
    rows = []
    for spec in OFFICIAL_MODELS.values():
        dest = os.path.join(folder, spec.filename)
        part = part_path(dest)
        if os.path.isfile(dest) and os.path.getsize(dest) == spec.size:
            rows.append(ModelStatus(spec.name, spec.name, dest, spec.size, "ready", spec.description))
        elif os.path.isfile(part):
            done = os.path.getsize(part)
            rows.append(ModelStatus(spec.name, spec.name, part, spec.size, "partial",
                                    f"{100.0 * done / spec.size:.0f}% downloaded; download again to resume"))
        else:
            rows.append(ModelStatus(spec.name, spec.name, dest, spec.size, "missing", spec.description))
    rows.append(sam3_status(folder))
    for entry in read_local_models(folder).values():
        state = "added" if os.path.isfile(entry.path) else "gone"
        rows.append(ModelStatus(entry.name, entry.model_type, entry.path, entry.size, state, f"sha256 {entry.sha256[:12]}"))
    for entry in read_exported_models(folder).values():
        state = "onnx" if os.path.isdir(entry.path) else "gone"
        rows.append(ModelStatus(entry.name, entry.model_type, entry.path, entry.size, state,
                                f"ONNX ({entry.quantization}) of sha256 {entry.sha256[:12]}"))
    return rows


SAM3_NAME = "sam3"
SAM3_SIZE = 848_000_000 * 4  # about: 848 M parameters in fp32 (model.safetensors)
SAM3_HOW = ("gated under Meta's SAM License: accept it on huggingface.co/facebook/sam3, then download that folder "
            "(config.json, model.safetensors, tokenizer and processor files) into {}")


def sam3_status(folder: str) -> ModelStatus:
    """SAM 3 (concept prompts): never downloaded by Seg; ready when the user put its folder at
    `folder`/sam3."""
    from .sam3 import is_sam3_folder

    dest = os.path.join(folder, SAM3_NAME)
    if is_sam3_folder(dest):
        return ModelStatus(SAM3_NAME, SAM3_NAME, dest, SAM3_SIZE, "ready", "SAM 3: text and exemplar prompts (Find all)")
    return ModelStatus(SAM3_NAME, SAM3_NAME, dest, SAM3_SIZE, "manual", "SAM 3, " + SAM3_HOW.format(dest))


def checkpoint_path(name_or_path: str, folder: str) -> str:
    """A checkpoint file for an official name, an added name, or a path; the folder of an exported
    ONNX model or of SAM 3 for its name or path; CheckpointError if absent."""
    if name_or_path == SAM3_NAME:
        status = sam3_status(folder)
        if status.state != "ready":
            raise CheckpointError("SAM 3 is not there yet: it is " + SAM3_HOW.format(status.path) + ".")
        return status.path
    if name_or_path in OFFICIAL_MODELS:
        dest = os.path.join(folder, OFFICIAL_MODELS[name_or_path].filename)
        if not os.path.isfile(dest):
            raise CheckpointError(f"Model {name_or_path} is not downloaded yet; run: seg models download {name_or_path}.")
        return dest
    local = read_local_models(folder).get(name_or_path)
    if local is not None:
        if not os.path.isfile(local.path):
            raise CheckpointError(f"The added model {local.name} was at {local.path}, which no longer exists.")
        return local.path
    exported = read_exported_models(folder).get(name_or_path)
    if exported is not None:
        if not os.path.isdir(exported.path):
            raise CheckpointError(f"The exported model {exported.name} was at {exported.path}, which no longer exists.")
        return exported.path
    if os.path.isfile(name_or_path) or os.path.isfile(os.path.join(name_or_path, "manifest.json")) \
            or os.path.isfile(os.path.join(name_or_path, "config.json")):  # a transformers folder (SAM 3)
        return os.path.abspath(name_or_path)
    raise CheckpointError(f"{name_or_path!r} is neither a known model name, a checkpoint file, a SAM 3 folder nor an "
                          "exported ONNX model folder.")


def _write_registry(folder: str, entries: Dict[str, LocalModel], exported: Optional[Dict[str, ExportedModel]] = None) -> None:
    from ..outputs.atomic import write_json_atomic

    exported = read_exported_models(folder) if exported is None else exported
    write_json_atomic(os.path.join(folder, REGISTRY_FILE),
                      {"version": 1, "local": {n: asdict(e) for n, e in sorted(entries.items())},
                       "onnx": {n: asdict(e) for n, e in sorted(exported.items())}}, what="the models list")


__all__ = ["OFFICIAL_MODELS", "ModelSpec", "LocalModel", "ModelStatus", "ChecksumError", "spec_for", "download_model",
           "add_local_model", "read_local_models", "list_models", "checkpoint_path", "ExportedModel", "add_exported_model",
           "read_exported_models"]
