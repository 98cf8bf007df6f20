"""Where a photo or video was taken: exiftool's Composite GPS, and ISO 6709 location strings
(Apple's QuickTime `location.iso6709`, the `location` tag of MP4s)."""

from __future__ import annotations

import re

from processors.metadata.tags import Tags, _float


def _gps(tags: Tags) -> tuple[float | None, float | None]:
    """Composite GPS (signed decimal degrees); both or neither. An empty GPS IFD gives ''."""
    lat = tags.get("GPSLatitude", ["Composite"], others=False, convert=_float)
    lon = tags.get("GPSLongitude", ["Composite"], others=False, convert=_float)
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180:
        return None, None
    return lat, lon


def _iso6709(text: str | None) -> tuple[float | None, float | None]:
    """'+32.0929+034.8620+028.516/' -> (32.0929, 34.862); also ±DDMM.M and ±DDMMSS.S forms."""
    if not text:
        return None, None
    match = re.match(r"^\s*([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)", text)
    if not match:
        return None, None

    def degrees(part: str, degree_digits: int) -> float:
        sign = -1.0 if part[0] == "-" else 1.0
        body = part[1:]
        whole, _, frac = body.partition(".")
        frac = "." + frac if frac else ""
        if len(whole) <= degree_digits:
            value = float(whole + frac)
        elif len(whole) <= degree_digits + 2:
            value = float(whole[:degree_digits]) + float(whole[degree_digits:] + frac) / 60
        else:
            value = (float(whole[:degree_digits]) + float(whole[degree_digits:degree_digits + 2]) / 60
                     + float(whole[degree_digits + 2:] + frac) / 3600)
        return sign * value

    lat, lon = degrees(match.group(1), 2), degrees(match.group(2), 3)
    if abs(lat) > 90 or abs(lon) > 180:
        return None, None
    return lat, lon
