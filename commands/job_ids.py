"""Job ids without a shared sequence: time-ordered 53-bit integers, allocated without a write.

Job ids used to come from one `Sequence("jobs")` aggregate, appended by every upload and every
reprocess: a global hot spot where concurrent uploads collided on its version and retried (409
when they ran out of retries). Now an id is the milliseconds since 2024-01-01 (41 bits, enough
until 2093) shifted past 12 random bits, so ids still grow with time (newest-first listings and
their cursors keep their order) and stay below 2**53 (exact in JavaScript clients). Within one
process ids are strictly increasing; two processes allocating the same id in the same
millisecond (1 in 4096 per pair) collide on the Job aggregate's creation (its id is derived
from the job id), and the command retries with fresh ids, as for any conflict: no id is ever
given to two jobs.
"""

from __future__ import annotations

import random
import threading
import time

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
RANDOM_BITS = 12
MAX_JOB_ID = 2**53 - 1


class JobIds:
    """Allocates job ids; thread-safe, one per process."""

    def __init__(self, clock: callable = time.time) -> None:  # type: ignore[valid-type]
        self._clock = clock
        self._lock = threading.Lock()
        self._last = 0
        self._random = random.SystemRandom()

    def next_ids(self, count: int) -> list[int]:
        """`count` new ids, increasing."""
        with self._lock:
            ms = int(self._clock() * 1000) - EPOCH_MS
            candidate = (ms << RANDOM_BITS) | self._random.getrandbits(RANDOM_BITS)
            first = max(candidate, self._last + 1)
            ids = list(range(first, first + count))
            if ids and ids[-1] > MAX_JOB_ID:
                raise OverflowError("job ids are exhausted (the clock is past 2093?)")
            self._last = ids[-1] if ids else self._last
            return ids
