"""The bus that carries "this job is due" messages from the relay to the workers.

`InProcessBus` is the embedded default: per-queue priority queues in memory, with delayed
delivery for retries. Delivery is at least once and messages are only hints: the worker claims
the job through a command, so a duplicate or a stale message is harmless, and the relay
republishes every waiting job from the jobs read model when it starts.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, order=True)
class JobMessage:
    not_before: float  # epoch seconds: do not start the job earlier
    job_id: int
    queue: str = field(compare=False)
    key: str = field(compare=False, default="")  # the asset id: order is kept per key on Kafka


class Bus(Protocol):
    def publish(self, message: JobMessage) -> None: ...

    def consume(self, queues: list[str], timeout: float) -> JobMessage | None: ...

    def close(self) -> None: ...


class InProcessBus:
    def __init__(self) -> None:
        self._queues: dict[str, list[tuple[float, int, JobMessage]]] = {}
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False

    def publish(self, message: JobMessage) -> None:
        with self._cond:
            heapq.heappush(self._queues.setdefault(message.queue, []),
                           (message.not_before, next(self._seq), message))
            self._cond.notify_all()

    def consume(self, queues: list[str], timeout: float) -> JobMessage | None:
        """The earliest due message of these queues, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = time.time()
                best: tuple[float, int, JobMessage] | None = None
                for name in queues:
                    heap = self._queues.get(name)
                    if heap and (best is None or heap[0] < best):
                        best = heap[0]
                if best is not None and best[0] <= now:
                    heapq.heappop(self._queues[best[2].queue])
                    return best[2]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                wait = remaining if best is None else min(remaining, max(0.0, best[0] - now))
                self._cond.wait(wait)
            return None

    def pending(self) -> int:
        with self._cond:
            return sum(len(h) for h in self._queues.values())

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
