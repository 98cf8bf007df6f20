"""VIDEO metadata: exiftool's container tags (Apple Keys, udta, AVCHD SEI, Matroska) for camera,
place, rotation and capture time, with PyAV's stream facts for codec, size, duration and rates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from processors.base import JobInput
from processors.metadata.dates import _first_date, _parse_date, _time_fields
from processors.metadata.gps import _gps, _iso6709
from processors.metadata.result import _displayed, _result
from processors.metadata.streams import StreamFacts
from processors.metadata.tags import (
    Tags,
    _description,
    _image_size,
    _positive,
    _rotation,
)


def _video_time(tags: Tags, streams: StreamFacts | None) -> datetime | None:
    """Capture time: a tag with the local zone first (Apple Keys, udta, AVCHD), then the
    container's creation time, which is UTC."""
    return _first_date([
        _parse_date(tags.get("CreationDate", ["Keys"], others=False)),
        _parse_date(tags.get("DateTimeOriginal", ["UserData"], others=False)),
        _parse_date(tags.get("DateTimeOriginal", ["H264"], others=False)),
        _parse_date(tags.get("DateTimeOriginal", ["Matroska"], others=False), assume_utc=True),
        _parse_date(tags.get("CreationDate", ["ItemList", "UserData"], others=False)),
        _parse_date(tags.get("CreateDate", ["QuickTime"], others=False), assume_utc=True),
        *(streams.creation_times() if streams else []),
    ])


def _video(job: JobInput, tags: Tags, streams: StreamFacts | None) -> dict[str, Any]:
    rotation = tags.get("Rotation", ["Composite", "QuickTime"], others=False, convert=_rotation)
    if streams is not None and streams.width and streams.height:
        size: tuple[int, int] | None = (streams.width, streams.height)
    else:
        size = _image_size(tags)
    width, height = _displayed(size, rotation in (90, 270))

    make = tags.get("Make", ["Keys", "UserData", "ItemList", "H264"])
    model = tags.get("Model", ["Keys", "UserData", "ItemList", "H264"])
    if streams is not None:
        make = make or streams.tag("com.apple.quicktime.make", "make")
        model = model or streams.tag("com.apple.quicktime.model", "model")
    # VIDEO has no camera_make field: the make goes in front of the model unless already there.
    if make and model and not model.lower().startswith(make.lower()):
        camera_model: str | None = f"{make} {model}"
    else:
        camera_model = model or make

    lat, lon = _gps(tags)
    if lat is None and streams is not None:
        lat, lon = _iso6709(streams.tag("com.apple.quicktime.location.iso6709", "location"))

    taken = _video_time(tags, streams)
    duration = streams.duration if streams and streams.duration else tags.get(
        "Duration", ["QuickTime", "Matroska", "M2TS", "Composite"], convert=_positive)
    description = streams.tag("description", "comment") if streams else None
    description = description or _description(tags, ("Description", []), ("Comment", []))
    specific = {
        "recorded_time": _time_fields(taken)[0],
        "camera_model": camera_model,
        "codec": streams.video_codec if streams else None,
        "bitrate": (streams.bit_rate or streams.video_bit_rate) if streams else None,
        "frame_rate": streams.frame_rate if streams else None,
        "gps_latitude": lat,
        "gps_longitude": lon,
        "rotation": rotation,
        "description": description,
    }
    return _result(width, height, round(duration, 3) if duration else None, taken, specific)
