"""AUDIO metadata: title, artist, album, genre and year from the stream tags (exiftool's as the
fallback), with PyAV's codec, bit rate, sample rate, channels and duration."""

from __future__ import annotations

import re
from typing import Any

from processors.base import JobInput
from processors.metadata.dates import _first_date, _parse_date
from processors.metadata.result import _result
from processors.metadata.streams import StreamFacts
from processors.metadata.tags import Tags, _description, _positive


def _year(text: str | None) -> int | None:
    match = re.search(r"(?<!\d)(\d{4})(?!\d)", text or "")
    return int(match.group(1)) if match else None


def _audio(job: JobInput, tags: Tags, streams: StreamFacts | None) -> dict[str, Any]:
    def tag(name: str, *aliases: str) -> str | None:
        value = streams.tag(name, *aliases, audio_first=True) if streams else None
        return value or tags.get(name.capitalize())

    year = _year(tag("date", "year", "tyer", "tdrc")) or _year(tags.get("Year")) or _year(
        tags.get("DateCreated"))
    taken = _first_date([
        _parse_date(tags.get("CreateDate", ["QuickTime"], others=False), assume_utc=True),
        *(streams.creation_times() if streams else []),
    ])
    duration = streams.duration if streams and streams.duration else tags.get(
        "Duration", ["Composite", "QuickTime"], convert=_positive)
    description = streams.tag("comment", "description", audio_first=True) if streams else None
    description = description or _description(tags, ("Comment", []), ("Description", []))
    specific = {
        "title": tag("title"),
        "artist": tag("artist"),
        "album": tag("album"),
        "genre": tag("genre"),
        "year": year,
        "codec": streams.audio_codec if streams else None,
        "bitrate": (streams.audio_bit_rate or streams.bit_rate) if streams else None,
        "sample_rate": streams.sample_rate if streams else None,
        "channels": streams.channels if streams else None,
        "description": description,
    }
    return _result(None, None, round(duration, 3) if duration else None, taken, specific)
