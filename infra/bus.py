"""The bus that carries "this job is due" messages from the relay to the workers.

`InProcessBus` is the embedded default: per-queue priority queues in memory, with delayed
delivery for retries. `infra.kafka_bus.KafkaBus` is the distributed one. Both deliver at least
once, and messages are only hints: the worker claims the job through a command, so a duplicate
or a stale message is harmless.

A consumer `ack`s a message once the job's outcome is durably appended (Kafka commits the offset
then), or `retry_later` when it could not even claim the job (the database was down): the
message comes back after the delay.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from infra.settings import Settings, SettingsError


@dataclass(frozen=True, order=True)
class JobMessage:
    not_before: float  # epoch seconds: do not start the job earlier
    job_id: int
    queue: str = field(compare=False)
    key: str = field(compare=False, default="")  # the asset id: order is kept per key on Kafka
    # Where the bus got it from (Kafka: consumer, partition, offset), for `ack`; None when sent.
    receipt: Any = field(compare=False, default=None, repr=False)


class Bus(Protocol):
    def publish(self, message: JobMessage) -> None: ...

    def flush(self) -> None:
        """Block until every published message is stored; raise if one could not be."""

    def consume(self, queues: list[str], timeout: float) -> JobMessage | None: ...

    def ack(self, message: JobMessage) -> None:
        """The message's job has its outcome recorded: never deliver it again to this group."""

    def retry_later(self, message: JobMessage, delay: float) -> None:
        """The message could not be handled now: deliver it again after `delay` seconds."""

    def close(self) -> None: ...


class InProcessBus:
    """Memory queues. `priority_of(queue)` ranks queues (1 first): of the messages due now, the
    most urgent queue's goes first, so required work overtakes optional (ML) work."""

    def __init__(self, priority_of: Any = None) -> None:
        self.priority_of = priority_of or (lambda queue: 1)
        self._queues: dict[str, list[tuple[float, int, JobMessage]]] = {}
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False

    def publish(self, message: JobMessage) -> None:
        with self._cond:
            heapq.heappush(self._queues.setdefault(message.queue, []),
                           (message.not_before, next(self._seq), message))
            self._cond.notify_all()

    def flush(self) -> None:
        """Publishing to memory is already done."""

    def consume(self, queues: list[str], timeout: float) -> JobMessage | None:
        """The earliest due message of these queues, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = time.time()
                best: tuple[float, int, JobMessage] | None = None
                due: tuple[int, float, int, JobMessage] | None = None
                for name in queues:
                    heap = self._queues.get(name)
                    if heap and (best is None or heap[0] < best):
                        best = heap[0]
                    if heap and heap[0][0] <= now:
                        ranked = (self.priority_of(name), *heap[0])
                        if due is None or ranked[:3] < due[:3]:
                            due = ranked
                if due is not None:
                    heapq.heappop(self._queues[due[3].queue])
                    return due[3]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                wait = remaining if best is None else min(remaining, max(0.0, best[0] - now))
                self._cond.wait(wait)
            return None

    def ack(self, message: JobMessage) -> None:
        """A consumed message is already gone from memory."""

    def retry_later(self, message: JobMessage, delay: float) -> None:
        self.publish(replace(message, not_before=time.time() + delay))

    def pending(self) -> int:
        with self._cond:
            return sum(len(h) for h in self._queues.values())

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def check_bus_url(url: str) -> None:
    """Refuse a DARKROOM_BUS value we cannot use, naming what would work."""
    if url == "inprocess":
        return
    if url.startswith("kafka://"):
        from infra.kafka_bus import KafkaConfig

        KafkaConfig.from_url(url, "darkroom")  # raises SettingsError naming the problem
        return
    raise SettingsError(
        f"DARKROOM_BUS is {url!r}; use 'inprocess' (embedded) or "
        "'kafka://host:port[,host:port][?session_timeout_ms=N&partitions=N]'"
    )


def open_bus(settings: Settings, client_id: str = "darkroom") -> Bus:
    """The bus the settings name: in-process, or Kafka (`kafka://host:port`)."""
    check_bus_url(settings.bus)
    if settings.bus == "inprocess":
        return InProcessBus()
    from infra.kafka_bus import KafkaBus, KafkaConfig

    config = KafkaConfig.from_url(settings.bus, settings.kafka_prefix)
    return KafkaBus(config, client_id=client_id,
                    max_poll_interval_ms=int((settings.max_queue_timeout() + 60) * 1000))
