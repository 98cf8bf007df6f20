"""The table behind `Idempotency-Key`: per (user, operation, key) the request's fingerprint and,
once done, the answer. Kept 24 hours beside the read models; not derived from events (nothing to
rebuild, nothing lost by dropping it but the replays)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from domain.errors import Conflict, Unprocessable
from infra.database import Database

HEADER = "Idempotency-Key"
KEEP_SECONDS = 24 * 3600
PENDING = -1


@dataclass(frozen=True)
class Replay:
    status: int
    body: bytes


class IdempotencyStore:
    """Keys per (user, operation), their request fingerprint and, once done, the answer."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.transaction() as tx:
            if not db.table_exists(tx, "idempotency_keys"):
                tx.execute(
                    """CREATE TABLE idempotency_keys (
                        user_id BIGINT NOT NULL,
                        operation TEXT NOT NULL,
                        idem_key TEXT NOT NULL,
                        fingerprint TEXT NOT NULL,
                        status BIGINT NOT NULL,
                        body TEXT,
                        created_at DOUBLE PRECISION NOT NULL,
                        PRIMARY KEY (user_id, operation, idem_key)
                    )"""
                )

    def claim(self, user_id: int, operation: str, key: str, fingerprint: str) -> Replay | None:
        """None: the key is ours now (run the request). A Replay: the first answer. Raises 422
        for another request under the same key, 409 while the first is still running."""
        now = time.time()
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM idempotency_keys WHERE user_id = ? AND created_at < ?",
                       (user_id, now - KEEP_SECONDS))
            inserted = tx.execute(
                "INSERT INTO idempotency_keys (user_id, operation, idem_key, fingerprint, status, body, "
                "created_at) VALUES (?, ?, ?, ?, ?, NULL, ?) ON CONFLICT DO NOTHING",
                (user_id, operation, key, fingerprint, PENDING, now))
            if inserted:
                return None
            row = tx.fetchone("SELECT fingerprint, status, body FROM idempotency_keys "
                              "WHERE user_id = ? AND operation = ? AND idem_key = ?", (user_id, operation, key))
        if row is None:  # released between the insert and the select: a fresh attempt may retry
            raise Conflict("a request with this Idempotency-Key is being retried; try again", HEADER)
        if row["fingerprint"] != fingerprint:
            raise Unprocessable("this Idempotency-Key was used for a different request", HEADER)
        if int(row["status"]) == PENDING:
            raise Conflict("a request with this Idempotency-Key is still running; try again shortly", HEADER)
        return Replay(int(row["status"]), str(row["body"]).encode())

    def complete(self, user_id: int, operation: str, key: str, status: int, body: bytes) -> None:
        with self.db.transaction() as tx:
            tx.execute("UPDATE idempotency_keys SET status = ?, body = ? "
                       "WHERE user_id = ? AND operation = ? AND idem_key = ?",
                       (status, body.decode(), user_id, operation, key))

    def release(self, user_id: int, operation: str, key: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM idempotency_keys WHERE user_id = ? AND operation = ? AND idem_key = ? "
                       "AND status = ?", (user_id, operation, key, PENDING))
