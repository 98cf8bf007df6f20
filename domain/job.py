"""The `Job` aggregate: one processing task of one asset, with a strict state machine."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict
from domain.ids import NAMESPACE

STATES = ("available", "scheduled", "running", "retryable", "completed", "cancelled", "discarded")
FINAL_STATES = frozenset({"completed", "cancelled", "discarded"})

# The only legal moves. Anything else is a bug or a stale message, and is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    "available": frozenset({"running", "cancelled"}),
    "scheduled": frozenset({"available", "running", "cancelled"}),
    "retryable": frozenset({"running", "cancelled", "discarded"}),
    "running": frozenset({"completed", "retryable", "discarded", "cancelled"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
    "discarded": frozenset(),
}


class IllegalTransition(Conflict):
    """A job was asked to move along an edge its state machine does not have."""


def job_id_to_uuid(job_id: int) -> UUID:
    return uuid5(NAMESPACE, f"job:{job_id}")


class Job(Aggregate):
    """A unit of work on the bus: which task (`kind`, also its queue) for which asset."""

    @staticmethod
    def create_id(job_id: int) -> UUID:
        return job_id_to_uuid(job_id)

    class Enqueued(Aggregate.Created):
        """A job was created for one task (`kind`, on queue `queue`) of an asset.

        Version 2 no longer stores `args`: in version 1 it was always `{"asset_id": asset_id}`,
        repeated in every job of every upload; the job's arguments are derived from the asset.
        Version 3 stores `args` again only for jobs that need more than their asset (a library
        scan: which folders); null otherwise.
        """

        class_version = 3

        job_id: int
        kind: str
        queue: str
        asset_id: str
        owner_id: int
        max_attempts: int
        priority: int
        created_at: datetime
        scheduled_at: datetime
        args: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 carried `args`, a copy of `asset_id`: dropped."""
            state.pop("args", None)

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            """Version 2 jobs needed nothing but their asset."""
            state["args"] = None

    @event(Enqueued)
    def __init__(
        self,
        job_id: int,
        kind: str,
        queue: str,
        asset_id: str,
        owner_id: int,
        max_attempts: int,
        priority: int,
        created_at: datetime,
        scheduled_at: datetime,
        args: dict[str, Any] | None = None,
    ) -> None:
        self.job_id = job_id
        self.task_args = args
        self.kind = kind
        self.queue = queue
        self.asset_id = asset_id
        self.owner_id = owner_id
        self.max_attempts = max_attempts
        self.priority = priority
        self.created_at = created_at
        self.scheduled_at = scheduled_at
        self.state = "available" if scheduled_at <= created_at else "scheduled"
        self.attempt = 0
        self.attempted_at: datetime | None = None
        self.finalized_at: datetime | None = None
        self.worker: str | None = None
        self.errors: list[dict[str, Any]] = []

    @property
    def args(self) -> dict[str, Any]:
        """What the job is given: the asset it works on, or what was stored for it (a scan)."""
        return self.task_args if self.task_args is not None else {"asset_id": self.asset_id}

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    def check_transition(self, to: str) -> None:
        if to not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"job {self.job_id} cannot go from {self.state} to {to}")

    def is_due(self, now: datetime) -> bool:
        return self.state in ("available", "scheduled", "retryable") and self.scheduled_at <= now

    # -- transitions ---------------------------------------------------------------------------

    def start(self, worker: str, at: datetime) -> None:
        self.check_transition("running")
        self._start(worker=worker, at=at)

    @event("Started")
    def _start(self, worker: str, at: datetime) -> None:
        """A worker took the job; this is attempt number `attempt`."""
        self.state = "running"
        self.attempt += 1
        self.attempted_at = at
        self.worker = worker

    def complete(self, at: datetime) -> None:
        self.check_transition("completed")
        self._complete(at=at)

    @event("Completed")
    def _complete(self, at: datetime) -> None:
        """The attempt succeeded; its result is recorded on the asset in the same save."""
        self.state = "completed"
        self.finalized_at = at

    def fail(self, at: datetime, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt: retryable until `max_attempts`, then discarded."""
        if self.attempt < self.max_attempts and retry_at is not None:
            self.check_transition("retryable")
            self._fail_retryable(at=at, error=error, retry_at=retry_at)
        else:
            self.check_transition("discarded")
            self._discard(at=at, error=error)

    @event("Failed")
    def _fail_retryable(self, at: datetime, error: str, retry_at: datetime) -> None:
        """The attempt failed; the job runs again at `retry_at` (exponential backoff, jitter)."""
        self.errors.append({"attempt": self.attempt, "at": at.isoformat(), "error": error})
        self.state = "retryable"
        self.scheduled_at = retry_at
        self.worker = None

    @event("Discarded")
    def _discard(self, at: datetime, error: str) -> None:
        """The last attempt failed: the job is final, its errors kept."""
        self.errors.append({"attempt": self.attempt, "at": at.isoformat(), "error": error})
        self.state = "discarded"
        self.finalized_at = at
        self.worker = None

    def cancel(self, at: datetime) -> None:
        self.check_transition("cancelled")
        self._cancel(at=at)

    @event("Cancelled")
    def _cancel(self, at: datetime) -> None:
        """Nobody needs this job any more (superseded by a reprocess)."""
        self.state = "cancelled"
        self.finalized_at = at
        self.worker = None
