"""What changed between consecutive dates of a labelled series: areas, gains, losses and IoU per
class (or per track), the gained and lost geometries, and each track's area through time.

Areas are square metres: planar in a projected CRS (scaled by its unit, e.g. US feet), on the
CRS's ellipsoid (pyproj Geod) when the layer is geographic. Features whose status is `lost`,
`uncertain` or `outside` are not present on their date. What changed is kept apart from what is
unsure: `lost` is area gone from one date to the next outside the outlines of `uncertain` objects
(whose fate is unknown: their area is the `uncertain` column), and `explained` is the share of a
date's object area whose state is known, present / (present + uncertain).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from ..engine.labels import Label
from ..errors import SegError
from ..geo.vectorize import reproject_geometry
from .dates import parse_date

ABSENT = ("lost", "outside", "uncertain")
ROW_KEYS = ("class", "track_id", "date_from", "date_to", "area_from", "area_to", "gained", "lost", "uncertain", "explained", "iou")
CHANGE_FIELDS = (
    ("class", "str", "class"), ("track_id", "int", "track_id"), ("change", "str", "change"),
    ("date_from", "str", "date_from"), ("date_to", "str", "date_to"), ("date", "str", "date"),
    ("area_m2", "float", "area_m2"),
)
COLOURS = {"gained": (26, 150, 65), "lost": (215, 25, 28), "uncertain": (150, 150, 150)}


@dataclass
class ChangeReport:
    """rows: one dict per class (or track) and consecutive pair of dates (keys ROW_KEYS; areas
    m^2, iou None where both dates are empty); tracks: per track its class and, per date, status,
    area and IoU with its previous present date; changes: gained and lost geometries as Labels
    with CHANGE_FIELDS attributes; dates: the series' dates (ISO)."""

    rows: List[dict]
    tracks: List[dict]
    changes: List[Label] = field(default_factory=list)
    dates: List[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"dates": self.dates, "rows": self.rows, "tracks": self.tracks}

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(ROW_KEYS), lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in ROW_KEYS})
        return out.getvalue()


class AreaMeter:
    """Areas in m^2 of shapely geometries in `crs`."""

    def __init__(self, crs: str):
        from pyproj import CRS

        self.crs = CRS.from_user_input(crs)
        self.geod = self.crs.get_geod() if self.crs.is_geographic else None
        self.factor = 1.0 if self.geod else float(self.crs.axis_info[0].unit_conversion_factor) ** 2

    def __call__(self, geometry) -> float:
        if geometry is None or geometry.is_empty:
            return 0.0
        if self.geod is not None:
            return abs(float(self.geod.geometry_area_perimeter(geometry)[0]))
        return float(geometry.area) * self.factor


def change_report(labels: Sequence[Label], by: str = "class", class_field: str = "class") -> ChangeReport:
    """The report for a series layer (every feature has a `date`; `track_id` where known)."""
    from shapely import union_all

    if by not in ("class", "track"):
        raise SegError(f"Report by class or by track, not {by!r}.")
    if not labels:
        raise SegError("The labels layer is empty; there is nothing to compare.")
    crs = labels[0].crs
    items = []
    for lab in labels:
        when = parse_date(lab.attributes.get("date"))
        if when is None:
            raise SegError("Some features have no `date`; a change report needs the date of every feature.")
        track = _int(lab.attributes.get("track_id"))
        items.append((when.isoformat(), str(lab.attributes.get(class_field) or "object"), track,
                      str(lab.attributes.get("status") or ""), reproject_geometry(lab.geometry, lab.crs, crs)))
    dates = sorted({d for d, *_ in items})
    if len(dates) < 2:
        raise SegError(f"All features have the same date ({dates[0]}); a change report needs at least two dates.")
    if by == "track" and any(t is None for _, _, t, _, _ in items):
        raise SegError("Some features have no track_id; report by class, or give a layer made by `seg propagate`.")
    meter = AreaMeter(crs)
    groups: Dict[tuple, Dict[str, list]] = {}
    unsure: Dict[tuple, Dict[str, list]] = {}
    for when, name, track, status, geometry in items:
        key = (name, track) if by == "track" else (name, None)
        groups.setdefault(key, {})
        if status == "uncertain":
            unsure.setdefault(key, {}).setdefault(when, []).append(geometry)
        elif status not in ABSENT:
            groups[key].setdefault(when, []).append(geometry)
    rows, changes = [], []
    for (name, track), by_date in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        unions = {d: union_all(by_date[d]) if d in by_date else None for d in dates}
        unknown = {d: union_all(g) for d, g in unsure.get((name, track), {}).items()}
        for d0, d1 in zip(dates, dates[1:]):
            row, parts = _compare(unions[d0], unions[d1], unknown.get(d1), meter)
            rows.append({"class": name, "track_id": track, "date_from": d0, "date_to": d1, **row})
            for change, geometry in parts.items():
                if geometry is not None and not geometry.is_empty and geometry.area > 0:
                    changes.append(Label(geometry, crs, {"class": name, "track_id": track, "change": change, "date_from": d0,
                                                         "date_to": d1, "date": d1, "area_m2": meter(geometry)}))
    return ChangeReport(rows, _tracks(items, dates, meter), changes, dates)


def _compare(a, b, unsure, meter: AreaMeter):
    """Areas and IoU of two unions (None = absent), the gained (b - a) and lost (a - b, outside the
    later date's `unsure` outlines) parts, and the unsure area not present on the later date."""
    area_a, area_b = meter(a), meter(b)
    uncertain = unsure.difference(b) if unsure is not None and b is not None else unsure
    if a is None and b is None:
        area_u = meter(uncertain)
        return ({"area_from": 0.0, "area_to": 0.0, "gained": 0.0, "lost": 0.0, "uncertain": area_u,
                 "explained": 0.0 if area_u > 0 else 1.0, "iou": None}, {"uncertain": uncertain})
    gained = b if a is None else (b.difference(a) if b is not None else None)
    lost = a if b is None else (a.difference(b) if a is not None else None)
    if lost is not None and uncertain is not None:
        lost = lost.difference(uncertain)
    inter = meter(a.intersection(b)) if a is not None and b is not None else 0.0
    union = area_a + area_b - inter
    area_u = meter(uncertain)
    row = {"area_from": area_a, "area_to": area_b, "gained": meter(gained), "lost": meter(lost), "uncertain": area_u,
           "explained": area_b / (area_b + area_u) if area_b + area_u > 0 else 1.0, "iou": inter / union if union > 0 else None}
    return row, {"gained": gained, "lost": lost, "uncertain": uncertain}


def _tracks(items, dates: List[str], meter: AreaMeter) -> List[dict]:
    """Per track: class and, per date it has, status, area (m^2, 0 when absent) and IoU with the
    track's previous present outline (None for its first)."""
    from shapely import union_all

    by_track: Dict[int, Dict[str, list]] = {}
    classes: Dict[int, str] = {}
    for when, name, track, status, geometry in items:
        if track is None:
            continue
        classes[track] = name
        by_track.setdefault(track, {}).setdefault(when, []).append((status, geometry))
    tracks = []
    for track in sorted(by_track):
        entries, previous = [], None
        for d in dates:
            if d not in by_track[track]:
                continue
            present = [g for s, g in by_track[track][d] if s not in ABSENT]
            status = by_track[track][d][0][0]
            geometry = union_all(present) if present else None
            iou = None
            if geometry is not None and previous is not None:
                inter = meter(geometry.intersection(previous))
                union = meter(geometry) + meter(previous) - inter
                iou = inter / union if union > 0 else None
            entries.append({"date": d, "status": status, "area": meter(geometry), "iou_previous": iou})
            previous = geometry if geometry is not None else previous
        tracks.append({"track_id": track, "class": classes[track], "dates": entries})
    return tracks


def _int(value) -> Optional[int]:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None

