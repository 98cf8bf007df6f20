"""The shape `extract_metadata` returns for every asset type: displayed width and height,
duration, taken time (aware and local) and the type's `specific_metadata`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from processors.metadata.dates import _time_fields


def _displayed(size: tuple[int, int] | None, quarter_turn: bool) -> tuple[int | None, int | None]:
    if size is None:
        return None, None
    return (size[1], size[0]) if quarter_turn else size


def _result(width: int | None, height: int | None, duration: float | None,
            taken: datetime | None, specific: dict[str, Any]) -> dict[str, Any]:
    taken_time, taken_local = _time_fields(taken)
    return {
        "width": width,
        "height": height,
        "duration": duration,
        "taken_time": taken_time,
        "taken_time_local": taken_local,
        "specific_metadata": specific,
    }
