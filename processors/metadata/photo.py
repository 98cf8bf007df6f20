"""PHOTO metadata (stills and RAW) from exiftool's tags: camera, lens, exposure, orientation,
displayed size, resolution, capture time, GPS and description; and `raw_damage`, what is wrong
with a RAW file whose structure exiftool could not follow."""

from __future__ import annotations

from typing import Any

from infra.media_types import RAW_MIME_TYPES
from processors.base import JobInput
from processors.metadata.dates import _first_date, _parse_date, _time_fields
from processors.metadata.gps import _gps
from processors.metadata.result import _displayed, _result
from processors.metadata.tags import (
    Tags,
    _description,
    _float,
    _image_size,
    _positive,
    _positive_int,
    _rotation,
)

HEIF_MIME_TYPES = frozenset({"image/heic", "image/heif", "image/avif"})


def _format_number(value: float) -> str:
    return f"{round(value, 2):g}"


def _exposure_text(seconds: float | None) -> str | None:
    """exiftool's PrintExposureTime: '1/15' below a quarter second, else '2', '0.3'."""
    if seconds is None:
        return None
    if 0 < seconds < 0.25001:
        return f"1/{int(0.5 + 1 / seconds)}"
    text = f"{seconds:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _resolution(tags: Tags) -> str | None:
    """'72x72 dpi' from IFD0, else JFIF, else PNG pHYs; None when the file gives only an
    aspect ratio. Centimetres and metres are converted to dpi."""
    sources = (
        ("IFD0", "XResolution", "YResolution", "ResolutionUnit", {1: None, 2: 1.0, 3: 2.54}, 2),
        ("JFIF", "XResolution", "YResolution", "ResolutionUnit", {0: None, 1: 1.0, 2: 2.54}, 0),
        ("PNG", "PixelsPerUnitX", "PixelsPerUnitY", "PixelUnits", {0: None, 1: 0.0254}, 0),
    )
    for group, x_name, y_name, unit_name, factors, default_unit in sources:
        x = tags.get(x_name, [group], others=False, convert=_positive)
        y = tags.get(y_name, [group], others=False, convert=_positive)
        if x is None or y is None:
            continue
        unit = tags.get(unit_name, [group], others=False, convert=_float)
        factor = factors.get(int(unit) if unit is not None else default_unit)
        if factor is None:
            continue
        return f"{_format_number(x * factor)}x{_format_number(y * factor)} dpi"
    return None


def _photo(job: JobInput, tags: Tags) -> dict[str, Any]:
    make = tags.get("Make", ["IFD0"])
    model = tags.get("Model", ["IFD0"]) or tags.get("UniqueCameraModel", ["IFD0"])
    lens = tags.get("LensModel", ["ExifIFD", "XMP-exifEX", "XMP-aux"])
    if lens is None:
        lens_id = tags.get("LensID", ["Composite"], others=False)
        lens = lens_id if lens_id and not lens_id.lower().startswith("unknown") else None
    exif_first = ["ExifIFD", "IFD0", "XMP-exif"]
    exposure_time = tags.get("ExposureTime", exif_first, convert=_positive)
    f_number = tags.get("FNumber", exif_first, convert=_positive)
    focal_length = tags.get("FocalLength", exif_first, convert=_positive)
    iso = tags.get("ISO", ["ExifIFD", "Composite", "IFD0", "XMP-exif"], convert=_positive_int)

    orientation = tags.get("Orientation", ["IFD0", "XMP-tiff"], convert=_float)
    orientation = int(orientation) if orientation is not None and 1 <= orientation <= 8 else None
    size = _image_size(tags)
    if job.mime_type in HEIF_MIME_TYPES:
        # HEIF decoders apply the container's irot and ignore EXIF Orientation (informative only).
        irot = tags.get("Rotation", ["QuickTime", "Composite"], others=False, convert=_rotation)
        quarter_turn = irot in (90, 270)
    else:
        quarter_turn = orientation in (5, 6, 7, 8)
    width, height = _displayed(size, quarter_turn)

    taken = _first_date([
        _parse_date(tags.get("DateTimeOriginal", ["ExifIFD"], others=False),
                    tags.get("OffsetTimeOriginal", ["ExifIFD"])),
        _parse_date(tags.get("DateTimeOriginal", ["IFD0"], others=False),
                    tags.get("OffsetTimeOriginal", ["ExifIFD"])),
        _parse_date(tags.get("DateTimeOriginal", ["XMP-exif"], others=False)),
        _parse_date(tags.get("DateCreated", ["XMP-photoshop"], others=False)),
        _parse_date(tags.get("CreateDate", ["ExifIFD"], others=False),
                    tags.get("OffsetTimeDigitized", ["ExifIFD"])),
        _parse_date(tags.get("CreateDate", ["XMP-xmp"], others=False)),
        _parse_date(tags.get("CreateDate", ["QuickTime"], others=False), assume_utc=True),
        *[_parse_date(v) for v in tags.values("DateTimeOriginal")],
    ])
    taken_time = _time_fields(taken)[0]
    lat, lon = _gps(tags)
    specific = {
        "taken_time": taken_time,
        "camera_model": model,
        "camera_make": make,
        "lens_model": lens,
        "exposure_time": exposure_time,
        "f_number": f_number,
        "focal_length": focal_length,
        "iso_speed": iso,
        "exposure": _exposure_text(exposure_time),
        "dimensions": f"{size[0]}x{size[1]}" if size else None,
        "resolution": _resolution(tags),
        "gps_latitude": lat,
        "gps_longitude": lon,
        "is_raw": job.mime_type in RAW_MIME_TYPES,
        "orientation": orientation,
        "description": _description(
            tags, ("ImageDescription", ["IFD0"]), ("Description", ["XMP-dc"]),
            ("Caption-Abstract", ["IPTC"]), camera=(make, model),
        ),
    }
    return _result(width, height, None, taken, specific)


def raw_damage(mime_type: str, warning: str | None) -> str | None:
    """What is wrong with a RAW file whose structure exiftool could not follow (a truncated file
    whose directories point past its end). Its embedded preview may still show: the asset is
    then complete-looking but not whole, which the owner should know. Minor warnings (maker-note
    offsets, arrays not decoded) are about exiftool's reading, not about the file."""
    if mime_type not in RAW_MIME_TYPES or not warning or warning.lower().startswith("[minor]"):
        return None
    return f"the RAW file is damaged: {warning} (truncated or corrupted; its preview may still show)"
