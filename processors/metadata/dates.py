"""Dates and times in metadata: parsing exiftool's and containers' date strings with their
zones, choosing the capture time among candidates, and the ISO 8601 fields we store."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from processors.metadata.tags import _text

_DATE_RE = re.compile(
    r"^\s*(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?"
)
_OFFSET_RE = re.compile(r"^\s*(Z|[+-]\d{2}:?\d{2})\s*$")
_ZERO_TIMESTAMPS = {(1904, 1, 1, 0, 0, 0), (1970, 1, 1, 0, 0, 0)}  # QuickTime and Unix epochs


def _zone(text: str | None) -> timezone | None:
    if not text:
        return None
    if text == "Z":
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4])
    if hours > 14 or minutes >= 60:
        return None
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _parse_date(value: Any, offset: Any = None, assume_utc: bool = False) -> datetime | None:
    """A full date and time (date-only values are not a taken time), aware when the value or
    `offset` names a zone, or when `assume_utc` (QuickTime/Matroska creation times are UTC)."""
    text = _text(value)
    if not text:
        return None
    match = _DATE_RE.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:  # 0000:00:00 and friends
        return None
    if year < 1800:
        return None
    if assume_utc and (year, month, day, hour, minute, second) in _ZERO_TIMESTAMPS:
        return None  # a container's "no date" (0 seconds since its epoch), not a date
    zone = _zone(match.group(7))
    if zone is None and offset is not None:
        off = _text(offset)
        off_match = _OFFSET_RE.match(off) if off else None
        zone = _zone(off_match.group(1)) if off_match else None
    if zone is None and assume_utc:
        zone = timezone.utc
    return moment.replace(tzinfo=zone) if zone else moment


def _first_date(candidates: list[datetime | None]) -> datetime | None:
    """The first date; a naive one borrows the zone of another candidate with its wall clock
    (EXIF DateTimeOriginal without OffsetTimeOriginal, XMP's copy with an offset)."""
    dates = [d for d in candidates if d is not None]
    if not dates:
        return None
    first = dates[0]
    if first.tzinfo is None:
        for other in dates[1:]:
            if other.tzinfo is not None and other.replace(tzinfo=None) == first:
                return other
    return first


def _time_fields(moment: datetime | None) -> tuple[str | None, str | None]:
    if moment is None:
        return None, None
    return moment.isoformat(timespec="seconds"), moment.replace(tzinfo=None).isoformat(timespec="seconds")
