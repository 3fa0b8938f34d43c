"""What every `seg` command shares: the progress bar, the model and raster options, and the
model and Segmenter those options describe."""
from __future__ import annotations

import argparse
import sys

from ..core.models.checkpoints import MODEL_TYPES
from ..core.models.sam2_checkpoints import SAM2_TYPES


class BarProgress:
    """The engine's progress protocol as a tqdm bar on stderr, shown from the first progress on,
    so a mistake refused before any work prints its one sentence alone."""

    def __init__(self, description: str):
        self.description, self.bar = description, None

    def set_progress(self, percent: float) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=100, desc=self.description, unit="%", leave=False, file=sys.stderr,
                            bar_format="{desc} {bar} {n:.0f}% [{elapsed}<{remaining}]")
        self.bar.n = min(percent, 100.0)
        self.bar.refresh()

    def is_canceled(self) -> bool:
        return False

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def parse_pair(text: str):
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"write MIN,MAX, not {text!r}")
    return low, high


def parse_bands(text: str):
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"write band numbers like 4,3,2, not {text!r}")


def non_negative(text: str) -> float:
    """An argparse type: a size of 0 or more (tolerances, areas in map units)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"write a number, not {text!r}")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def model_options(p: argparse.ArgumentParser, cache: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--checkpoint", help="SAM checkpoint file (.pth), a SAM 3 folder (facebook/sam3), or a model name from "
                   "`seg models list`; without it the weights-free classic backend is used")
    g.add_argument("--model", dest="model_type", choices=MODEL_TYPES + tuple(SAM2_TYPES), help="model type (default: detected from the checkpoint)")
    g.add_argument("--backend", choices=["auto", "sam", "sam2", "sam3", "onnx", "classic"], default="auto",
                   help="auto: sam3 for a SAM 3 folder, onnx for an exported model folder (seg models export-onnx), "
                   "sam for a checkpoint, else classic")
    g.add_argument("--device", help="auto, cpu, cuda, cuda:1, mps (default: the `device` setting)")
    g.add_argument("--threads", type=int, help="CPU threads for torch (default: the `threads` setting)")
    g.add_argument("--bf16", action="store_true", help="encode under bfloat16 autocast (about 2x faster on CPUs with AMX or "
                   "AVX512-bf16, where it is already the default; much slower on others)")
    r = p.add_argument_group("raster")
    r.add_argument("--bands", type=parse_bands, help="bands for SAM's three channels, e.g. 4,3,2 (one band is repeated)")
    r.add_argument("--stretch", type=parse_pair, help="MIN,MAX value range instead of global 2-98 percentiles")
    r.add_argument("--tile", type=int, default=1024, help="tile size in model pixels (default 1024)")
    r.add_argument("--overlap", type=int, default=256, help="tile overlap in model pixels (default 256)")
    r.add_argument("--scale", type=int, default=1, help="work on the raster decimated by this factor")
    r.add_argument("--gsd", type=float, help="work at this ground sampling distance (map units per pixel)")
    if cache:
        r.add_argument("--cache", help="embedding cache folder, made or reused (default for SAM: the `cache_folder` setting)")
        r.add_argument("--float16", action="store_true", help="store cached embeddings as float16 (half the disk)")


def resolve_model(args):
    """(model session, settings) from the model options; settings fill what is not given."""
    from ..core.engine.labeling import open_backend
    from ..core.models.registry import checkpoint_path
    from ..core.settings import load_settings

    settings = load_settings()
    checkpoint = checkpoint_path(args.checkpoint, settings.models_folder) if args.checkpoint else None
    model = open_backend(checkpoint, args.model_type, args.backend, args.device or settings.device,
                         args.threads or settings.threads or None, "bf16" if args.bf16 else "auto")
    return model, settings


def open_segmenter_from_args(args):
    """The Segmenter the model and raster options describe."""
    from ..core.engine.labeling import open_segmenter
    from ..core.geo.raster import RasterSource
    from ..core.geo.tiling import Tiling, scale_for_gsd

    model, settings = resolve_model(args)
    scale = args.scale
    if args.gsd:
        with RasterSource(args.raster) as src:
            scale = scale_for_gsd(src.info().resolution[0], args.gsd)
    cache = getattr(args, "cache", None) or (settings.cache_folder if model.cacheable else None)
    segmenter = open_segmenter(args.raster, model, args.bands, args.stretch, cache_dir=cache,
                               float16=getattr(args, "float16", False), tiling=Tiling(args.tile, args.overlap, scale))
    return segmenter, settings


def prune_cache(segmenter, settings) -> None:
    """Keep the cache folder within the `cache_size_limit_mb` setting (0: no limit)."""
    if segmenter.cache is not None and settings.cache_size_limit_mb:
        segmenter.cache.prune(settings.cache_size_limit_mb * 2 ** 20)


def scale_options(p: argparse.ArgumentParser, resume: bool = True, unit: str = "tiles") -> None:
    """--cluster (and --resume) for commands that work tile by tile (core.scale); `unit` names
    what a block holds in the help."""
    g = p.add_argument_group("scale-out")
    g.add_argument("--cluster", metavar="local:N|tcp://HOST:PORT", type=cluster_spec,
                   help=f"run blocks of {unit} on a Dask cluster: N local worker processes, or a running scheduler "
                        "(workers need Seg, the model file and the raster at the same paths)")
    g.add_argument("--block-tiles", type=int, default=4, help=f"{unit} per cluster task and per resume step (default 4)")
    if resume:
        g.add_argument("--resume", action="store_true", help="skip the work a killed run finished (its manifest lies "
                       "beside --out) and end with exactly the uninterrupted output")


def cluster_spec(text: str) -> str:
    """An argparse type: a --cluster value this machine can run (core.scale.cluster.parse_cluster)."""
    from ..core.errors import SettingError
    from ..core.scale.cluster import parse_cluster

    try:
        parse_cluster(text)
    except SettingError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def make_request(request_type, *args, **fields):
    """request_type(*args, **fields), its one-sentence refusal spoken in flags (`no_overlap` ->
    `--no-overlap`), since the terminal user typed flags."""
    import dataclasses
    import re

    from ..core.errors import SegError

    try:
        return request_type(*args, **fields)
    except SegError as exc:
        names = sorted((f.name for f in dataclasses.fields(request_type) if f.name in fields), key=len, reverse=True)
        if not names:
            raise
        text = re.sub(r"(?<![-\w])(" + "|".join(map(re.escape, names)) + r")\b",
                      lambda m: "--" + m.group(1).replace("_", "-"), str(exc))
        raise type(exc)(text) from None


def model_fields(args) -> dict:
    """The model options as core.jobs.base.ModelFields' fields."""
    return dict(checkpoint=args.checkpoint, model_type=args.model_type, backend=args.backend, device=args.device,
                threads=args.threads or 0, precision="bf16" if args.bf16 else "auto")


def raster_fields(args) -> dict:
    """The raster options as core.jobs.base.RasterFields' fields."""
    return dict(bands=args.bands, stretch=args.stretch, tile=args.tile, overlap=args.overlap, scale=args.scale,
                gsd=args.gsd, cache=getattr(args, "cache", None))


def model_spec_from_args(args):
    """How cluster workers open the model these options describe (core.scale.cluster.ModelSpec)."""
    import os

    from ..core.models.registry import checkpoint_path
    from ..core.scale.cluster import ModelSpec
    from ..core.settings import load_settings

    settings = load_settings()
    checkpoint = checkpoint_path(args.checkpoint, settings.models_folder) if args.checkpoint else None
    return ModelSpec(os.path.abspath(checkpoint) if checkpoint else None, args.model_type, args.backend,
                     args.device or settings.device, args.threads or settings.threads or None, "bf16" if args.bf16 else "auto")
