"""`seg models`: list, download and add SAM checkpoints (the same registry the plugin uses).

    seg models list [--json]
    seg models download vit_b      # progress bar on stderr; Ctrl+C keeps a .part that the next run resumes
    seg models add PATH [--name NAME] [--model vit_b]
    seg models export-onnx MODEL [--int8] [--name NAME] [--out FOLDER]   # needs torch once; then no torch
    seg models random TYPE --out PATH   # random weights of any model type: tests, demos, benchmarks

The models folder is `models_folder` from the settings (config file, see core.settings), or --folder.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

from ..core.models.checkpoints import MODEL_TYPES
from ..core.models.sam2_checkpoints import SAM2_TYPES


def add_parsers(subparsers) -> argparse.ArgumentParser:
    """Register `models` and its sub-commands on the `seg` sub-parsers."""
    from ..core.models.registry import OFFICIAL_MODELS

    models = subparsers.add_parser("models", help="list, download and add SAM checkpoints")
    sub = models.add_subparsers(dest="models_command", required=True)

    def folder_option(p):
        p.add_argument("--folder", help="models folder (default: models_folder in the seg config file)")

    p = sub.add_parser("list", help="official models and added files, with their state")
    folder_option(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_list)

    p = sub.add_parser("download", help="download an official checkpoint (resumable, sha256-verified)")
    p.add_argument("name", choices=sorted(OFFICIAL_MODELS))
    p.add_argument("--url", help="a mirror to download from (the official size and sha256 are still checked)")
    folder_option(p)
    p.set_defaults(run=cmd_download)

    p = sub.add_parser("add", help="use a checkpoint file already on disk (verified, recorded by sha256)")
    p.add_argument("path")
    p.add_argument("--name", help="name to use it by (default: the file name without extension)")
    p.add_argument("--model", dest="model_type", choices=MODEL_TYPES + tuple(SAM2_TYPES),
                   help="expected model type (default: detected from the weights)")
    folder_option(p)
    p.set_defaults(run=cmd_add)

    p = sub.add_parser("export-onnx", help="export a checkpoint to ONNX Runtime (runs SAM without torch; needs torch once)")
    p.add_argument("model", help="an official or added model name, or a checkpoint file")
    p.add_argument("--int8", action="store_true", help="quantise the weights to int8 (smaller; the error is measured and recorded)")
    p.add_argument("--name", help="name to use it by (default: the checkpoint's name + -onnx)")
    p.add_argument("--out", help="folder to write (default: onnx/NAME in the models folder)")
    folder_option(p)
    from .run_outputs import declare

    declare(p, outputs=("--out",), inputs=("model",), folders=("--out",))
    p.set_defaults(run=cmd_export_onnx)

    p = sub.add_parser("random", help="a checkpoint with random weights (real architecture and cost, meaningless masks): "
                                      "for tests, demos and benchmarks")
    p.add_argument("model_type", metavar="TYPE", choices=MODEL_TYPES + tuple(SAM2_TYPES) + ("sam3",),
                   help=", ".join(MODEL_TYPES + tuple(SAM2_TYPES) + ("sam3",)))
    p.add_argument("--out", required=True, help="the checkpoint file to write (sam3: a folder; never over an existing one)")
    p.add_argument("--seed", type=int, default=0)
    declare(p, outputs=("--out",))
    p.set_defaults(run=cmd_random)
    return models


def cmd_random(args) -> int:
    from ..core.models.random_weights import write_random_checkpoint

    out = write_random_checkpoint(args.model_type, os.path.abspath(args.out), args.seed)
    size = sum(e.stat().st_size for e in os.scandir(out)) if os.path.isdir(out) else os.path.getsize(out)
    print(f"Wrote {out}: {args.model_type} with random weights ({size / 2**20:.0f} MiB). Its masks mean "
          "nothing; Seg warns whenever it is loaded.")
    return 0


def _folder(args) -> str:
    if args.folder:
        return os.path.abspath(args.folder)
    from ..core.settings import load_settings

    return load_settings().models_folder


class ByteBar:
    """The download's percent progress as a byte-counting tqdm bar on stderr."""

    def __init__(self, name: str, total: int):
        from tqdm import tqdm

        self.total = total
        self.bar = tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                        leave=False, dynamic_ncols=True)

    def set_progress(self, percent: float) -> None:
        self.bar.n = int(self.total * min(percent, 100.0) / 100.0)
        self.bar.refresh()

    def is_canceled(self) -> bool:
        return False

    def close(self) -> None:
        self.bar.close()


def cmd_list(args) -> int:
    from ..core.models.registry import list_models

    rows = list_models(_folder(args))
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    for r in rows:
        print(f"{r.name:<12} {r.model_type:<8} {r.size / 1e6:>8.0f} MB  {r.state:<8} {r.path}  ({r.detail})")
    return 0


def cmd_download(args) -> int:
    from ..core.models.download import part_path
    from ..core.models.registry import download_model, spec_for

    folder, spec = _folder(args), spec_for(args.name)
    bar = ByteBar(spec.filename, spec.size)
    try:
        path = download_model(args.name, folder, progress=bar, url=args.url)
    except KeyboardInterrupt:
        bar.close()
        part = part_path(os.path.join(folder, spec.filename))
        kept = os.path.getsize(part) if os.path.exists(part) else 0
        print(f"seg: interrupted; {kept} bytes are kept in {part}; run the same command to resume.", file=sys.stderr)
        return 130
    finally:
        bar.close()
    print(f"{args.name}: {path} (sha256 verified)")
    return 0


def cmd_add(args) -> int:
    from ..core.models.registry import add_local_model

    entry = add_local_model(args.path, _folder(args), name=args.name, model_type=args.model_type)
    print(f"{entry.name}: {entry.model_type} at {entry.path}, sha256 {entry.sha256}")
    return 0


def cmd_export_onnx(args) -> int:
    from ..core.models.onnx_export import export_onnx
    from ..core.models.registry import add_exported_model, checkpoint_path
    from .options import BarProgress

    folder = _folder(args)
    checkpoint = checkpoint_path(args.model, folder)
    name = args.name or os.path.splitext(os.path.basename(checkpoint))[0] + ("-onnx-int8" if args.int8 else "-onnx")
    out = os.path.abspath(args.out) if args.out else os.path.join(folder, "onnx", name)
    bar = BarProgress(f"export {name}")
    try:
        manifest = export_onnx(checkpoint, out, int8=args.int8, progress=bar)
    finally:
        bar.close()
    entry = add_exported_model(out, folder, name=name)
    error = manifest["error_vs_torch_fp32"]
    print(f"{entry.name}: {entry.model_type} ONNX ({entry.quantization}) at {entry.path}, from sha256 {entry.sha256}")
    print(f"  measured against torch fp32: embedding error {100 * error['embedding_rel_error']:.3f} %, decoder logits "
          f"max |diff| {error['decoder_logits_max_abs']:.2e}, worst mask IoU {error['end_to_end_mask_iou_min']:.4f}")
    return 0
