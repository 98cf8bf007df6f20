"""Following the notification log: live catch-up, crash-safe positions, and rebuild aside.

A runner applies a batch of events and advances its position in one transaction, so a crash
never applies an event twice or skips one. The position row is locked first (PostgreSQL:
`SELECT ... FOR UPDATE`; SQLite: `BEGIN IMMEDIATE`), so any number of runners, in this process or
others, serialise on it, and a rebuild can swap its tables in under the same lock.

SQLite has no subscriptions in eventsourcing, so this polls `select_notifications` on both
backends; in-process callers (the API, for read-your-writes) call `catch_up` directly instead of
waiting for the next poll.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from eventsourcing.application import Application

from infra.background import Background
from infra.database import Database, Transaction
from projections.base import Projection
from projections.replay import Replay, read_stored

POSITIONS_TABLE = "projection_positions"
SCHEMAS_TABLE = "projection_schemas"
log = logging.getLogger("darkroom.projections")


def ensure_positions_table(db: Database) -> None:
    with db.transaction() as tx:
        if not db.table_exists(tx, POSITIONS_TABLE):
            tx.execute(
                f"CREATE TABLE {POSITIONS_TABLE} (name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
            )
        if not db.table_exists(tx, SCHEMAS_TABLE):
            tx.execute(f"CREATE TABLE {SCHEMAS_TABLE} (name TEXT PRIMARY KEY, version BIGINT NOT NULL)")


def record_schema(tx: Transaction, projection: Projection) -> None:
    if not tx.execute(f"UPDATE {SCHEMAS_TABLE} SET version = ? WHERE name = ?",
                      (projection.schema_version, projection.name)):
        tx.execute(f"INSERT INTO {SCHEMAS_TABLE} (name, version) VALUES (?, ?)",
                   (projection.name, projection.schema_version))


class ProjectionRunner:
    def __init__(
        self, app: Application[Any], db: Database, projection: Projection, batch_size: int = 500,
        on_event: Callable[[Projection, Any, int], None] | None = None,
    ) -> None:
        self.app = app
        self.db = db
        self.projection = projection
        self.batch_size = batch_size
        self._lock = threading.Lock()
        # The highest position this runner has seen applied (positions never go back): lets a
        # read-your-writes wait skip the position query when this process applied it already.
        self.applied = 0
        # Tests use this to stop a runner in the middle of a batch, as a crash would.
        self.on_event = on_event

    @property
    def name(self) -> str:
        return self.projection.name

    def ensure_tables(self) -> None:
        """Create the live tables and the position row on first use. Tables of an older schema
        version (an upgrade changed the projection) keep serving while the new version is built
        aside from event 1 and swapped in (`rebuild`): readers never see a partial read model."""
        ensure_positions_table(self.db)
        with self.db.transaction() as tx:
            row = tx.fetchone(f"SELECT version FROM {SCHEMAS_TABLE} WHERE name = ?", (self.name,))
            exists = self.db.table_exists(tx, self.projection.t(self.projection.tables[0]))
            stale = exists and (row is None or int(row["version"]) != self.projection.schema_version)
            if not exists:
                self.projection.drop_tables(tx)
                self.projection.create(tx)
                tx.execute(f"DELETE FROM {POSITIONS_TABLE} WHERE name = ?", (self.name,))
                record_schema(tx, self.projection)
            if tx.fetchone(f"SELECT 1 AS x FROM {POSITIONS_TABLE} WHERE name = ?", (self.name,)) is None:
                tx.execute(
                    f"INSERT INTO {POSITIONS_TABLE} (name, position) VALUES (?, 0)", (self.name,)
                )
        if stale:
            log.warning("projection %s: schema changed (version %s -> %s); rebuilding aside while the "
                        "old tables serve", self.name, row and row["version"], self.projection.schema_version)
            rebuild(self.app, self.db, type(self.projection))
            self.applied = 0

    def _lock_position(self, tx: Transaction) -> int:
        lock = " FOR UPDATE" if tx.dialect == "postgres" else ""
        row = tx.fetchone(f"SELECT position FROM {POSITIONS_TABLE} WHERE name = ?{lock}", (self.name,))
        if row is None:
            raise RuntimeError(
                f"projection {self.name} has no position row; run `darkroom projections rebuild {self.name}`"
            )
        return int(row["position"])

    def position(self) -> int:
        row = self.db.query_one(f"SELECT position FROM {POSITIONS_TABLE} WHERE name = ?", (self.name,))
        position = int(row["position"]) if row else 0
        self.applied = max(self.applied, position)
        return position

    def process_batch(self, upto: int | None = None) -> int:
        """Apply the next batch of events; returns how many there were. With `upto`, nothing
        is done when the batch another thread applied while this one waited reached it."""
        with self._lock:
            if upto is not None and self.applied >= upto:
                return 0
            # Read the log before taking the write lock: on SQLite, a command thread may hold
            # eventsourcing's writer connection while it waits for that same file lock.
            notifications = self.app.recorder.select_notifications(
                self.position(), self.batch_size, inclusive_of_start=False
            )
            with self.db.transaction() as tx:
                count, reached = self._apply(tx, notifications)
            self.applied = max(self.applied, reached)
            return count

    def _apply(self, tx: Transaction, notifications: Any) -> tuple[int, int]:
        # Another runner (another process) may have moved on since we read: skip what it did.
        position = self._lock_position(tx)
        notifications = [n for n in notifications if n.id > position]
        events = []
        for n in notifications:
            event = self.app.mapper.to_domain_event(n)
            if self.on_event is not None:
                self.on_event(self.projection, event, n.id)
            events.append(event)
        self.projection.apply_batch(tx, events)
        if notifications:
            position = notifications[-1].id
            tx.execute(f"UPDATE {POSITIONS_TABLE} SET position = ? WHERE name = ?", (position, self.name))
        return len(notifications), position

    def catch_up(self, upto: int | None = None) -> int:
        """Apply everything recorded so far (or at least up to `upto`: concurrent commands then
        share the batches); returns the number of events applied."""
        total = 0
        while True:
            count = self.process_batch(upto)
            total += count
            if count < self.batch_size:
                return total


def head_position(app: Application[Any]) -> int:
    return app.recorder.max_notification_id() or 0


def rebuild(
    app: Application[Any],
    db: Database,
    projection_class: type[Projection],
    batch_size: int = 5000,
    progress: Callable[[int, int], None] | None = None,
    max_states: int = 20_000,
) -> int:
    """Replay the whole log into fresh tables built aside, then swap them in.

    The live tables keep serving until the swap. The swap happens under the live position's lock,
    after a last catch-up, so the live runner resumes on the new tables exactly where they stand.
    Events are read `batch_size` at a time and reduced in memory (`projections.replay`); the
    shadow tables get their secondary indexes after the bulk load. Returns the number of events
    replayed.
    """
    ensure_positions_table(db)
    # The cyclic collector would rescan the held states on every few thousand allocations (a
    # third of a search index rebuild's time); they hold no cycles and are dropped when written.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _rebuild(app, db, projection_class, batch_size, progress, max_states)
    finally:
        if collecting:
            gc.enable()


def _rebuild(
    app: Application[Any], db: Database, projection_class: type[Projection], batch_size: int,
    progress: Callable[[int, int], None] | None, max_states: int,
) -> int:
    shadow = projection_class(suffix="__rebuild")
    live = projection_class()
    with db.transaction() as tx:
        shadow.drop_tables(tx)
        shadow.create_tables(tx)
    # Until its indexes are made, the copy aside is written in bulk (nothing reads it yet).
    shadow.bulk_loading = True
    replay = Replay(app, shadow, max_states=max_states)
    position = 0
    replayed = 0
    head = head_position(app)

    def read(tx: Transaction) -> int:
        nonlocal position, replayed
        notifications = read_stored(app, position, batch_size)
        replay.feed(tx, notifications)
        if notifications:
            position = notifications[-1].id
            replayed += len(notifications)
        return len(notifications)

    while True:
        with db.transaction() as tx:
            count = read(tx)
        if progress is not None:
            progress(position, max(head, position))
        if count < batch_size:
            break
    with db.transaction() as tx:
        replay.flush(tx)
        shadow.create_indexes(tx)
    # The catch-up under the lock below writes as live does, onto complete tables.
    shadow.bulk_loading = False

    with db.transaction() as tx:
        lock = " FOR UPDATE" if tx.dialect == "postgres" else ""
        tx.fetchone(f"SELECT position FROM {POSITIONS_TABLE} WHERE name = ?{lock}", (live.name,))
        while read(tx) == batch_size:
            pass
        replay.flush(tx)
        for base in live.tables:
            tx.execute(f"DROP TABLE IF EXISTS {live.t(base)}")
            tx.execute(f"ALTER TABLE {shadow.t(base)} RENAME TO {live.t(base)}")
        record_schema(tx, live)
        # UPDATE, not DELETE + INSERT: a live runner waiting on this row's lock must find it.
        if not tx.execute(f"UPDATE {POSITIONS_TABLE} SET position = ? WHERE name = ?", (position, live.name)):
            tx.execute(f"INSERT INTO {POSITIONS_TABLE} (name, position) VALUES (?, ?)", (live.name, position))
    if progress is not None:
        progress(position, max(head_position(app), position))
    return replayed


class ProjectionDaemon(Background):
    """Runs runners in a background thread, polling the log; `wake` makes it look at once."""

    def __init__(self, runners: Iterable[ProjectionRunner], interval: float = 0.5) -> None:
        super().__init__("projections", join_timeout=10)
        self.runners = list(runners)
        self.interval = interval
        self.errors: dict[str, str] = {}  # runner name -> its last error, until it recovers

    def _run(self) -> None:
        while not self._stop.is_set():
            for runner in self.runners:
                try:
                    runner.catch_up()
                    self.errors.pop(runner.name, None)
                except Exception as exc:  # keep following; health reports it
                    self.errors[runner.name] = repr(exc)
                    time.sleep(1)
            self._pause(self.interval)
