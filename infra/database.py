"""The read-model database: the same SQLite file or PostgreSQL database as the event store.

Projections write through `Database.transaction()`; API handlers read through `Database.query()`.
SQL is written once with `?` placeholders and translated for psycopg, so each projection keeps
one set of statements for both backends.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from infra.settings import Settings

Row = dict[str, Any]

_PLACEHOLDER = re.compile(r"\?")


class Transaction(Protocol):
    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...


class _SQLiteTx:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, tuple(params)).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.conn.executemany(sql, rows)

    def _cursor(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        # Plain tuples zipped with the column names: half the cost of dict(sqlite3.Row).
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return cursor.execute(sql, tuple(params))

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._cursor(sql, params)
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, r)) for r in cursor.fetchall()]

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        cursor = self._cursor(sql, params)
        row = cursor.fetchone()
        return dict(zip([d[0] for d in cursor.description], row)) if row is not None else None


class _PostgresTx:
    dialect = "postgres"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @staticmethod
    def _sql(sql: str) -> str:
        return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self.conn.execute(self._sql(sql), tuple(params))
        return cur.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self.conn.execute(self._sql(sql), tuple(params)).fetchall())

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self.conn.execute(self._sql(sql), tuple(params)).fetchone()


class Database:
    """Connections to the read-model database, one per thread for SQLite, pooled for PostgreSQL."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dialect = "postgres" if settings.is_postgres else "sqlite"
        self._local = threading.local()
        self._pool: Any = None
        if self.dialect == "postgres":
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool

            parts = settings.postgres_parts()
            options = f"-c search_path={settings.database_schema}" if settings.database_schema else ""
            from infra.eventstore import LIBPQ_LIMITS, OUTAGE_WAIT_SECONDS

            self._pool = ConnectionPool(
                kwargs={
                    **parts,
                    "row_factory": dict_row,
                    "options": options,
                    **LIBPQ_LIMITS,
                },
                min_size=1,
                max_size=16,
                open=True,
                name="darkroom-read-models",
                timeout=OUTAGE_WAIT_SECONDS,  # a request waits this long for a connection, then 503
                check=ConnectionPool.check_connection,  # broken by a restart: replaced on checkout
            )
            from infra.breaker import breaker_for

            breaker_for(settings.postgres_server()).guard(self._pool)  # an outage fails callers at once
        else:
            settings.ensure_data_dir()

    # -- connections ---------------------------------------------------------------------------

    def _sqlite(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.settings.sqlite_path, isolation_level=None, timeout=30, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction. On SQLite it takes the write lock at once (BEGIN IMMEDIATE), so
        two projection runners never interleave; on PostgreSQL callers lock rows explicitly."""
        if self.dialect == "sqlite":
            conn = self._sqlite()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        else:
            with self._pool.connection() as conn, conn.transaction():
                yield _PostgresTx(conn)

    @contextmanager
    def reader(self) -> Iterator[Transaction]:
        """A read-only view for queries; a consistent snapshot for its duration."""
        if self.dialect == "sqlite":
            conn = self._sqlite()
            conn.execute("BEGIN")
            try:
                yield _SQLiteTx(conn)
            finally:
                conn.execute("COMMIT")
        else:
            with self._pool.connection() as conn, conn.transaction():
                yield _PostgresTx(conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self.reader() as tx:
            return tx.fetchall(sql, params)

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        with self.reader() as tx:
            return tx.fetchone(sql, params)

    def table_exists(self, tx: Transaction, name: str) -> bool:
        if self.dialect == "sqlite":
            row = tx.fetchone("SELECT 1 AS x FROM sqlite_master WHERE type='table' AND name=?", (name,))
        else:
            row = tx.fetchone(
                "SELECT 1 AS x FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name = ?",
                (name,),
            )
        return row is not None

    def ping(self) -> None:
        self.query("SELECT 1 AS ok")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
