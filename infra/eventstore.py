"""The eventsourcing environment for the configured backend (SQLite file or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from infra.settings import Settings


# Cached aggregates are fast-forwarded on every read (one query for the events after the cached
# version), so a copy is never stale, whoever wrote last. Measured without fast-forward it was
# faster, but a command that decides "no change" (like when already liked) could then decide on a
# stale copy and silently lose an update: correctness first.
CACHE_ENV = {"AGGREGATE_CACHE_MAXSIZE": "20000", "AGGREGATE_CACHE_FASTFORWARD": "y"}
# Personal fields of events are sealed with their owner's key (crypto-shredding).
MAPPER_ENV = {"MAPPER_TOPIC": "infra.personal_data:PersonalDataMapper"}


def eventstore_env(settings: Settings) -> dict[str, str]:
    """Environment for `commands.Darkroom`: eventsourcing reads its persistence from here."""
    return {**_persistence_env(settings), **CACHE_ENV, **MAPPER_ENV}


def _persistence_env(settings: Settings) -> dict[str, str]:
    if settings.is_postgres:
        parts = settings.postgres_parts()
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts["dbname"],
            "POSTGRES_HOST": parts["host"],
            "POSTGRES_PORT": parts["port"],
            "POSTGRES_USER": parts["user"],
            "POSTGRES_PASSWORD": parts["password"],
            # Its default waits forever for the table lock taken by every insert.
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_POOL_SIZE": "8",
            "POSTGRES_MAX_OVERFLOW": "8",
            # eventsourcing passes this as the pool's wait for a connection: during an outage a
            # request fails in seconds (503) instead of queueing 30 s waits that outlive the outage.
            "POSTGRES_CONNECT_TIMEOUT": str(OUTAGE_WAIT_SECONDS),
            "POSTGRES_PRE_PING": "y",  # a connection broken by a restart is replaced, not used
            "APPLICATION_RECORDER_TOPIC": "infra.eventstore:PollingPostgresRecorder",
        }
        if settings.database_schema:
            env["POSTGRES_SCHEMA"] = settings.database_schema
        return env
    settings.ensure_data_dir()
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(settings.sqlite_path),
        "SQLITE_LOCK_TIMEOUT": "30",
    }


# How long a request waits for PostgreSQL before answering 503; and libpq's own limits, so that a
# connection to a server that vanished (crash, cut network) fails instead of hanging on TCP.
OUTAGE_WAIT_SECONDS = 2
LIBPQ_LIMITS = {
    "connect_timeout": OUTAGE_WAIT_SECONDS,
    "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2,
    "tcp_user_timeout": 5000,  # ms: sent data unacknowledged this long means the peer is gone
}


def harden_event_store(app: Any, settings: Settings) -> None:
    """Give the event store's connections libpq's limits (eventsourcing passes none), replace
    those it opened already, and put the server's circuit breaker in front of its pool."""
    datastore = getattr(app.recorder, "datastore", None)
    pool = getattr(datastore, "pool", None)
    if pool is None or not hasattr(pool, "kwargs"):
        return  # SQLite
    pool.kwargs.update(LIBPQ_LIMITS)
    pool.drain()
    from infra.breaker import breaker_for

    breaker_for(settings.postgres_server()).guard(pool)


class DatabaseUnavailable(Exception):
    """The configured database cannot be reached; the message says what to do."""


@contextmanager
def prepared_database(settings: Settings) -> Iterator[None]:
    """Check PostgreSQL answers, and hold the schema set-up lock while the caller creates the
    event store's and the read models' tables (the configured schema is created here).

    Processes started together on an empty PostgreSQL schema (`serve` and its workers under a
    service manager) otherwise race on CREATE SCHEMA / TABLE / TYPE IF NOT EXISTS and CREATE OR
    REPLACE FUNCTION, and all but one die ("duplicate key value violates unique constraint
    pg_type_typname_nsp_index"). A session advisory lock, so it needs no schema to exist. SQLite
    serialises those statements on its database lock already.
    """
    if not settings.is_postgres:
        yield
        return
    parts = settings.postgres_parts()
    try:
        conn = psycopg.connect(**parts, connect_timeout=10, autocommit=True)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {parts['host']}:{parts['port']}/{parts['dbname']}: "
            f"{str(exc).strip()}. Start it with `make services` (or scripts/postgres.sh), "
            "or fix DARKROOM_DATABASE_URL."
        ) from None
    key = f"darkroom-setup:{settings.database_schema or 'public'}"
    try:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        if settings.database_schema:
            conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(settings.database_schema)))
        yield
    finally:
        conn.close()  # ends the session, which releases the lock (also after an error)


class PollingPostgresRecorder(PostgresApplicationRecorder):
    """eventsourcing's PostgreSQL recorder, inserting in one round trip and without NOTIFY.

    eventsourcing inserts in a pipelined transaction: BEGIN, SET lock_timeout, LOCK TABLE, NOTIFY,
    INSERT, sync, COMMIT — several waits on the server per command. Here one statement calls a
    PL/pgSQL function that takes the same EXCLUSIVE table lock (so notification order stays equal
    to commit order: a reader never passes a gap that an open transaction fills later) and
    inserts; in autocommit the lock is held until that statement's own transaction commits.
    NOTIFY serves `subscribe()`, which Darkroom does not use: projections poll the notification
    log the same way on both backends.
    """

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        function = Identifier(f"darkroom_insert_events_{self.datastore.originator_id_type}")
        self.sql_create_statements.append(SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}(events {schema}.{event}[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
            "BEGIN"
            "  SET LOCAL lock_timeout = '{lock_timeout}s';"
            "  LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;"
            "  RETURN QUERY"
            "    INSERT INTO {schema}.{table} AS t (originator_id, originator_version, topic, state)"
            "    SELECT originator_id, originator_version, topic, state FROM unnest(events)"
            "    RETURNING t.notification_id;"
            "END; $BODY$"
        ).format(
            schema=schema, function=function, event=Identifier(self.stored_event_type_name),
            table=Identifier(self.events_table_name), lock_timeout=self.datastore.lock_timeout,
        ))
        self._select_rendered: tuple[bytes, bytes] | None = None
        self._insert_call = SQL("SELECT id FROM {schema}.{function}(%s) AS id").format(
            schema=schema, function=function
        )

    @retry((InterfaceError, OperationalError), max_attempts=2, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        events = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._insert_call, (events,), prepare=True)
            return [row["id"] for row in curs.fetchall()]

    def select_events(
        self, originator_id: Any, *, gt: int | None = None, lte: int | None = None,
        desc: bool = False, limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """The reads a command makes (all of an aggregate's events, or those after a cached
        version) with their statement rendered once; other shapes go to eventsourcing's."""
        if lte is not None or desc or limit is not None:
            return super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
        return self._select_after(originator_id, gt)

    @retry((InterfaceError, OperationalError), max_attempts=2, wait=0.2)
    def _select_after(self, originator_id: Any, gt: int | None) -> Sequence[StoredEvent]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            if self._select_rendered is None:
                order = SQL(" ORDER BY originator_version ASC")
                self._select_rendered = (
                    (self.select_events_statement + order).as_bytes(conn),
                    (self.select_events_statement + SQL(" AND originator_version > %s") + order).as_bytes(conn),
                )
            if gt is None:
                curs.execute(self._select_rendered[0], (originator_id,), prepare=True)
            else:
                curs.execute(self._select_rendered[1], (originator_id, gt), prepare=True)
            return [
                StoredEvent(originator_id=row["originator_id"], originator_version=row["originator_version"],
                            topic=row["topic"], state=bytes(row["state"]))
                for row in curs.fetchall()
            ]

    def _notify_channel(self, curs: Any) -> None:
        return None

    # eventsourcing retries these ten times; at a 2 s pool wait that held a request 20 s into an
    # outage. One retry covers a connection dropped by a restart; then 503.
    select_notifications = retry((InterfaceError, OperationalError), max_attempts=2, wait=0.2)(
        PostgresApplicationRecorder.select_notifications.__wrapped__)
    max_notification_id = retry((InterfaceError, OperationalError), max_attempts=2, wait=0.2)(
        PostgresApplicationRecorder.max_notification_id.__wrapped__)
