"""Rules for free text that users send: what every name, description and value must satisfy."""

from __future__ import annotations

import re
from typing import Any

from domain.errors import InvalidInput

# NUL breaks PostgreSQL text columns; other control characters break headers and logs.
# Tabs and newlines are fine inside descriptions, never inside names.
_CONTROL_IN_NAME = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(value: Any, field: str, max_length: int, *, name: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field)
    if len(value) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters", field)
    if (_CONTROL_IN_NAME if name else _CONTROL_IN_TEXT).search(value):
        raise InvalidInput(f"{field} contains control characters", field)
    return value


def strip_control(value: str) -> str:
    """For names that come from elsewhere (a client's file name): drop what check_text refuses."""
    return _CONTROL_IN_NAME.sub("", value)
