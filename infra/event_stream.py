"""The event stream for analysts: every stored event as a plain JSON-able record.

Used by `darkroom events export` (JSON lines and Parquet), `GET /admin/events` (cursor pages)
and the `<prefix>.events` Kafka topic. Secrets (password and refresh-token hashes) are redacted:
analytics never needs them; the library's bookkeeping (`originator_topic`) is left out. Every
record's shape is in the event catalogue (`infra.event_catalogue`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from domain.versioning import version_of
from infra.event_catalogue import INTERNAL_FIELDS, REDACTED, REDACTED_FIELDS


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def event_record(position: int, event: Any) -> dict[str, Any]:
    """The public record of one event, as its catalogue schema describes it."""
    type_name = type(event).__qualname__
    payload = {
        key: (REDACTED if key in REDACTED_FIELDS else _plain(value))
        for key, value in vars(event).items()
        if key not in INTERNAL_FIELDS
    }
    return {
        "position": position,
        "timestamp": event.timestamp.isoformat(),
        "aggregate": type_name.split(".")[0],
        "aggregate_id": str(event.originator_id),
        "type": type_name,
        "version": event.originator_version,
        "event_version": version_of(type(event)),
        "payload": payload,
    }


def _matches(type_name: str, types: set[str]) -> bool:
    return not types or type_name in types or type_name.split(".")[-1] in types


def read_stored_events(
    app: Application[Any], after: int = 0, to: int | None = None, batch: int = 1000,
) -> Iterator[tuple[int, Any]]:
    """(position, event) for every event with position in (after, to], upcast to today's shape."""
    position = after
    while True:
        notifications = app.recorder.select_notifications(
            position, batch, stop=to, inclusive_of_start=False
        )
        if not notifications:
            return
        for n in notifications:
            position = n.id
            yield n.id, app.mapper.to_domain_event(n)
        if len(notifications) < batch:
            return


def read_events(
    app: Application[Any],
    after: int = 0,
    to: int | None = None,
    types: set[str] | None = None,
    limit: int | None = None,
    batch: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Public records of the events with position in (after, to], optionally only of some
    types, at most `limit`."""
    types = types or set()
    sent = 0
    if limit is not None and limit <= 0:
        return
    for position, event in read_stored_events(app, after, to, batch):
        if _matches(type(event).__qualname__, types):
            yield event_record(position, event)
            sent += 1
            if limit is not None and sent >= limit:
                return
