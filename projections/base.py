"""What a projection is: tables it owns, and handlers for the events it cares about."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any, ClassVar

import orjson

from infra.database import Transaction

Handler = Callable[[Any, Any, Any], Any]


def handles(*topics: str) -> Callable[[Handler], Handler]:
    """Mark a method `(self, state, event) -> state` as the reducer of events named like
    `Asset.Uploaded`. `state` is None until a creation event makes one."""

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
    utc = value if value.tzinfo is timezone.utc else value.astimezone(timezone.utc)
    if utc.year < 1000:  # strftime does not pad %Y below 1000 (on glibc): keep its text
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The same text as strftime's, at a third of its cost (a rebuild formats every timestamp).
    return "%d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond)


# orjson with json.dumps(default=str, sort_keys=True)'s meaning: datetimes and dataclasses still go
# through str() (orjson would format them itself), keys sorted, non-text keys as text. The text is
# compact and keeps non-ASCII as UTF-8 (readers parse it; nothing compares it as text). A rebuild
# formats every row's JSON columns: this was 17% of a catalog replay.
_JSON_OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                 | orjson.OPT_PASSTHROUGH_DATACLASS)


def to_json(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str, option=_JSON_OPTIONS).decode()
    except TypeError:  # an integer past 64 bits (an odd EXIF value, say): orjson refuses, json writes it
        return json.dumps(value, default=str, sort_keys=True)


class Projection:
    """A read model made of keyed states (a row, or an album with its members).

    A batch of events is applied in three steps: load the states the batch touches in one query,
    reduce each event onto its state in memory, write the touched states back in one bulk
    statement. That keeps a replay at thousands of events per second on both backends.

    A projection instance writes to its tables under a suffix: "" for the live copy, another for
    a copy being rebuilt aside, which `projections.runner.rebuild` swaps in when it has caught up.
    """

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    # Bump when the tables or what the handlers write change: existing installs then replay.
    schema_version: ClassVar[int] = 1
    _handlers: ClassVar[dict[str, str]]
    # True while a rebuild bulk-loads fresh tables aside (`projections.runner.rebuild`): `save`
    # may then leave out what `create_indexes` derives from the loaded rows in one pass (the
    # search index's FTS5 tables), since nothing reads the tables before they are swapped in.
    bulk_loading = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = {}
        # A subclass (a projection's next version) keeps the handlers it inherits.
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
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
        """The tables, with what they cannot be without (primary keys)."""
        raise NotImplementedError

    def create_indexes(self, tx: Transaction) -> None:
        """Secondary indexes. A rebuild creates them after its bulk load: filling a table and
        then indexing it is faster than keeping every index current row by row. When
        `bulk_loading`, this also builds what `save` left out."""

    def create(self, tx: Transaction) -> None:
        self.create_tables(tx)
        self.create_indexes(tx)

    def drop_tables(self, tx: Transaction) -> None:
        for base in self.tables:
            tx.execute(f"DROP TABLE IF EXISTS {self.t(base)}")

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        """The current states for these keys (absent keys have no state yet)."""
        raise NotImplementedError

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        """Write back the states a batch touched."""
        raise NotImplementedError

    def apply_batch(self, tx: Transaction, events: Iterable[Any]) -> None:
        relevant = []
        for event in events:
            method = self._handlers.get(type(event).__qualname__)
            if method is not None:
                relevant.append((getattr(self, method), str(event.originator_id), event))
        if not relevant:
            return
        keys = {key for _, key, _ in relevant}
        states = self.load(tx, keys)
        for reduce, key, event in relevant:
            state = reduce(states.get(key), event)
            if state is not None:
                states[key] = state
        self.save(tx, {k: v for k, v in states.items() if k in keys})


def chunks(items: list[Any], size: int = 500) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def rows_in(tx: Transaction, select: str, column: str, keys: Iterable[Any],
            order_by: str = "") -> Iterator[dict[str, Any]]:
    """The rows of `select` (a SELECT ... FROM ... without WHERE) whose `column` is one of `keys`,
    asked in chunks of bound parameters; `order_by` orders each chunk's rows."""
    tail = f" ORDER BY {order_by}" if order_by else ""
    for part in chunks(sorted(keys)):
        yield from tx.fetchall(f"{select} WHERE {column} IN ({', '.join('?' * len(part))}){tail}", part)


def delete_in(tx: Transaction, table: str, column: str, keys: Iterable[Any]) -> None:
    """Delete the rows of `table` whose `column` is one of `keys`, in chunks."""
    for part in chunks(sorted(keys)):
        tx.execute(f"DELETE FROM {table} WHERE {column} IN ({', '.join('?' * len(part))})", part)


def upsert(tx: Transaction, table: str, columns: list[str], key: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert or replace rows by `key` in one bulk call (pipelined and prepared on psycopg).

    Measured: one multi-row VALUES statement is slower here, because psycopg parses the
    placeholders of a 10k-parameter query in Python on every call."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
    tx.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}",
        rows,
    )
