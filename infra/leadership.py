"""Leadership: one process at a time holds a named role among those sharing a database.

Several `darkroom serve` replicas on one database each start the Kafka outbox relay and the job
scheduler; run at once, the relays publish every record once per replica and the schedulers
republish every due retry once per replica. Harmless (workers claim by command, readers skip
duplicates by position) but wasteful, so each of those loops first holds a `Leadership`; the
others stand by and take over when the holder goes away.

The lock is one the database (or the kernel) drops by itself when its holder dies, so a crashed
leader never has to be cleaned up after:
- PostgreSQL: a session advisory lock on a connection of its own. While holding it the leader
  checks that connection now and then; if it broke, the lock is gone (another replica may hold
  it already) and the leader steps down. TCP keepalives on both ends (and a user timeout) make
  the server end the session of a leader whose machine or network vanished within about half
  a minute, instead of the operating system's two hours; on the leader's side the user timeout
  also bounds a check stuck on a dead network (the statement timeout bounds it on the server).
- SQLite (one machine): an exclusive `flock` on `<data dir>/locks/<name>.lock`.

A handover can still let a record out twice (the old leader's unacknowledged tail); everything
downstream already tolerates that.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from typing import Any

from infra.settings import Settings

log = logging.getLogger("darkroom.leadership")
CHECK_EVERY_SECONDS = 2.0
# Client side (libpq) and server side (the session's settings) of a leader's connection.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
              "tcp_user_timeout": 30_000}
SESSION_OPTIONS = ("-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3 "
                   "-c tcp_user_timeout=30000 -c statement_timeout=5000")


class Leadership:
    def __init__(self, settings: Settings, name: str) -> None:
        self.settings = settings
        self.name = name
        self.held = False
        self._conn: Any = None
        self._file: int | None = None
        self._checked = 0.0
        self._lock = threading.Lock()  # the loop holds; `release` may come from another thread
        self._released = False
        self.error: str | None = None  # why the last try to hold failed (None: it held or was refused)

    def hold(self) -> bool:
        """Hold the role, or try to take it; cheap while held. True if this process holds it.
        Always False once released (the owner is stopping)."""
        with self._lock:
            if self._released:
                return False
            try:
                if self.settings.is_postgres:
                    held = self._hold_postgres()
                else:
                    held = self._hold_file()
            except Exception as exc:  # the database is away: not the leader until it answers again
                error = f"{type(exc).__name__}: {str(exc).strip()}"
                if self.held:
                    log.warning("%s: lost the leadership (%s)", self.name, error)
                elif error != self.error:
                    log.warning("%s: cannot take the leadership (%s); trying again", self.name, error)
                self.error = error
                self._drop()
                held = False
            else:
                self.error = None
            if held and not self.held:
                log.info("%s: this process leads now", self.name)
            self.held = held
            return held

    def release(self) -> None:
        """Give the role up for good (the owner stops); another process may take it at once."""
        with self._lock:
            if self.held:
                log.info("%s: leadership released", self.name)
            self._released = True
            self._drop(unlock=True)
            self.held = False

    # -- PostgreSQL --------------------------------------------------------------------------

    def _key(self) -> str:
        return f"darkroom:{self.settings.database_schema or 'public'}:{self.name}"

    def _hold_postgres(self) -> bool:
        import psycopg

        if self.held and self._conn is not None:
            now = time.monotonic()
            if now - self._checked >= CHECK_EVERY_SECONDS:
                self._conn.execute("SELECT 1")  # raises if the session (and so the lock) is gone
                self._checked = now
            return True
        if self._conn is None:
            parts = {**self.settings.postgres_parts(), "connect_timeout": 10, "autocommit": True,
                     "application_name": f"darkroom {self.name}"[:63]}
            try:
                self._conn = psycopg.connect(**parts, options=SESSION_OPTIONS, **KEEPALIVES)
            except psycopg.OperationalError as exc:
                # A pooler (PgBouncer) refuses the startup `options` ("unsupported startup
                # parameter"); a server before 12 `tcp_user_timeout` ("unrecognized configuration
                # parameter"). Anything else (the server is down) is not ours to work around.
                if "parameter" not in str(exc):
                    raise
                log.warning("%s: connecting without keepalive settings (%s); a vanished leader then "
                            "holds the lock until the OS notices", self.name, str(exc).strip())
                self._conn = psycopg.connect(**parts)
        row = self._conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self._key(),)).fetchone()
        self._checked = time.monotonic()
        return bool(row and row[0])

    # -- SQLite (a lock file) ----------------------------------------------------------------

    def _hold_file(self) -> bool:
        if self.held and self._file is not None:
            return True
        if self._file is None:
            folder = self.settings.data_dir / "locks"
            folder.mkdir(parents=True, exist_ok=True)
            self._file = os.open(folder / f"{self.name.replace('/', '_')}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _drop(self, unlock: bool = False) -> None:
        if self._conn is not None:
            try:
                if unlock and self.held:
                    # Unlocked before the answer returns, so a standby asking right after gets it;
                    # closing alone ends the session asynchronously (a busy server was seen to
                    # refuse the next holder for a moment).
                    self._conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (self._key(),))
            except Exception:
                pass
            try:
                self._conn.close()  # ends the session: PostgreSQL drops its advisory locks
            except Exception:
                pass
            self._conn = None
        if self._file is not None:
            os.close(self._file)  # drops the flock
            self._file = None
