"""The relays (outbox): follow the notification log and publish what it says to the bus.

`JobRelay` feeds the in-process bus: a `Job.Enqueued` becomes a message due at its
`scheduled_at`; a `Job.Failed` (retryable) one due at its `retry_at`. On start it republishes
every job still waiting according to the jobs read model, so messages lost with the process (the
in-process bus lives in memory) come back.

`OutboxRelay` feeds Kafka: every event to `<prefix>.events` (keyed by aggregate id) and every
`Job.Enqueued` to its queue's topic (keyed by asset id), in log order, so order per key holds.
Its position is a row in the read-model database, written only after Kafka acknowledged the
whole batch: a crash or restart publishes the unacknowledged tail again (at least once; readers
deduplicate by `position`). Kafka being down stalls only this loop, which retries with backoff;
commands never wait for it. Retries of failed jobs go out through the scheduler when due.
With several `serve` replicas on one database, one relay leads (`infra.leadership`) and the
others stand by, taking over from the stored position when the leader goes away.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from infra.background import Background
from infra.bus import Bus, JobMessage
from infra.database import Database
from infra.event_stream import event_record
from infra.leadership import Leadership
from projections.jobs import Jobs
from projections.runner import head_position

log = logging.getLogger("darkroom.relay")


def _epoch(value: datetime | str) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.timestamp()


class JobRelay(Background):
    def __init__(self, app: Any, jobs: Jobs, bus: Bus, batch_size: int = 500) -> None:
        super().__init__("relay", join_timeout=10)
        self.app = app
        self.jobs = jobs
        self.bus = bus
        self.batch_size = batch_size
        self.position = 0

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
        super().start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                while self.relay_batch() == self.batch_size:
                    pass
            except Exception:
                log.exception("relay failed; retrying")
            self._pause(0.2)


RELAY_POSITIONS = "relay_positions"
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
STANDBY_POLL_SECONDS = 1.0  # how often a standby relay asks for the leadership


# Below the broker's default max.message.bytes (1 MiB): a bigger record would stall the relay.
MAX_EVENT_BYTES = 900_000


def event_value(position: int, topic: str, event: Any) -> bytes:
    """The `<prefix>.events` record: the export's shape plus the stored topic. An event too big
    for Kafka goes out without its payload (`payload_omitted`); the export still has it."""
    record = event_record(position, event)
    record["topic"] = topic
    value = json.dumps(record, separators=(",", ":"), default=str).encode()
    if len(value) > MAX_EVENT_BYTES:
        record["payload"] = {}
        record["payload_omitted"] = len(value)
        value = json.dumps(record, separators=(",", ":"), default=str).encode()
    return value


class OutboxRelay(Background):
    """Publishes the log to Kafka from a tracked position (see the module docstring)."""

    def __init__(self, app: Any, db: Database, bus: Any, batch_size: int = 500) -> None:
        super().__init__("outbox-relay")
        self.app = app
        self.db = db
        self.bus = bus  # a KafkaBus
        self.batch_size = batch_size
        self.name = f"kafka:{bus.config.prefix}"
        self.published = 0  # records acknowledged by Kafka since start (events and jobs)
        self.last_error: str | None = None
        self.role = "starting"  # then "leader", or "standby" while another replica's relay leads
        self.leadership = Leadership(db.settings, f"outbox-relay-{bus.config.prefix}")
        self.ensure_table()
        self.position = self.stored_position()

    def ensure_table(self) -> None:
        with self.db.transaction() as tx:
            if not self.db.table_exists(tx, RELAY_POSITIONS):
                tx.execute(f"CREATE TABLE {RELAY_POSITIONS} (name TEXT PRIMARY KEY, position BIGINT NOT NULL)")
            if tx.fetchone(f"SELECT 1 AS x FROM {RELAY_POSITIONS} WHERE name = ?", (self.name,)) is None:
                tx.execute(f"INSERT INTO {RELAY_POSITIONS} (name, position) VALUES (?, 0)", (self.name,))

    def stored_position(self) -> int:
        row = self.db.query_one(f"SELECT position FROM {RELAY_POSITIONS} WHERE name = ?", (self.name,))
        return int(row["position"]) if row else 0

    def relay_batch(self) -> int:
        """Publish the next batch and advance the stored position; raises while Kafka is down."""
        notifications = self.app.recorder.select_notifications(
            self.position, self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            return 0
        bus, config = self.bus, self.bus.config
        futures = []
        for n in notifications:
            # Personal fields stay sealed on the topic: erasing the key erases them there too.
            sealed = getattr(self.app.mapper, "to_sealed_event", self.app.mapper.to_domain_event)
            event = sealed(n)
            futures.append(bus.send(config.events_topic, str(n.originator_id), event_value(n.id, n.topic, event)))
            if n.topic.endswith(":Job.Enqueued"):
                futures.append(bus.send_job(
                    JobMessage(_epoch(event.scheduled_at), event.job_id, event.queue, event.asset_id)))
        bus.wait(futures)
        last = notifications[-1].id
        with self.db.transaction() as tx:  # never backwards: another relay may have gone further
            tx.execute(f"UPDATE {RELAY_POSITIONS} SET position = ? WHERE name = ? AND position < ?",
                       (last, self.name, last))
        self.position = last
        self.published += len(futures)
        return len(notifications)

    def catch_up(self) -> int:
        total = 0
        while (count := self.relay_batch()) > 0:
            total += count
            if count < self.batch_size:
                break
        return total

    def _lead(self) -> bool:
        """Hold the leadership (see the module docstring); a standby follows the stored position."""
        if not self.leadership.hold():
            if self.role != "standby":
                log.info("relay: another replica's relay leads; standing by")
            # The leader's health speaks for Kafka; a relay that cannot even reach the lock says so
            # (were every replica in that state, nothing would be published).
            error = self.leadership.error
            self.role, self.last_error = "standby", (f"cannot take the relay leadership: {error}" if error else None)
            try:
                self.position = self.stored_position()
            except Exception:  # the database is away: the leader will say so
                pass
            return False
        if self.role != "leader":
            self.position = self.stored_position()  # where the previous leader got to
            self.role = "leader"
        return True

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            if not self._lead():
                self._stop.wait(STANDBY_POLL_SECONDS)
                continue
            try:
                self.bus.ensure_topics([], events=True)
                self.catch_up()
                if self.last_error is not None:
                    log.info("relay: Kafka is back; published up to position %s", self.position)
                self.last_error, backoff = None, 0.0
            except Exception as exc:
                backoff = min(BACKOFF_MAX_SECONDS, max(BACKOFF_FIRST_SECONDS, backoff * 2))
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("relay: stalled after position %s publishing to Kafka at %s (%s); retrying in %.1f s",
                            self.position, ",".join(self.bus.bootstrap), self.last_error, backoff)
                self.bus.reset_producer()
                self._stop.wait(backoff)
                continue
            self._pause(0.2)
