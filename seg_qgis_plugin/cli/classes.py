"""Options every class-writing or class-reading command shares: the ontology (`--classes`,
`--add-missing`) and shared borders (`--no-overlap`, `--snap`)."""
from __future__ import annotations

import argparse


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
