"""Fast replay for rebuilds: stored events decoded with orjson straight into what reducers read,
and reduced in memory across many read batches before one bulk write.

The live path decodes every notification through eventsourcing's mapper (the stdlib JSON decoder
with a Python object hook per nested dict, then an event object) and writes back each batch's
touched states: ~15 us of decoding and ~15 us of writing per event on a rebuild. Here only the
events a projection handles are decoded, by orjson, with the library's transcodings (datetime,
UUID, Decimal, ...) revived where they are; the states stay in memory until `max_states` of them
are held, so a rebuild writes each row about once instead of once per batch that touched it.

A projection that applies batches itself (people: clustering needs the whole batch) is fed the
mapper's events exactly as live, batch by batch.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import resolve_topic
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from infra.database import Transaction
from projections.base import Projection

_TYPE_MARK = b'"_type_"'


class Stored(NamedTuple):
    """A row of the notification log, as the mapper and `Replay.decode` read it."""

    id: int
    originator_id: UUID | str
    originator_version: int
    topic: str
    state: bytes


def read_stored(app: Application[Any], after: int, limit: int) -> list[Any]:
    """Up to `limit` notifications after position `after`, in order: one plain SELECT into
    tuples (eventsourcing's `select_notifications` builds a dict, then an object, per row: half
    of a rebuild's reading time). Other recorders go through `select_notifications`."""
    recorder = app.recorder
    if isinstance(recorder, PostgresApplicationRecorder):
        statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {}.{} "
            "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(statement, (after, limit), prepare=True, binary=True)
            return [Stored(*row) for row in curs.fetchall()]
    if isinstance(recorder, SQLiteApplicationRecorder):
        statement = (f"SELECT rowid, originator_id, originator_version, topic, state "
                     f"FROM {recorder.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?")
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(statement, (after, limit))
            # SQLite keeps ids as 32 hex digits. They stay text here, in the canonical form that
            # read models key by; an event makes the UUID only when a reducer reads it.
            return [Stored(r[0], f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" if len(h) == 32 else h,
                           r[2], r[3], r[4])
                    for r in c.fetchall() for h in (r[1],)]
    return list(recorder.select_notifications(after, limit, inclusive_of_start=False))


class ReplayedEvent:
    """An event's attributes as its reducers read them: `originator_id` (UUID),
    `originator_version` and every field of its stored state. Values are revived from their
    stored form (UUID, datetime, ... transcodings) on first read: most reducers never read the
    event's timestamp, and parsing it was the largest single cost of decoding."""

    def __init__(self, replay: Replay, originator_id: Any, originator_version: int, state: dict[str, Any],
                 marks: int) -> None:
        """`marks`: how many transcoded values the stored state holds (`"_type_"` in its text)."""
        attributes = self.__dict__
        attributes["_replay"] = replay
        attributes["_state"] = state
        attributes["_id"] = originator_id
        attributes["originator_version"] = originator_version
        # Only a transcoded value itself (a dict with `_type_`) needs reviving when nothing is
        # transcoded inside containers: the rest reads as stored, set here at once (a first
        # read through __getattr__ costs a microsecond, and reducers read most fields).
        top = 0
        for name, value in state.items():
            if type(value) is dict and "_type_" in value:
                top += 1
            else:
                attributes[name] = value
        deep = marks != top  # transcoded values beyond whole fields (the timestamp): all revived
        attributes["_deep"] = deep
        if deep:
            for name in state:
                attributes.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        if name == "originator_id":
            raw = self.__dict__["_id"]
            value: Any = raw if isinstance(raw, UUID) else UUID(raw)
        else:
            try:
                stored = self.__dict__["_state"][name]
            except KeyError:
                raise AttributeError(name) from None
            value = self.__dict__["_replay"].revive(stored, self.__dict__["_deep"])
        self.__dict__[name] = value
        return value

    def attributes(self) -> dict[str, Any]:
        """Every attribute, revived (what the mapper's event object has in its `__dict__`)."""
        names = ["originator_id", "originator_version", *self.__dict__["_state"]]
        return {name: getattr(self, name) for name in names}


class Replay:
    """Feeds read batches of notifications to one projection; `flush` writes what it holds."""

    def __init__(self, app: Application[Any], projection: Projection, max_states: int = 20_000) -> None:
        self.app = app
        self.projection = projection
        self.max_states = max_states
        self.states: dict[str, Any] = {}
        self.absent: set[str] = set()  # keys looked up and found without a state
        # A rebuild starts on empty tables: until the first flush nothing can be loaded.
        self.flushed = False
        mapper = app.mapper
        self._names: dict[str, Any] = dict(getattr(mapper.transcoder, "names", {}))
        # Only the plain stored form can be read directly; otherwise go through the mapper.
        self._direct = mapper.cipher is None and mapper.compressor is None and bool(self._names)
        self._batched_itself = type(projection).apply_batch is not Projection.apply_batch
        self._reducers: dict[str, Any] = {}  # topic -> bound reducer, or None when not handled
        self._versions: dict[str, int] = {}
        self._sealed: dict[str, tuple[str, ...]] = {}
        # The AES-GCM cipher of each key that opened fields, for this replay only (one a user).
        self._ciphers: dict[bytes, Any] = {}

    # -- decoding ---------------------------------------------------------------------------------

    def revive(self, value: Any, deep: bool) -> Any:
        """A stored value with its transcoded parts (`{"_type_": ..., "_data_": ...}`) decoded;
        `deep` when some are nested inside containers."""
        kind = type(value)
        if kind is dict:
            if "_type_" in value and "_data_" in value and len(value) == 2:
                return self._names[value["_type_"]].decode(self.revive(value["_data_"], deep))
            return {k: self.revive(v, deep) for k, v in value.items()} if deep else value
        if kind is list and deep:
            return [self.revive(v, deep) for v in value]
        return value

    def decode(self, notification: Any) -> Any:
        """The event of a stored notification, as a reducer reads it."""
        if not self._direct:
            return self.app.mapper.to_domain_event(notification)
        state = orjson.loads(notification.state)
        if state.pop("class_version", 1) != self._class_version(notification.topic):
            return self.app.mapper.to_domain_event(notification)  # an old shape: upcast as live
        fields = self._personal(notification.topic)
        if fields:  # sealed personal fields: opened with their owner's key (infra.personal_data)
            self.app.mapper.open_fields(state, notification.topic.partition(":")[2], fields, self._ciphers)
        return ReplayedEvent(self, notification.originator_id, notification.originator_version, state,
                             notification.state.count(_TYPE_MARK))

    def _personal(self, topic: str) -> tuple[str, ...]:
        """The personal fields of events of this topic, which the mapper opens with their
        owner's key (or reads as erased); none for most."""
        if topic not in self._sealed:
            fields = getattr(self.app.mapper, "personal_fields", None)
            self._sealed[topic] = tuple(fields(topic)) if fields else ()
        return self._sealed[topic]

    def _class_version(self, topic: str) -> int:
        if topic not in self._versions:
            self._versions[topic] = getattr(resolve_topic(topic), "class_version", 1)
        return self._versions[topic]

    def _reducer(self, topic: str) -> Any:
        if topic not in self._reducers:
            method = self.projection._handlers.get(topic.rpartition(":")[2])
            self._reducers[topic] = getattr(self.projection, method) if method else None
        return self._reducers[topic]

    # -- feeding ----------------------------------------------------------------------------------

    def feed(self, tx: Transaction, notifications: Any) -> None:
        """Reduce one read batch onto the held states (loading those not held yet)."""
        if self._batched_itself:
            self.projection.apply_batch(tx, [self.app.mapper.to_domain_event(n) for n in notifications])
            return
        items = []
        for n in notifications:
            reduce = self._reducer(n.topic)
            if reduce is not None:
                items.append((reduce, str(n.originator_id), self.decode(n)))  # str of str: a no-op
        if not items:
            return
        missing = {key for _, key, _ in items if key not in self.states and key not in self.absent}
        if missing and not self.flushed:
            self.absent.update(missing)
        elif missing:
            found = self.projection.load(tx, missing)
            self.states.update(found)
            self.absent.update(missing - found.keys())
        states = self.states
        for reduce, key, event in items:
            state = reduce(states.get(key), event)
            if state is not None:
                states[key] = state
                self.absent.discard(key)
        if len(states) >= self.max_states:
            self.flush(tx)

    def flush(self, tx: Transaction) -> None:
        """Write every held state in one bulk save, then forget them."""
        if self.states:
            self.projection.save(tx, self.states)
            self.flushed = True
        self.states = {}
        self.absent = set()
