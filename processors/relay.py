"""The relay (outbox): follows the notification log and publishes due-job messages to the bus.

A `Job.Enqueued` becomes a message due at its `scheduled_at`; a `Job.Failed` (retryable) one due
at its `retry_at`. On start it republishes every job still waiting according to the jobs read
model, so messages lost with a process (the in-process bus lives in memory) come back.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from infra.bus import Bus, JobMessage
from projections.jobs import Jobs
from projections.runner import head_position

log = logging.getLogger("darkroom.relay")


def _epoch(value: datetime | str) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.timestamp()


class JobRelay:
    def __init__(self, app: Any, jobs: Jobs, bus: Bus, batch_size: int = 500) -> None:
        self.app = app
        self.jobs = jobs
        self.bus = bus
        self.batch_size = batch_size
        self.position = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def recover(self) -> int:
        """Start at the log head and republish every waiting job of the read model."""
        self.position = head_position(self.app)
        count, after = 0, 0
        while rows := self.jobs.waiting(after):
            for row in rows:
                self.bus.publish(JobMessage(_epoch(row["scheduled_at"]), int(row["job_id"]),
                                            row["queue"], row["asset_id"]))
                after = int(row["job_id"])
                count += 1
        return count

    def relay_batch(self) -> int:
        notifications = self.app.recorder.select_notifications(
            self.position, self.batch_size, inclusive_of_start=False
        )
        for n in notifications:
            if n.topic.endswith(":Job.Enqueued"):
                e = self.app.mapper.to_domain_event(n)
                self.bus.publish(JobMessage(_epoch(e.scheduled_at), e.job_id, e.queue, e.asset_id))
            elif n.topic.endswith(":Job.Failed"):
                e = self.app.mapper.to_domain_event(n)
                job = self.app.repository.get(e.originator_id)
                self.bus.publish(JobMessage(_epoch(e.retry_at), job.job_id, job.queue, job.asset_id))
            self.position = n.id
        return len(notifications)

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                while self.relay_batch() == self.batch_size:
                    pass
            except Exception:
                log.exception("relay failed; retrying")
            self._wake.wait(0.2)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
