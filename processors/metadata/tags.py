"""exiftool's answer read as values: `Tags` (a tag by name, with a group preference), the
converters from exiftool's values to text and numbers, and the readings several asset types
share (image size, rotation, a description that is not camera boilerplate)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

# ImageDescription values that cameras write on every picture: not a description.
_BOILERPLATE_DESCRIPTIONS = {
    "", "null", "none", "default", "image", "picture", "photo", "sony dsc", "digital camera",
    "olympus digital camera", "minolta digital camera", "konica minolta digital camera",
    "kodak digital still camera", "exif_jpeg_picture", "camera", "dcim", "untitled",
}


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != ""
    if isinstance(value, list):
        return any(_present(v) for v in value)
    return True


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        parts = [t for t in (_text(v) for v in value) if t]
        return "; ".join(parts) or None
    if value is None or isinstance(value, (dict, bool)):
        return None
    text = str(value).replace("\x00", " ").strip()
    return text or None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = re.search(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", str(value))
        if not match:
            return None
        number = float(match.group())
    return number if math.isfinite(number) else None


def _positive(value: Any) -> float | None:
    number = _float(value)
    return number if number is not None and number > 0 else None


def _positive_int(value: Any) -> int | None:
    """The first positive integer in a value (ISO may read "0 200")."""
    if isinstance(value, bool) or value is None:
        return None
    candidates = [value] if isinstance(value, (int, float)) else re.findall(r"\d+(?:\.\d+)?", str(value))
    for candidate in candidates:
        number = _float(candidate)
        if number is not None and number > 0:
            return int(round(number))
    return None


class Tags:
    """exiftool's answer, looked up by tag name with a group preference."""

    def __init__(self, tags: dict[str, Any]) -> None:
        self.raw = tags
        self._by_name: dict[str, list[tuple[str, Any]]] = {}
        for key, value in tags.items():
            group, _, name = key.rpartition(":")
            self._by_name.setdefault(name, []).append((group, value))

    def values(self, name: str, groups: Iterable[str] = (), others: bool = True) -> list[Any]:
        """Present values of `name`: the preferred groups in order, then (if `others`) the rest
        in exiftool's order."""
        found = self._by_name.get(name, [])
        ordered: list[Any] = []
        wanted = list(groups)
        for group in wanted:
            ordered += [v for g, v in found if g == group]
        if others:
            ordered += [v for g, v in found if g not in wanted]
        return [v for v in ordered if _present(v)]

    def get(self, name: str, groups: Iterable[str] = (), others: bool = True,
            convert: Callable[[Any], Any] = _text) -> Any:
        for value in self.values(name, groups, others):
            converted = convert(value)
            if converted is not None:
                return converted
        return None

    @property
    def error(self) -> str | None:
        return _text(self.raw.get("ExifTool:Error"))

    @property
    def warning(self) -> str | None:
        return self.get("Warning")

    @property
    def useful(self) -> bool:
        """Whether exiftool read anything beyond the file type."""
        return any(
            _present(v) for k, v in self.raw.items()
            if k.rpartition(":")[0] not in ("File", "ExifTool", "System")
        )


def _image_size(tags: Tags) -> tuple[int, int] | None:
    size = tags.get("ImageSize", ["Composite"], convert=_text)
    if not size:
        return None
    numbers = re.findall(r"\d+", size)
    if len(numbers) != 2:
        return None
    width, height = int(numbers[0]), int(numbers[1])
    return (width, height) if width > 0 and height > 0 else None


def _rotation(value: Any) -> int | None:
    number = _float(value)
    if number is None:
        return None
    return int(round(number)) % 360


def _description(tags: Tags, *names_and_groups: tuple[str, list[str]],
                 camera: Iterable[str | None] = ()) -> str | None:
    ignore = {c.strip().lower() for c in camera if c}
    for name, groups in names_and_groups:
        for value in tags.values(name, groups):
            text = _text(value)
            if not text:
                continue
            lowered = " ".join(text.lower().split())
            if lowered in _BOILERPLATE_DESCRIPTIONS or lowered in ignore:
                continue
            return text
    return None
