"""Carry labels from one date through a series of rasters of the same area.

Each object's outline on the latest date it was found becomes the prompt on the next date: its
box (grown by `BOX_MARGIN` of its size, so an object that moved or grew stays inside) and interior
points that still look like the object there. Each answer is judged from evidence (decision.py:
how its inside compares with itself on the previous date, the model's score and area, an index
check where the class and bands allow): `kept` (the answer becomes its outline on that date, and
the next prompt; an object that was all water or vegetation by its index is cut to where the index
still shows it, so a water outline the model drew over the shore keeps only the water), `lost` (something says it is gone) or `uncertain` (the model is unsure and
nothing says it is gone); both keep the previous outline, never a polygon drawn over whatever is
there now. An object that misses a raster (or lies over its nodata) gets `outside`. Every feature
carries `track_id` (one per object), `date` (ISO 8601), `similarity`, `reason` and the usual
provenance.

Rasters may differ in CRS, resolution and extent: prompts carry their CRS, each raster gets one
fixed radiometry, and outlines stay in the labels' CRS.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Dict, List, Optional, Sequence, Tuple

from ..engine.labeling import provenance, to_label
from ..engine.labels import FIELDS, Label, attributes
from ..engine.segmenter import Segmenter
from ..errors import SegError
from ..geo.prompts import Prompt
from ..geo.radiometry import compute_radiometry
from ..geo.raster import RasterSource
from ..geo.tiling import Tiling, scale_for_gsd
from ..geo.vectorize import Cleanup, reproject_geometry
from ..progress import Progress, check_canceled
from .appearance import Look, footprint, look, points_that_still_match
from .dates import DatedRaster, label_date
from .decision import INDEX_PRESENT, Evidence, decide, similarity
from .spectral import IndexLook, band_roles, class_index, index_look, trim_to_index

TRACK_FIELDS = FIELDS + (("track_id", "int", "track_id"), ("similarity", "float", "similarity"), ("reason", "str", "reason"))
STEP_STATUSES = ("kept", "lost", "uncertain", "outside")
BOX_MARGIN = 0.25          # the prompt box grows by this share of the outline's size on each side
AREA_RANGE = (0.2, 5.0)    # an answer's area over the previous outline's, outside this: lost
MIN_INSIDE = 0.5           # share of an outline that must lie on the raster's data, else outside
PURE = 0.9                 # an object this much index material is cut to its index when kept


@dataclass
class Track:
    """One object through the series: its latest present outline (shapely, in `crs`), the date and
    look it had then, and the raster dated `date` if it was in the series."""

    track_id: int
    class_name: str
    tags: Dict[str, str]
    geometry: object
    crs: str
    date: date
    look: Optional[Look] = None
    index_look: Optional[IndexLook] = None
    history: List[str] = field(default_factory=list)


@dataclass
class PropagationResult:
    """labels: the whole series, starting labels included; counts: status -> number of
    propagated features; seconds: time spent prompting, per (object, date)."""

    labels: List[Label]
    counts: Dict[str, int]
    steps: int
    seconds: float
    notes: List[str] = field(default_factory=list)


def start_tracks(labels: Sequence[Label], start: Optional[date] = None, classes: Optional[Sequence[str]] = None,
                 class_field: str = "class") -> List[Track]:
    """Tracks from the starting labels. Raises SegError for an empty layer, labels without a date
    (and no `start`), or no label of the chosen classes."""
    if not labels:
        raise SegError("The labels layer is empty; label at least one object on one date first.")
    tracks, next_id = [], 1 + max([_int(lab.attributes.get("track_id")) or 0 for lab in labels] + [0])
    for lab in labels:
        name = str(lab.attributes.get(class_field) or "object")
        if classes and name not in classes:
            continue
        when = label_date(lab.attributes, start)
        if when is None:
            raise SegError("Some labels have no date; give their date with --start-date or fill their `date` field.")
        track_id = _int(lab.attributes.get("track_id"))
        if track_id is None:
            track_id, next_id = next_id, next_id + 1
        tags = _tags(lab.attributes)
        tracks.append(Track(track_id, name, tags, lab.geometry, lab.crs, when))
    if not tracks:
        raise SegError(f"No label has one of the classes {', '.join(classes)}.")
    return tracks


def check_overlap(tracks: Sequence[Track], series: Sequence[DatedRaster]) -> None:
    """Raises SegError when a raster does not overlap the labels at all, or no raster is dated
    after the earliest label."""
    from shapely import union_all

    crs = tracks[0].crs
    extent = union_all([reproject_geometry(t.geometry, t.crs, crs) for t in tracks]).envelope
    for item in series:
        with RasterSource(item.path) as src:
            if not reproject_geometry(extent, crs, src.crs.to_wkt()).intersects(footprint(src)):
                raise SegError(f"{os.path.basename(item.path)} does not overlap the labels; give rasters of the labelled area.")
    first = min(t.date for t in tracks)
    if not any(item.date > first for item in series):
        raise SegError(f"No raster is dated after the labels ({first.isoformat()}); give rasters of later dates.")


@dataclass(frozen=True)
class PropagateOptions:
    """How labels are carried: start, the date of labels without one; classes, only these (None:
    all); tags on every propagated feature; bands and value_range (min, max), how each raster is
    seen (None: its suggested bands and global 2-98 % stretch); tiling, the model's tiles (tile and
    overlap in pixels; scale decimates); gsd, the working resolution in map units per pixel (each
    raster's scale from it; overrides the tiling's scale); cache, an EmbeddingCache shared by every
    date (its keys hold each raster's fingerprint); min_score, below it the model is unsure;
    simplify, the outlines' tolerance in map units; ontology, where classes name their spectral
    index (else their names do); index_bands, {"red": b, "green": b, "nir": b} (1-based; None:
    from the raster, see spectral.py). Checked when made."""

    start: Optional[date] = None
    classes: Optional[Sequence[str]] = None
    tags: Optional[Dict[str, str]] = None
    bands: Optional[Sequence[int]] = None
    value_range: Optional[Tuple[float, float]] = None
    tiling: Tiling = Tiling()
    gsd: Optional[float] = None
    cache: object = None
    min_score: float = 0.5
    simplify: float = 0.0
    ontology: object = None
    index_bands: Optional[Dict[str, int]] = None

    def __post_init__(self):
        from ..ranges import check_number

        check_number("min_score", self.min_score, "The minimum score")
        check_number("simplify", self.simplify, "The simplification tolerance")
        check_number("gsd", self.gsd, "The working resolution")

    def tiling_for(self, source) -> Tiling:
        """The tiling on `source`: its scale from gsd when one is given."""
        if not self.gsd:
            return self.tiling
        return replace(self.tiling, scale=scale_for_gsd(abs(source.transform.a), self.gsd))


def propagate(labels: Sequence[Label], series: Sequence[DatedRaster], backend, options: PropagateOptions = PropagateOptions(),
              progress: Optional[Progress] = None) -> PropagationResult:
    """Carry `labels` through `series` (sorted by date) with `backend`; see the module docstring
    and PropagateOptions."""
    import time

    start, classes = options.start, options.classes
    tracks = start_tracks(labels, start, classes)
    check_overlap(tracks, series)
    out = [start_label(lab, t) for lab, t in zip(chosen_labels(labels, classes), tracks)]
    counts = dict.fromkeys(STEP_STATUSES, 0)
    total = sum(1 for item in series for t in tracks if item.date > t.date) or 1
    done, seconds, notes = 0, 0.0, []
    for item in series:
        with RasterSource(item.path) as source:
            radiometry = compute_radiometry(source, options.bands, value_range=options.value_range)
            witness = Witness(source, options)
            for t in tracks:
                if item.date == t.date and t.look is None:  # the raster the labels were drawn on
                    drawn = reproject_geometry(t.geometry, t.crs, source.crs.to_wkt())
                    t.look, t.index_look = look(source, radiometry, drawn), witness.look(t, drawn)
            active = [t for t in tracks if item.date > t.date]
            if not active:
                continue
            segmenter = Segmenter(source, backend, radiometry, options.tiling_for(source), cache=options.cache)
            for t in active:
                check_canceled(progress)
                began = time.perf_counter()
                label, status, why = _step(t, item, segmenter, options, witness)
                seconds += time.perf_counter() - began
                counts[status] += 1
                out.append(label)
                if why:
                    notes.append(f"track {t.track_id} ({t.class_name}) {status} on {item.iso}: {why}")
                done += 1
                if progress is not None:
                    progress.set_progress(100.0 * done / total)
    out.sort(key=lambda lab: (lab.attributes["track_id"], lab.attributes["date"]))
    return PropagationResult(out, counts, done, seconds, notes)


class Witness:
    """The index check on one raster: how an outline looks by its class's index."""

    def __init__(self, source, options: PropagateOptions):
        self.source, self.options = source, options
        self.roles = band_roles(source, options.index_bands)

    def index(self, t: Track) -> Optional[str]:
        return class_index(t.class_name, self.options.ontology) if self.roles else None

    def look(self, t: Track, geometry) -> Optional[IndexLook]:
        index = self.index(t)
        return index_look(self.source, geometry, index, self.roles) if index and geometry is not None else None

    def trim(self, t: Track, geometry, before: Optional[IndexLook]):
        """A kept answer cut to where its class's index shows material, when the object was all
        material `before` (a water outline the model drew over a shore keeps only the water)."""
        index = self.index(t)
        if not index or before is None or before.share < PURE:
            return geometry
        return trim_to_index(self.source, geometry, index, self.roles)


def judge(t: Track, witness: Witness, radiometry, here_geometry, here: Optional[Look], new_geometry,
          problem: str) -> Tuple[str, str, Optional[float], bool]:
    """(status, reason, similarity, whether the model's answer is the outline now) of track `t` on
    the witness's raster: its previous outline `here_geometry` (looking like `here` now) and the
    model's answer `new_geometry` (raster CRS; None when nothing was found), `problem` saying what
    is wrong with the answer. A kept track takes the new look and, where the index shows it, the
    new index look."""
    after = look(witness.source, radiometry, new_geometry) if new_geometry is not None else None
    old_index = witness.look(t, here_geometry)
    new_index = witness.look(t, new_geometry) if new_geometry is not None else None
    evidence = Evidence(not problem, problem, similarity(t.look, after), similarity(t.look, here), witness.index(t),
                        old_index, new_index, t.index_look)
    status, reason, outline = decide(evidence)
    answer = status == "kept" and outline == "new"
    if status == "kept":
        shown = new_index if answer else old_index
        t.look = (after if answer else here) or t.look
        if shown is not None and shown.share >= INDEX_PRESENT:
            t.index_look = shown
    return status, reason, evidence.similarity_found if answer else evidence.similarity_old, answer


def _step(t: Track, item: DatedRaster, segmenter: Segmenter, options: PropagateOptions, witness: Witness) -> Tuple[Label, str, str]:
    """Prompt track `t` on one raster; update the track when kept. Returns (label, status, why)."""
    source = segmenter.source
    raster_crs = source.crs.to_wkt()
    here_geometry = reproject_geometry(t.geometry, t.crs, raster_crs)
    tags = {**t.tags, **(options.tags or {}), "date": item.iso}
    name = os.path.basename(source.path)
    inside = here_geometry.intersection(footprint(source)).area / max(here_geometry.area, 1e-12)
    here = look(source, segmenter.radiometry, here_geometry) if inside > 0 else None
    if inside < MIN_INSIDE or here is None or here.valid < MIN_INSIDE:
        why = "outside the raster or over its nodata"
        attrs = attributes(t.class_name, tags, source=name, radiometry=segmenter.radiometry.to_json(), status="outside")
        return tracked_label(t.geometry, t, dict(attrs, reason=why)), "outside", why
    prompt = _prompt(t, here_geometry, source, segmenter.radiometry, here, raster_crs)
    segmentation = segmenter.segment(prompt, mask_prompt=here_geometry)
    found = to_label(segmentation, segmenter, t.class_name, tags, "prelabel", Cleanup(options.simplify))
    new_geometry, problem = None, "the model found nothing"
    if found is not None:
        new_geometry = reproject_geometry(found.geometry, found.crs, raster_crs)
        ratio = new_geometry.area / max(here_geometry.area, 1e-12)
        problem = (f"its area changed {ratio:.2f}-fold" if not AREA_RANGE[0] <= ratio <= AREA_RANGE[1] else
                   f"the model is unsure (score {segmentation.score:.2f})" if segmentation.score < options.min_score else "")
    before = t.index_look
    status, reason, alike, answer = judge(t, witness, segmenter.radiometry, here_geometry, here, new_geometry, problem)
    attrs = dict(found.attributes) if found is not None else attributes(
        t.class_name, tags, score=segmentation.score, stability=segmentation.stability,
        prompt_type=segmentation.prompt_type, prompt_count=segmentation.prompt_count,
        window=segmentation.window_label, **provenance(segmenter))
    attrs.update(status=status, similarity=alike, reason=reason)
    if status != "kept":
        return tracked_label(t.geometry, t, attrs), status, reason
    if answer:
        trimmed = witness.trim(t, new_geometry, before)
        if trimmed is not new_geometry:
            t.index_look = witness.look(t, trimmed)
        t.geometry = reproject_geometry(trimmed, raster_crs, t.crs)
    t.date = item.date
    return tracked_label(t.geometry, t, attrs), status, ""


def _prompt(t: Track, geometry, source, radiometry, here: Look, crs: str) -> Prompt:
    """The previous outline's box grown by BOX_MARGIN, and interior points that still match."""
    from shapely.ops import polylabel

    x0, y0, x1, y1 = geometry.bounds
    mx, my = BOX_MARGIN * (x1 - x0), BOX_MARGIN * (y1 - y0)
    box = _clip_box((x0 - mx, y0 - my, x1 + mx, y1 + my), footprint(source).bounds)
    parts = sorted(getattr(geometry, "geoms", [geometry]), key=lambda g: -g.area)
    pixel = abs(source.transform.a)
    candidates = []
    for part in parts[:3]:
        centre = polylabel(part, tolerance=pixel)
        if part.buffer(-2 * pixel).contains(centre):
            candidates.append((centre.x, centre.y))
    points = points_that_still_match(source, radiometry, candidates, t.look, here)
    return Prompt(crs=crs, points=tuple(points), labels=(1,) * len(points), box=box)


def _clip_box(box, bounds):
    return max(box[0], bounds[0]), max(box[1], bounds[1]), min(box[2], bounds[2]), min(box[3], bounds[3])


def tracked_label(geometry, t: Track, attrs: dict) -> Label:
    row = dict(attrs)
    row["track_id"] = t.track_id
    row["date"] = json.loads(row["tags"]).get("date", "") if row.get("tags") else row.get("date", "")
    return Label(geometry, t.crs, row)


def start_label(lab: Label, t: Track) -> Label:
    row = {name: lab.attributes.get(name) for name, _, _ in FIELDS}
    row["class"] = t.class_name
    row["status"] = row.get("status") or "accepted"
    row["date"] = t.date.isoformat()
    tags = dict(t.tags, date=t.date.isoformat())
    row["tags"] = json.dumps(tags, sort_keys=True)
    row["track_id"] = t.track_id
    row["reason"] = "the starting outline"
    row["created"] = row.get("created") or attributes(t.class_name)["created"]
    return Label(lab.geometry, lab.crs, row)


def chosen_labels(labels, classes, class_field: str = "class"):
    return [lab for lab in labels if not classes or str(lab.attributes.get(class_field) or "object") in classes]


def _tags(attrs: dict) -> Dict[str, str]:
    try:
        tags = json.loads(attrs.get("tags") or "{}")
    except (TypeError, ValueError):
        tags = {}
    for key in ("sensor", "season", "annotator"):
        if attrs.get(key) and key not in tags:
            tags[key] = str(attrs[key])
    tags.pop("date", None)
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def _int(value) -> Optional[int]:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None
