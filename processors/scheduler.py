"""The scheduler for the Kafka bus: due retries go out again, lost workers' jobs are rescued.

Kafka has no delayed delivery, and a partition must never wait on a message that is not due. So
the relay publishes only new jobs; a failed attempt's retry is published here once the jobs read
model says its backoff is over. A worker that receives a job early refuses the claim and
acknowledges the message, and this publishes it again when it is due.

Rescue, two ways. A job `running` on a worker that is no longer in its queue's consumer group
(the group is settled and lists no client of that worker, for longer than a session) lost its
worker: its attempt is failed at once, so it is retried as soon as its backoff ends instead of
after the job timeout. And as everywhere, any job running past the timeout plus grace is failed
(`processors.worker.rescue_lost_jobs`).

With several `serve` replicas on one database one scheduler leads (`infra.leadership`); the
others stand by.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from infra.background import Background
from infra.bus import JobMessage
from infra.leadership import Leadership
from processors.worker import rescue_lost_jobs

log = logging.getLogger("darkroom.scheduler")
# A due job published this long ago and still waiting is published again (a lost hint).
REPUBLISH_AFTER_SECONDS = 60.0


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class JobScheduler(Background):
    def __init__(self, services: Any, bus: Any, interval: float = 1.0) -> None:
        super().__init__("scheduler")
        self.services = services
        self.bus = bus  # a KafkaBus
        self.interval = interval
        self.timeout = services.settings.max_queue_timeout()
        self.published: dict[int, tuple[str, float]] = {}  # job id -> (scheduled_at, when)
        self.last_error: str | None = None
        self.leadership = Leadership(services.settings, f"scheduler-{bus.config.prefix}")

    def publish_due(self) -> int:
        """Publish every due retry not published for its current due time (or long ago)."""
        now, sent = time.monotonic(), []
        for row in self.services.jobs.due_retries(datetime.now(timezone.utc)):
            job_id = int(row["job_id"])
            seen = self.published.get(job_id)
            if seen and seen[0] == row["scheduled_at"] and now - seen[1] < REPUBLISH_AFTER_SECONDS:
                continue
            self.bus.publish(JobMessage(_epoch(row["scheduled_at"]), job_id, row["queue"], row["asset_id"]))
            sent.append((job_id, row["scheduled_at"]))
        if sent:
            self.bus.flush()
            for job_id, scheduled_at in sent:
                self.published[job_id] = (scheduled_at, now)
        if len(self.published) > 100_000:  # forget old entries; at worst a harmless duplicate
            self.published.clear()
        return len(sent)

    def rescue_departed(self) -> int:
        """Fail the attempts of running jobs whose worker left its queue's consumer group."""
        session = self.bus.config.session_timeout_ms / 1000
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=session)
        running = [r for r in self.services.jobs.running()
                   if r["worker"] and r["attempted_at"] and _epoch(r["attempted_at"]) < cutoff.timestamp()]
        members: dict[str, set[str] | None] = {}
        rescued = 0
        for row in running:
            queue = row["queue"]
            if queue not in members:
                members[queue] = self.bus.group_members(queue)
            clients = members[queue]
            if clients is None or any(c.startswith(row["worker"] + "/") for c in clients):
                continue  # rebalancing (ask again next time), or the worker is still there
            if self.services.app.rescue_job(
                row["job_id"], cutoff, f"worker {row['worker']} left consumer group "
                f"{self.bus.config.group(queue)} while running this job"
            ):
                log.warning("job %s: worker %s left the %s group; its attempt failed, to be retried",
                            row["job_id"], row["worker"], queue)
                rescued += 1
        return rescued

    def tick(self) -> int:
        rescued = self.rescue_departed() + rescue_lost_jobs(self.services, self.timeout)
        if rescued:
            self.services.wake()  # the projections pick the retries up; the next tick sends them
        return rescued + self.publish_due()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.leadership.hold():  # another replica's scheduler leads
                self._pause(self.interval)
                continue
            try:
                self.tick()
                self.last_error = None
            except Exception as exc:  # Kafka or the database away: try again next tick
                if self.last_error is None:
                    log.warning("scheduler: %s: %s; retrying every %g s", type(exc).__name__, exc, self.interval)
                self.last_error = f"{type(exc).__name__}: {exc}"
            self._pause(self.interval)
