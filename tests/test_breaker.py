"""The circuit breaker in front of PostgreSQL's pools (infra/breaker.py): an outage opens it and
callers then fail at once; a pool that is only busy never opens it; a probe after the cool-down
closes it when the server is back."""

from __future__ import annotations

import threading
import time

import pytest
from psycopg_pool import ConnectionPool, PoolTimeout

from infra.breaker import Breaker
from tests.conftest import PG_URL


class FakePool:
    """A pool whose getconn fails the way psycopg_pool's does, counting failed connects."""

    def __init__(self) -> None:
        self.down = False
        self.stats = {"connections_errors": 0, "connections_lost": 0, "pool_size": 1}
        self.calls = 0

    def get_stats(self) -> dict[str, int]:
        return dict(self.stats)

    def getconn(self, timeout: float | None = None) -> str:
        self.calls += 1
        if self.down:
            self.stats["connections_errors"] += 1
            raise PoolTimeout("couldn't get a connection after 2.00 sec")
        return "conn"


def test_an_outage_opens_it_and_later_callers_fail_without_touching_the_pool() -> None:
    pool, breaker = FakePool(), Breaker("test server", cooldown=0.2)
    breaker.guard(pool)
    assert pool.getconn() == "conn" and not breaker.is_open
    pool.down = True
    with pytest.raises(PoolTimeout):
        pool.getconn()
    assert breaker.is_open and breaker.trips == 1
    for _ in range(5):
        with pytest.raises(PoolTimeout, match="failing fast"):
            pool.getconn()
    assert pool.calls == 2  # the five went nowhere near the pool

    time.sleep(0.25)  # cool-down over: one probe goes through, still down, so it stays open
    with pytest.raises(PoolTimeout, match="couldn't get"):
        pool.getconn()
    assert pool.calls == 3 and breaker.is_open
    with pytest.raises(PoolTimeout, match="failing fast"):
        pool.getconn()

    pool.down = False
    time.sleep(0.25)
    assert pool.getconn() == "conn"  # the probe reached it: closed for everyone
    assert not breaker.is_open and pool.getconn() == "conn" and breaker.trips == 1


def test_one_probe_at_a_time() -> None:
    pool, breaker = FakePool(), Breaker("test server", cooldown=0.0)
    release = threading.Event()
    entered = threading.Event()
    slow = pool.getconn

    def blocking_getconn(timeout: float | None = None) -> str:
        entered.set()
        release.wait(5)
        return slow(timeout)

    pool.getconn = blocking_getconn
    breaker.guard(pool)
    breaker._failed(outage=True, probe=False)
    results: list[str] = []
    probe = threading.Thread(target=lambda: results.append(pool.getconn()))
    probe.start()
    assert entered.wait(5)
    with pytest.raises(PoolTimeout, match="failing fast"):  # the probe is out: others still fail fast
        pool.getconn()
    release.set()
    probe.join(5)
    assert results == ["conn"] and not breaker.is_open


def test_a_timeout_without_failed_connections_is_load_not_an_outage() -> None:
    pool, breaker = FakePool(), Breaker("test server")

    def busy(timeout: float | None = None) -> str:
        raise PoolTimeout("couldn't get a connection after 2.00 sec")

    pool.getconn = busy
    breaker.guard(pool)
    for _ in range(3):
        with pytest.raises(PoolTimeout, match="couldn't get"):
            pool.getconn()
    assert not breaker.is_open and breaker.trips == 0


def test_a_real_pool_lent_out_does_not_open_it(backend) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL's pools")
    pool = ConnectionPool(PG_URL, min_size=1, max_size=1, timeout=0.3, open=True)
    breaker = Breaker("test server")
    breaker.guard(pool)
    try:
        with pool.connection() as held:
            held.execute("SELECT 1")
            with pytest.raises(PoolTimeout):
                pool.getconn()  # the one connection is lent out: busy, the server is fine
        assert not breaker.is_open
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pool.close()
