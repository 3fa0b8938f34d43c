"""Concept prompts: every instance of a phrase ("pond") or of an example ("like this") on a raster,
as pre-labels.

Tiled like automatic mode: each tile with data is searched, its instances become Pieces, and
pieces of one object seen from several tiles are merged (mask_merge.py), class by class. Two
routes, one result:
- SAM 3 (a backend with CONCEPTS): the phrase and any exemplar boxes go to the model; an exemplar's
  prompt tokens are carried to the tiles that do not contain it (models/sam3.py).
- Any other backend ("Like this" without SAM 3): the examples' features find look-alikes, which the
  backend then segments (like_this.py). Text needs SAM 3.

Each phrase maps to a class: the phrase itself, `pond=water`, or the ontology class that lists the
phrase among its synonyms. Features get prompt_type "text" (a phrase, with or without exemplars)
or "exemplar", and the model's score.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..errors import SegError, SettingError
from ..engine.labeling import provenance
from ..engine.labels import Label, attributes
from ..engine.segmenter import Segmenter
from ..geo.tiling import Tile
from ..geo.vectorize import clean_polygons, mask_to_geometry
from ..progress import Progress, check_canceled
from .like_this import LikeThisFinder, example_box
from .mask_merge import Piece, merge_pieces
from .prelabel import PrelabelResult, _reaches_other_tiles, _valid


@dataclass(frozen=True)
class Concept:
    """What the model reads (`phrase`; None for examples alone) and the class its instances get."""

    phrase: Optional[str]
    class_name: str


@dataclass(frozen=True)
class Example:
    """An example object (a shapely geometry in `crs`): positive (like this) or negative (not this)."""

    geometry: object
    crs: str
    positive: bool = True
    class_name: str = ""


@dataclass(frozen=True)
class FindOptions:
    """min_score: the model's score an instance needs; merge_iou across tiles; clean-up in map
    units; tags on every feature; class_name for examples without a phrase or class."""

    min_score: float = 0.5
    merge_iou: float = 0.5
    simplify: float = 0.0
    min_area: float = 0.0
    fill_holes: float = 0.0
    tags: Dict[str, str] = field(default_factory=dict)
    class_name: str = "object"


def parse_concepts(texts: Sequence[str], ontology=None) -> List[Concept]:
    """"pond" -> the class "pond" (or the ontology class whose synonyms name it); "pond=water" ->
    the phrase "pond" as class "water"."""
    concepts = []
    for text in texts:
        phrase, _, name = (part.strip() for part in str(text).partition("="))
        if not phrase:
            raise SettingError(f"A text prompt needs a phrase before '=', not {text!r}.")
        concepts.append(Concept(phrase, name or class_for_phrase(phrase, ontology)))
    return concepts


def class_for_phrase(phrase: str, ontology=None) -> str:
    """The ontology class named by `phrase` or listing it among its synonyms, else the phrase."""
    wanted = phrase.casefold()
    for cls in getattr(ontology, "classes", ()) or ():
        if cls.name.casefold() == wanted or wanted in (s.casefold() for s in getattr(cls, "synonyms", ()) or ()):
            return cls.name
    return phrase


def find_concepts(segmenter: Segmenter, concepts: Sequence[Concept], examples: Sequence[Example] = (),
                  tiles: Optional[Sequence[Tile]] = None, options: FindOptions = FindOptions(),
                  progress: Optional[Progress] = None, on_label: Optional[Callable[[Label], None]] = None) -> PrelabelResult:
    """Every instance of `concepts` (phrases) and `examples` on `tiles` (default: the grid), merged
    across tiles. With no phrase, the examples alone are the concept (class: theirs, else
    options.class_name)."""
    from ..models.sam3 import CONCEPTS

    examples = examples_in_raster_crs(examples, segmenter.source.crs.to_wkt())
    if not concepts and not any(e.positive for e in examples):
        raise SettingError("Give a phrase (--text) or at least one positive example (--exemplars).")
    if not concepts:
        concepts = [Concept(None, next((e.class_name for e in examples if e.class_name), options.class_name))]
    if CONCEPTS in segmenter.backend.capabilities:
        finder = Sam3Finder(segmenter, examples, options)
    elif any(c.phrase for c in concepts):
        raise SettingError(f"Text prompts need SAM 3 weights (a facebook/sam3 folder as --checkpoint); the "
                           f"{segmenter.backend.model_id} backend can find objects like examples (--exemplars) instead.")
    else:
        finder = LikeThisFinder(segmenter, examples, options)
    tiles = list(segmenter.grid if tiles is None else tiles)
    pieces: Dict[str, List[Piece]] = {}
    kinds: Dict[str, str] = {}
    for done, tile in enumerate(tiles, start=1):
        check_canceled(progress)
        valid = _valid(segmenter.source, tile)
        if valid.any():
            for concept, mask, score in finder.tile(tile, concepts):
                piece = _piece(segmenter, tile, mask & valid, score)
                if piece is not None:
                    pieces.setdefault(concept.class_name, []).append(piece)
                    kinds[concept.class_name] = "text" if concept.phrase else "exemplar"
        if progress is not None:
            progress.set_progress(95.0 * done / max(len(tiles), 1))
    result = PrelabelResult(on_label=on_label, grid=segmenter.level_transform)
    shared, crs = provenance(segmenter), segmenter.source.crs.to_wkt()
    for class_name in sorted(pieces):
        merged = merge_pieces(pieces[class_name], segmenter.level_transform, options.merge_iou)
        for obj in sorted(merged, key=lambda o: (-o.geometry.bounds[3], o.geometry.bounds[0])):
            geometry = clean_polygons(obj.geometry, options.simplify, options.min_area, options.fill_holes)
            if geometry is not None:
                attrs = attributes(class_name, options.tags, score=obj.score, stability=obj.stability,
                                   prompt_type=kinds[class_name], prompt_count=len(obj.pieces),
                                   window=obj.extent.label(), status="prelabel", **shared)
                result.add(Label(geometry, crs, attrs))
    if progress is not None:
        progress.set_progress(100.0)
    return result


def _piece(segmenter: Segmenter, tile: Tile, mask: np.ndarray, score: float) -> Optional[Piece]:
    if not mask.any():
        return None
    geometry = mask_to_geometry(mask, tile.transform(segmenter.source.transform))
    if geometry is None:
        return None
    return Piece.from_tile_mask(mask, tile, geometry, float(score), float(score),
                                _reaches_other_tiles(mask, tile, segmenter.grid))


class Sam3Finder:
    """SAM 3 on each tile: each phrase with the exemplars drawn on this tile, or with the
    exemplar tokens of the tile that holds the most of them."""

    def __init__(self, segmenter: Segmenter, examples: Sequence[Example], options: FindOptions):
        self.segmenter, self.examples, self.options = segmenter, list(examples), options
        self.carried = None
        if self.examples:
            self.carried = self._carried_tokens()

    def _on(self, tile: Tile):
        from ..models.sam3 import ExemplarBox

        boxes = [(example_box(self.segmenter, e, tile), e.positive) for e in self.examples]
        return [ExemplarBox(box, positive) for box, positive in boxes if box is not None]

    def _carried_tokens(self):
        best = max(self.segmenter.grid, key=lambda t: len(self._on(t)))
        here = self._on(best)
        if not here:
            raise SegError("No example lies wholly inside one tile of the raster; draw smaller examples or use larger tiles.")
        backend = self.segmenter.backend
        return backend.exemplar_tokens(backend.vision(self.segmenter.image(best)[0]), here)

    def tile(self, tile: Tile, concepts: Sequence[Concept]):
        backend = self.segmenter.backend
        encoded = backend.vision(self.segmenter.image(tile)[0])
        here = self._on(tile)
        for concept in concepts:
            for found in backend.find(encoded, concept.phrase, here, self.options.min_score,
                                      carried=None if here else self.carried):
                yield concept, found.mask, found.score


def examples_in_raster_crs(examples: Sequence, crs_wkt: str) -> List:
    """The examples with their geometry in the raster's CRS (what rasterizing them needs)."""
    from dataclasses import replace

    from ..geo.vectorize import reproject_geometry

    return [replace(e, geometry=reproject_geometry(e.geometry, e.crs, crs_wkt), crs=crs_wkt) for e in examples]
