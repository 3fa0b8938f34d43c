"""Carry labels from one date through a series of rasters of the same area.

Each object's outline on the latest date it was found becomes the prompt on the next date: its
box (grown by `BOX_MARGIN` of its size, so an object that moved or grew stays inside) and interior
points that still look like the object there. The answer becomes its label on that date, and so on.
An answer that no longer looks like the object (see appearance.py), whose area collapses or
explodes, or whose score is low is not trusted: the object gets status `lost` with its previous
outline, never a polygon drawn over whatever is there now. An object that misses a raster (or lies
over its nodata) gets `outside`. Every feature carries `track_id` (one per object), `date` (ISO
8601) and the usual provenance; answers get status `prelabel`.

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
from .appearance import Look, footprint, look, points_that_still_match, still_matches
from .dates import DatedRaster, label_date

TRACK_FIELDS = FIELDS + (("track_id", "int", "track_id"),)
BOX_MARGIN = 0.25          # the prompt box grows by this share of the outline's size on each side
AREA_RANGE = (0.2, 5.0)    # an answer's area over the previous outline's, outside this: lost
MIN_INSIDE = 0.5           # share of an outline that must lie on the raster's data, else outside


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
    date (its keys hold each raster's fingerprint); min_score, below it an answer is `lost`;
    simplify, the outlines' tolerance in map units. Checked when made."""

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
    out = [_start_label(lab, t) for lab, t in zip(_chosen(labels, classes), tracks)]
    counts = {"prelabel": 0, "lost": 0, "outside": 0}
    total = sum(1 for item in series for t in tracks if item.date > t.date) or 1
    done, seconds, notes = 0, 0.0, []
    for item in series:
        with RasterSource(item.path) as source:
            radiometry = compute_radiometry(source, options.bands, value_range=options.value_range)
            for t in tracks:
                if item.date == t.date and t.look is None:  # the raster the labels were drawn on
                    t.look = look(source, radiometry, reproject_geometry(t.geometry, t.crs, source.crs.to_wkt()))
            active = [t for t in tracks if item.date > t.date]
            if not active:
                continue
            segmenter = Segmenter(source, backend, radiometry, options.tiling_for(source), cache=options.cache)
            for t in active:
                check_canceled(progress)
                began = time.perf_counter()
                label, status, why = _step(t, item, segmenter, options)
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


def _step(t: Track, item: DatedRaster, segmenter: Segmenter, options: PropagateOptions) -> Tuple[Label, str, str]:
    """Prompt track `t` on one raster; update the track when found. Returns (label, status, why)."""
    source = segmenter.source
    raster_crs = source.crs.to_wkt()
    here_geometry = reproject_geometry(t.geometry, t.crs, raster_crs)
    tags = {**t.tags, **(options.tags or {}), "date": item.iso}
    name = os.path.basename(source.path)
    inside = here_geometry.intersection(footprint(source)).area / max(here_geometry.area, 1e-12)
    here = look(source, segmenter.radiometry, here_geometry) if inside > 0 else None
    if inside < MIN_INSIDE or here is None or here.valid < MIN_INSIDE:
        attrs = attributes(t.class_name, tags, source=name, radiometry=segmenter.radiometry.to_json(), status="outside")
        return _tracked(t.geometry, t, attrs), "outside", "outside the raster or over its nodata"
    prompt = _prompt(t, here_geometry, source, segmenter.radiometry, here, raster_crs)
    segmentation = segmenter.segment(prompt, mask_prompt=here_geometry)
    found = to_label(segmentation, segmenter, t.class_name, tags, "prelabel", Cleanup(options.simplify))
    why = ""
    if found is None:
        why = "the model found nothing"
    else:
        new_geometry = reproject_geometry(found.geometry, found.crs, raster_crs)
        ratio = new_geometry.area / max(here_geometry.area, 1e-12)
        if not AREA_RANGE[0] <= ratio <= AREA_RANGE[1]:
            why = f"its area changed {ratio:.2f}-fold"
        elif segmentation.score < options.min_score:
            why = f"the model is unsure (score {segmentation.score:.2f})"
        else:
            after = look(source, segmenter.radiometry, new_geometry)
            ok, why = still_matches(t.look, after)
            if ok:
                geometry = reproject_geometry(found.geometry, found.crs, t.crs)
                label = _tracked(geometry, t, found.attributes)
                t.geometry, t.date, t.look = geometry, item.date, after
                return label, "prelabel", ""
    attrs = dict(found.attributes) if found is not None else attributes(
        t.class_name, tags, score=segmentation.score, stability=segmentation.stability,
        prompt_type=segmentation.prompt_type, prompt_count=segmentation.prompt_count,
        window=segmentation.window_label, **provenance(segmenter))
    attrs["status"] = "lost"
    return _tracked(t.geometry, t, attrs), "lost", why


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


def _tracked(geometry, t: Track, attrs: dict) -> Label:
    row = dict(attrs)
    row["track_id"] = t.track_id
    row["date"] = json.loads(row["tags"]).get("date", "") if row.get("tags") else row.get("date", "")
    return Label(geometry, t.crs, row)


def _start_label(lab: Label, t: Track) -> Label:
    row = {name: lab.attributes.get(name) for name, _, _ in FIELDS}
    row["class"] = t.class_name
    row["status"] = row.get("status") or "accepted"
    row["date"] = t.date.isoformat()
    tags = dict(t.tags, date=t.date.isoformat())
    row["tags"] = json.dumps(tags, sort_keys=True)
    row["track_id"] = t.track_id
    row["created"] = row.get("created") or attributes(t.class_name)["created"]
    return Label(lab.geometry, lab.crs, row)


def _chosen(labels, classes, class_field: str = "class"):
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
