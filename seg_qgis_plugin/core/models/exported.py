"""An exported model folder (`seg models export-onnx`) opened with the session class of its family."""
from __future__ import annotations

from typing import Optional

from .onnx_backend import OnnxBackend, read_manifest


def open_exported(folder: str, threads: Optional[int] = None) -> OnnxBackend:
    """The ONNX Runtime session for an exported SAM or SAM 2.1 model."""
    if read_manifest(folder).get("family") == "sam2":
        from .onnx_sam2 import Sam2OnnxBackend

        return Sam2OnnxBackend(folder, threads)
    return OnnxBackend(folder, threads)
