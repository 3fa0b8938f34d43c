"""Dates of rasters and labels, and the date-sorted series of rasters a time-series job works on.

A raster's date comes from the user, else its metadata (TIFFTAG_DATETIME, ACQUISITIONDATETIME or a
DATE tag), else a YYYYMMDD or YYYY-MM-DD in its file name. Dates are `datetime.date`; they are
written as ISO 8601 text ("2020-08-31").
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Dict, List, Optional, Sequence

from ..errors import SegError, SettingError

METADATA_TAGS = ("TIFFTAG_DATETIME", "ACQUISITIONDATETIME", "ACQUISITION_DATETIME", "DATE", "ACQUISITION_DATE")
_NAME_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})-?(\d{2})-?(\d{2})(?!\d)")


class DateError(SegError, ValueError):
    """A date is missing, unreadable, or two rasters share one."""


@dataclass(frozen=True)
class DatedRaster:
    """One raster of a series: its path and its date."""

    path: str
    date: date

    @property
    def iso(self) -> str:
        return self.date.isoformat()


def parse_date(text) -> Optional[date]:
    """ISO 8601 (2020-08-31, 2020-08-31T10:00:00Z), EXIF/TIFF (2020:08:31 10:00:00) or
    20200831 -> date; None for empty or unreadable text."""
    if text is None:
        return None
    if isinstance(text, datetime):
        return text.date()
    if isinstance(text, date):
        return text
    text = str(text).strip()
    if not text:
        return None
    head = text[:10].replace(":", "-")
    for candidate in (head, text[:8]):
        for fmt in ("%Y-%m-%d", "%Y%m%d"):
            try:
                return datetime.strptime(candidate, fmt).date()
            except ValueError:
                continue
    return None


def date_from_name(path: str) -> Optional[date]:
    """The last YYYYMMDD or YYYY-MM-DD in the file name that is a real calendar date."""
    for match in reversed(list(_NAME_DATE.finditer(os.path.basename(path)))):
        try:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            continue
    return None


def raster_date(path: str) -> Optional[date]:
    """The raster's date from its metadata tags, else its file name, else None."""
    import rasterio

    try:
        with rasterio.open(path) as ds:
            tags = {k.upper(): v for k, v in ds.tags().items()}
    except Exception:
        tags = {}
    for key in METADATA_TAGS:
        found = parse_date(tags.get(key))
        if found:
            return found
    return date_from_name(path)


def dated_series(paths: Sequence[str], dates: Optional[Sequence[str]] = None) -> List[DatedRaster]:
    """The rasters sorted by date. dates: one per raster (ISO text), overriding what the rasters
    say. Raises DateError for a raster without a date or two rasters with the same date."""
    if dates is not None and len(dates) != len(paths):
        raise SettingError(f"Give one date per raster: {len(paths)} rasters but {len(dates)} dates.")
    series = []
    for i, path in enumerate(paths):
        found = parse_date(dates[i]) if dates is not None else raster_date(path)
        if found is None:
            what = f"the date {dates[i]!r} is not a date (write YYYY-MM-DD)" if dates is not None else \
                "it has no date in its metadata or file name; give --dates"
            raise DateError(f"Cannot date {os.path.basename(path)}: {what}.")
        series.append(DatedRaster(os.fspath(path), found))
    seen: Dict[date, str] = {}
    for item in series:
        if item.date in seen:
            raise DateError(f"{os.path.basename(seen[item.date])} and {os.path.basename(item.path)} have the same date "
                            f"({item.iso}); a series needs one raster per date.")
        seen[item.date] = item.path
    return sorted(series, key=lambda r: r.date)


def label_date(attributes: dict, start: Optional[date]) -> Optional[date]:
    """A label's date from its `date` field, else `start`."""
    return parse_date(attributes.get("date")) or start
