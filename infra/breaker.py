"""A circuit breaker in front of PostgreSQL's connection pools.

Without it, every caller that needs a connection during an outage waits out the pool's timeout on
its own (2 s each, one after another on a small thread pool): a request that arrives behind the
projection daemon, the sweepers and a few other requests answered its 503 only after 20 s. With it,
the first caller that finds the server unreachable opens the breaker and every caller after it fails
at once; after a short cool-down one caller (a request or a background round) probes with the
pool's normal wait, and its success closes the breaker for everyone.

Only evidence of an outage opens it: a pool timeout while the pool's own attempts to connect failed
or its connections were found broken. A pool that is merely busy (all connections lent out) times
out without opening it, so a burst of load never turns into a second of 503s for everyone.

All of the server's pools (event store, read models, keys) share one breaker per database server,
since they fail together.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from psycopg_pool import PoolTimeout

log = logging.getLogger("darkroom.breaker")

COOLDOWN_SECONDS = 1.0


class Breaker:
    """Closed (callers go to the pool), open (callers fail at once) or probing (one caller goes to
    the pool to see whether the server is back; the others still fail at once)."""

    def __init__(self, name: str, cooldown: float = COOLDOWN_SECONDS) -> None:
        self.name = name
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self._opened_at: float | None = None  # when it opened, or when its last probe failed
        self._down_since = 0.0
        self._probing = False
        self.trips = 0  # how many times it opened

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def _admit(self) -> bool:
        """Whether this caller may go to the pool; True for the one probe of a half-open breaker
        (the caller must then report success or failure)."""
        with self._lock:
            if self._opened_at is None:
                return False
            waited = time.monotonic() - self._opened_at
            if waited >= self.cooldown and not self._probing:
                self._probing = True
                return True
            raise PoolTimeout(
                f"{self.name} was unreachable {waited:.1f} s ago; failing fast until a probe reaches it "
                "(check the database server and the network to it)"
            )

    def _succeeded(self) -> None:
        if self._opened_at is None and not self._probing:
            return  # the common case, without the lock
        with self._lock:
            if self._opened_at is not None:
                log.warning("%s reachable again after %.1f s: breaker closed",
                            self.name, time.monotonic() - self._down_since)
            self._opened_at = None
            self._probing = False

    def _failed(self, outage: bool, probe: bool) -> None:
        with self._lock:
            if probe:
                self._probing = False
                self._opened_at = time.monotonic()  # still down: the next probe after another cool-down
            elif outage and self._opened_at is None:
                self._opened_at = self._down_since = time.monotonic()
                self.trips += 1
                log.warning("%s unreachable: breaker open, callers fail fast (probe every %.1f s)",
                            self.name, self.cooldown)

    def guard(self, pool: Any) -> None:
        """Route `pool.getconn` (which `pool.connection()` uses) through this breaker."""
        getconn = pool.getconn
        # Failed connects and broken connections counted by the pool when we last looked: read
        # on a timeout only, so the common path costs no stats call.
        seen = [_failures(pool.get_stats())]

        def guarded_getconn(timeout: float | None = None) -> Any:
            probe = self._admit()
            try:
                conn = getconn(timeout)
            except PoolTimeout:
                # Connection attempts failed, or pooled connections were found broken, since the
                # last look (or the pool has nothing in it: it is still failing to refill).
                stats = pool.get_stats()
                failures = _failures(stats)
                outage = failures > seen[0] or stats.get("pool_size", 1) == 0
                seen[0] = failures
                self._failed(outage, probe)
                raise
            except BaseException:
                if probe:
                    self._failed(False, True)
                raise
            self._succeeded()
            return conn

        pool.getconn = guarded_getconn


def _failures(stats: dict[str, int]) -> int:
    return stats.get("connections_errors", 0) + stats.get("connections_lost", 0)


_BREAKERS: dict[str, Breaker] = {}
_REGISTRY_LOCK = threading.Lock()


def breaker_for(server: str) -> Breaker:
    """The one breaker of a database server (`host:port/dbname`), shared by all its pools."""
    with _REGISTRY_LOCK:
        breaker = _BREAKERS.get(server)
        if breaker is None:
            breaker = _BREAKERS[server] = Breaker(f"PostgreSQL at {server}")
        return breaker
