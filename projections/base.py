"""What a projection is: tables it owns, and handlers for the events it cares about."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, ClassVar

from infra.database import Transaction

Handler = Callable[[Any, Transaction, Any, int], None]


def handles(*topics: str) -> Callable[[Handler], Handler]:
    """Mark a method as the handler of events named like `Asset.Uploaded`."""

    def mark(method: Handler) -> Handler:
        method._handles = topics  # type: ignore[attr-defined]
        return method

    return mark


def ts(value: datetime | None) -> str | None:
    """Timestamps are stored as fixed-width UTC text, so they sort the same on both backends."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


class Projection:
    """A read model. Subclasses name their tables, create them, and handle events.

    A projection instance writes to its tables under a suffix: "" for the live copy, another for
    a copy being rebuilt aside, which `projections.runner.rebuild` swaps in when it has caught up.
    """

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    _handlers: ClassVar[dict[str, str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = {}
        for attr, value in vars(cls).items():
            for topic in getattr(value, "_handles", ()):
                cls._handlers[topic] = attr

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix

    def t(self, base: str) -> str:
        """The actual name of one of this projection's tables."""
        return base + self.suffix

    @staticmethod
    def index_name(table: str, what: str) -> str:
        # Unique per creation: a rebuilt table is renamed into place with its indexes.
        return f"ix_{table}_{what}_{uuid.uuid4().hex[:8]}"

    def create_tables(self, tx: Transaction) -> None:
        raise NotImplementedError

    def drop_tables(self, tx: Transaction) -> None:
        for base in self.tables:
            tx.execute(f"DROP TABLE IF EXISTS {self.t(base)}")

    def apply(self, tx: Transaction, event: Any, position: int) -> None:
        topic = type(event).__qualname__
        method = self._handlers.get(topic)
        if method is not None:
            getattr(self, method)(tx, event, position)
