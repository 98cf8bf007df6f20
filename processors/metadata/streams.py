"""Video and audio stream facts read with PyAV: codec, duration, bit rate, frame rate, sample
rate, channels, stored frame size, and the container and stream tags (`StreamFacts`).

PyAV is the library that will decode and transcode the file, so a file it cannot open is a file
we cannot play. Attached pictures (cover art in M4A/FLAC/WAV/MP3) are not video.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import av

from processors.metadata.dates import _parse_date
from processors.metadata.tags import _text

# PyAV's interrupt callback: opening or reading the file never waits longer than this.
PYAV_TIMEOUT_S = 30.0

_ATTACHED_PIC = 0x400  # AV_DISPOSITION_ATTACHED_PIC: cover art, not a video track


class StreamFacts:
    """What PyAV says about a video/audio file."""

    def __init__(self) -> None:
        self.duration: float | None = None
        self.bit_rate: int | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.video_codec: str | None = None
        self.frame_rate: float | None = None
        self.video_bit_rate: int | None = None
        self.audio_codec: str | None = None
        self.audio_bit_rate: int | None = None
        self.sample_rate: int | None = None
        self.channels: int | None = None
        self.format_tags: dict[str, str] = {}
        self.video_tags: dict[str, str] = {}
        self.audio_tags: dict[str, str] = {}

    def tag(self, *names: str, audio_first: bool = False) -> str | None:
        """A container or stream tag, without regard to case."""
        scopes = [self.format_tags, self.audio_tags, self.video_tags] if audio_first else [
            self.format_tags, self.video_tags, self.audio_tags]
        for name in names:
            for scope in scopes:
                value = _text(scope.get(name.lower()))
                if value:
                    return value
        return None

    def creation_times(self) -> list[datetime | None]:
        raw = [self.format_tags.get("creation_time"), self.video_tags.get("creation_time"),
               self.audio_tags.get("creation_time")]
        return [_parse_date(v, assume_utc=True) for v in raw if v]


def _lower_tags(metadata: Any) -> dict[str, str]:
    tags: dict[str, str] = {}
    for key, value in dict(metadata or {}).items():
        tags.setdefault(str(key).lower(), value)
    return tags


def _codec_name(codec_context: Any) -> str | None:
    codec = getattr(codec_context, "codec", None)
    name = getattr(codec, "canonical_name", None) or getattr(codec_context, "name", None)
    return str(name) if name else None


def _rate(value: Any) -> float | None:
    try:
        number = float(value) if value else None
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return round(number, 3) if number and math.isfinite(number) and number > 0 else None


def read_streams(path: Path) -> StreamFacts:
    """Open the file with PyAV (bounded by PYAV_TIMEOUT_S) and read its stream facts."""
    facts = StreamFacts()
    with av.open(str(path), timeout=(PYAV_TIMEOUT_S, PYAV_TIMEOUT_S), metadata_errors="ignore") as container:
        if container.duration and container.duration > 0:
            facts.duration = round(container.duration / av.time_base, 3)
        facts.bit_rate = container.bit_rate or None
        facts.format_tags = _lower_tags(container.metadata)
        videos = [s for s in container.streams.video
                  if not (int(getattr(s, "disposition", 0) or 0) & _ATTACHED_PIC)]
        audios = list(container.streams.audio)
        if videos:
            stream = videos[0]
            ctx = stream.codec_context
            if ctx is not None:
                facts.width, facts.height = (ctx.width or None), (ctx.height or None)
                facts.video_codec = _codec_name(ctx)
                facts.video_bit_rate = ctx.bit_rate or None
            facts.frame_rate = _rate(stream.average_rate) or _rate(stream.guessed_rate)
            facts.video_tags = _lower_tags(stream.metadata)
            if facts.duration is None and stream.duration and stream.time_base:
                facts.duration = round(float(stream.duration * stream.time_base), 3)
        if audios:
            stream = audios[0]
            ctx = stream.codec_context
            if ctx is not None:
                facts.audio_codec = _codec_name(ctx)
                facts.audio_bit_rate = ctx.bit_rate or None
                facts.sample_rate = ctx.sample_rate or None
                layout = getattr(ctx, "layout", None)
                facts.channels = getattr(layout, "nb_channels", None) or getattr(ctx, "channels", None) or None
            facts.audio_tags = _lower_tags(stream.metadata)
            if facts.duration is None and stream.duration and stream.time_base:
                facts.duration = round(float(stream.duration * stream.time_base), 3)
    return facts
