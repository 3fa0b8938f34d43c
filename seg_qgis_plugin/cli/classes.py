"""Options every class-writing or class-reading command shares: the ontology (`--classes`,
`--add-missing`) and shared borders (`--no-overlap`, `--snap`)."""
from __future__ import annotations

import argparse
from typing import Iterable, Optional


def class_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--classes", metavar="ONTOLOGY", help="ontology file (JSON, or YAML): class names, their stable codes "
                   "and colours; without it integer class names keep their integer and others are numbered per file")
    p.add_argument("--add-missing", action="store_true", help="classes not in the ontology get codes after its highest "
                   "code instead of an error")


def border_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-overlap", action="store_true", help="shared borders: cut new objects by the labels already in "
                   "the output layer (and, for prelabel, by each other: the higher score wins) on the raster's pixel grid")
    p.add_argument("--snap", type=float, default=0.0, metavar="TOL", help="with --no-overlap: snap new outlines to "
                   "existing vertices within TOL map units")


def load_classes(args: argparse.Namespace):
    """The ontology of `--classes`, or None."""
    if not getattr(args, "classes", None):
        return None
    from ..core.engine.ontology import load_ontology

    return load_ontology(args.classes)


def check_classes(names: Iterable[str], ontology, add_missing: bool) -> None:
    """One sentence, before any work, when a class is not in the ontology (unless add_missing)."""
    if ontology is None or add_missing:
        return
    from ..core.engine.ontology import class_codes

    class_codes(names, ontology)


def check_snap(args: argparse.Namespace) -> Optional[float]:
    from ..core.errors import SettingError

    if args.snap < 0:
        raise SettingError(f"The snap tolerance must be 0 or more map units, not {args.snap}.")
    if args.snap and not args.no_overlap:
        raise SettingError("--snap works with --no-overlap; add --no-overlap.")
    return args.snap
