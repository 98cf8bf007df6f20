"""The jobs read model: every job with its state, for the admin jobs, queues and stats pages."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from domain.job import STATES
from infra.database import Database, Row, Transaction
from projections.base import Projection, rows_in, handles, to_json, ts, upsert

JOB_COLUMNS = [
    "job_id", "aggregate_id", "kind", "queue", "state", "args", "metadata", "attempt",
    "max_attempts", "priority", "errors", "created_at", "scheduled_at", "attempted_at",
    "finalized_at", "updated_at", "asset_id", "version",
]
_JSON = frozenset({"args", "metadata", "errors"})
TIME_RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "30d": timedelta(days=30)}


class JobsProjection(Projection):
    name = "jobs"
    tables = ("jobs",)

    def create_tables(self, tx: Transaction) -> None:
        table = self.t("jobs")
        tx.execute(
            f"""CREATE TABLE {table} (
                job_id BIGINT PRIMARY KEY,
                aggregate_id TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL,
                queue TEXT NOT NULL,
                state TEXT NOT NULL,
                args TEXT NOT NULL,
                metadata TEXT NOT NULL,
                attempt BIGINT NOT NULL,
                max_attempts BIGINT NOT NULL,
                priority BIGINT NOT NULL,
                errors TEXT NOT NULL,
                created_at TEXT NOT NULL,
                scheduled_at TEXT NOT NULL,
                attempted_at TEXT,
                finalized_at TEXT,
                updated_at TEXT NOT NULL,
                asset_id TEXT NOT NULL,
                version BIGINT NOT NULL
            )"""
        )
        tx.execute(f"CREATE INDEX {self.index_name(table, 'state')} ON {table} (state, queue, job_id)")
        tx.execute(f"CREATE INDEX {self.index_name(table, 'queue')} ON {table} (queue, state)")
        tx.execute(f"CREATE INDEX {self.index_name(table, 'asset')} ON {table} (asset_id)")

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        states: dict[str, Any] = {}
        for row in rows_in(tx, f"SELECT {', '.join(JOB_COLUMNS)} FROM {self.t('jobs')}", "aggregate_id", keys):
            for column in _JSON:
                row[column] = json.loads(row[column])
            states[row["aggregate_id"]] = row
        return states

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        upsert(tx, self.t("jobs"), JOB_COLUMNS, "job_id", [
            tuple(to_json(s[c]) if c in _JSON else s[c] for c in JOB_COLUMNS)
            for _, s in sorted(states.items())
        ])

    @handles("Job.Enqueued")
    def enqueued(self, state: Any, e: Any) -> Row:
        return {
            "job_id": e.job_id, "aggregate_id": str(e.originator_id), "kind": e.kind,
            "queue": e.queue, "state": "available" if e.scheduled_at <= e.created_at else "scheduled",
            # Version 1 of the event stored this copy of asset_id; version 2 derives it.
            "args": getattr(e, "args", None) or {"asset_id": e.asset_id}, "metadata": {"asset_id": e.asset_id, "owner_id": e.owner_id},
            "attempt": 0, "max_attempts": e.max_attempts, "priority": e.priority, "errors": [],
            "created_at": ts(e.created_at), "scheduled_at": ts(e.scheduled_at),
            "attempted_at": None, "finalized_at": None, "updated_at": ts(e.created_at),
            "asset_id": e.asset_id, "version": e.originator_version,
        }

    @staticmethod
    def _stamp(row: Row | None, e: Any, **changes: Any) -> Row | None:
        if row is None:
            return None
        row.update(changes)
        row["updated_at"] = ts(e.at)
        row["version"] = e.originator_version
        return row

    @handles("Job.Started")
    def started(self, row: Row | None, e: Any) -> Row | None:
        if row is not None:
            row["metadata"] = {**row["metadata"], "worker": e.worker}
        return self._stamp(row, e, state="running", attempt=(row or {}).get("attempt", 0) + 1,
                           attempted_at=ts(e.at))

    @handles("Job.Completed")
    def completed(self, row: Row | None, e: Any) -> Row | None:
        return self._stamp(row, e, state="completed", finalized_at=ts(e.at))

    @handles("Job.Failed")
    def failed(self, row: Row | None, e: Any) -> Row | None:
        if row is not None:
            row["errors"] = [*row["errors"], {"attempt": row["attempt"], "at": e.at.isoformat(), "error": e.error}]
        return self._stamp(row, e, state="retryable", scheduled_at=ts(e.retry_at))

    @handles("Job.Discarded")
    def discarded(self, row: Row | None, e: Any) -> Row | None:
        if row is not None:
            row["errors"] = [*row["errors"], {"attempt": row["attempt"], "at": e.at.isoformat(), "error": e.error}]
        return self._stamp(row, e, state="discarded", finalized_at=ts(e.at))

    @handles("Job.Cancelled")
    def cancelled(self, row: Row | None, e: Any) -> Row | None:
        return self._stamp(row, e, state="cancelled", finalized_at=ts(e.at))


# -- queries ---------------------------------------------------------------------------------


def job_from_row(row: Row) -> dict[str, Any]:
    out = {c: row[c] for c in JOB_COLUMNS if c not in ("aggregate_id", "updated_at", "asset_id", "version")}
    out["id"] = out.pop("job_id")
    for column in _JSON:
        out[column] = json.loads(row[column]) if isinstance(row[column], str) else row[column]
    return out


def encode_cursor(job_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": job_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The job id a page continues before; ValueError when the cursor is not one of ours."""
    padded = cursor + "=" * (-len(cursor) % 4)
    data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    before = data["before"]
    if not isinstance(before, int) or isinstance(before, bool) or not 1 <= before < 2**63:
        raise ValueError("bad cursor")
    return before


class Jobs:
    """Queries over the jobs read model."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def page(
        self, *, state: str | None, queue: str | None, kind: str | None, since: datetime | None,
        before: int | None, limit: int, include_count: bool,
    ) -> tuple[list[dict[str, Any]], str | None, int | None]:
        """Newest first. Keyset pagination on the job id: ids grow with time (commands.job_ids),
        so jobs inserted while a client walks the pages land before its cursor and never shift a
        page (no repeats, no skips)."""
        where, params = [], []  # type: ignore[var-annotated]
        for column, value in (("state", state), ("queue", queue), ("kind", kind)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("created_at >= ?")
            params.append(ts(since))
        filters = list(where)
        if before is not None:
            where.append("job_id < ?")
            params_page = [*params, before]
        else:
            params_page = list(params)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self.db.reader() as tx:
            rows = tx.fetchall(
                f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs {clause} ORDER BY job_id DESC LIMIT ?",
                (*params_page, limit + 1),
            )
            total = None
            if include_count:
                count_clause = f"WHERE {' AND '.join(filters)}" if filters else ""
                total = int(tx.fetchone(f"SELECT COUNT(*) AS n FROM jobs {count_clause}", params)["n"])
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = encode_cursor(int(rows[-1]["job_id"])) if more and rows else None
        return [job_from_row(r) for r in rows], cursor, total

    def get(self, job_id: int) -> dict[str, Any] | None:
        row = self.db.query_one(f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,))
        return job_from_row(row) if row else None

    def stats(self) -> dict[str, int]:
        rows = self.db.query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        counts = {s: 0 for s in STATES}
        counts.update({r["state"]: int(r["n"]) for r in rows})
        return counts

    def queues(self, limit: int) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT queue, state, COUNT(*) AS n, MAX(updated_at) AS updated_at FROM jobs GROUP BY queue, state"
        )
        queues: dict[str, dict[str, Any]] = {}
        for r in rows:
            q = queues.setdefault(r["queue"], {"name": r["queue"], "metadata": {s: 0 for s in STATES}, "updated_at": r["updated_at"]})
            q["metadata"][r["state"]] = int(r["n"])
            q["updated_at"] = max(q["updated_at"], r["updated_at"])
        return [queues[name] for name in sorted(queues)][:limit]

    def waiting(self, after_job_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Jobs waiting to run (due or not), by job id after `after_job_id`: the relay's recovery
        pages through all of them."""
        return self.db.query(
            "SELECT job_id, queue, scheduled_at, asset_id FROM jobs "
            "WHERE state IN ('available', 'scheduled', 'retryable') AND job_id > ? "
            "ORDER BY job_id LIMIT ?",
            (after_job_id, limit),
        )

    def due_retries(self, now: datetime, limit: int = 1000) -> list[dict[str, Any]]:
        """Jobs waiting for a later time (retries after backoff, scheduled ones) that are due now:
        the Kafka scheduler publishes them."""
        return self.db.query(
            "SELECT job_id, queue, scheduled_at, asset_id FROM jobs "
            "WHERE state IN ('retryable', 'scheduled') AND scheduled_at <= ? ORDER BY scheduled_at LIMIT ?",
            (ts(now), limit),
        )

    def running(self) -> list[dict[str, Any]]:
        """Running jobs with their queue, worker (from `metadata`) and start time."""
        rows = self.db.query("SELECT job_id, queue, metadata, attempted_at FROM jobs WHERE state = 'running'")
        return [{"job_id": int(r["job_id"]), "queue": r["queue"], "attempted_at": r["attempted_at"],
                 "worker": json.loads(r["metadata"]).get("worker")} for r in rows]

    def running_since_before(self, cutoff: datetime) -> list[int]:
        rows = self.db.query(
            "SELECT job_id FROM jobs WHERE state = 'running' AND attempted_at < ?", (ts(cutoff),)
        )
        return [int(r["job_id"]) for r in rows]


def since_for(time_range: str | None, now: datetime | None = None) -> datetime | None:
    if time_range is None:
        return None
    return (now or datetime.now(timezone.utc)) - TIME_RANGES[time_range]
