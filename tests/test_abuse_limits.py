"""Abuse limits: failed logins, registrations and refreshes are rate limited (429 with
Retry-After, reset after their window), the KDF runs in a bounded pool of its own, and a failed
login costs the same whether or not the user exists."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import pytest

from api.app import create_app
from infra.bootstrap import bootstrap
from tests.conftest import make_settings
from tests.helpers import API, register

PASSWORD = "correct horse battery"


@pytest.fixture
def make_client(tmp_path, backend, pg_schema, aiohttp_client):
    made = []

    async def make(**extra: Any) -> Any:
        kdf = {k: extra.pop(k) for k in ("password_memory_kib", "password_time_cost") if k in extra}
        settings = make_settings(tmp_path, backend, pg_schema, **extra)
        for key, value in kdf.items():  # make_settings sets a cheap KDF; these tests need a real one
            setattr(settings, key, value)
        services = bootstrap(settings)
        made.append(services)
        return await aiohttp_client(create_app(services)), services

    yield make
    for services in made:
        services.close()


async def login(client: Any, username: str, password: str, **headers: str) -> Any:
    return await client.post(f"{API}/auth/login", json={"username": username, "password": password},
                             headers=headers)


async def test_failed_logins_per_username_are_limited_and_the_limit_resets(make_client):
    client, _ = await make_client(rate_limit_login_user="3/second", rate_limit_delay_seconds=0)
    await register(client, "alice")
    for _ in range(3):
        assert (await login(client, "alice", "wrong password")).status == 401
    refused = await login(client, "alice", PASSWORD)  # even the right password: no check at all
    assert refused.status == 429
    body = await refused.json()
    assert body["code"] == 429 and 1 <= int(refused.headers["Retry-After"]) <= 2
    assert (await login(client, "ALICE", PASSWORD)).status == 429  # names count in any case
    await asyncio.sleep(1.2)
    assert (await login(client, "alice", PASSWORD)).status == 200


async def test_successful_logins_are_not_counted(make_client):
    client, _ = await make_client(rate_limit_login_user="2/minute", rate_limit_login_address="2/minute")
    await register(client, "alice")
    for _ in range(6):
        assert (await login(client, "alice", PASSWORD)).status == 200


async def test_failed_logins_per_address_across_usernames(make_client):
    client, _ = await make_client(rate_limit_login_address="4/minute")
    for n in range(4):
        assert (await login(client, f"nobody{n}", "wrong password")).status == 401
    assert (await login(client, "someone-else", "wrong password")).status == 429
    # X-Forwarded-For from an untrusted peer changes nothing.
    assert (await login(client, "x", "wrong password", **{"X-Forwarded-For": "203.0.113.9"})).status == 429


async def test_forwarded_address_counts_behind_a_trusted_proxy(make_client):
    client, services = await make_client(rate_limit_login_address="2/minute",
                                         trusted_proxies="127.0.0.0/8,::1")
    for _ in range(2):
        resp = await login(client, "x", "wrong password", **{"X-Forwarded-For": "203.0.113.9"})
        assert resp.status == 401
    assert (await login(client, "x", "bad", **{"X-Forwarded-For": "203.0.113.9"})).status == 429
    # Another client behind the same proxy has its own count.
    assert (await login(client, "x", "bad", **{"X-Forwarded-For": "203.0.113.10"})).status == 401
    limits = services.rate_limits
    assert limits.client_address("127.0.0.1", "198.51.100.1, 203.0.113.5") == "203.0.113.5"
    assert limits.client_address("198.51.100.7", "203.0.113.5") == "198.51.100.7"


async def test_registrations_and_refreshes_per_address(make_client):
    client, _ = await make_client(rate_limit_register_address="2/minute", rate_limit_refresh_address="3/minute")
    alice = await register(client, "alice")
    await register(client, "bob")
    resp = await client.post(f"{API}/auth/register", json={"username": "carol", "email": "c@example.org",
                                                           "password": PASSWORD})
    assert resp.status == 429 and "Retry-After" in resp.headers
    token = alice.refresh_token
    for _ in range(3):
        resp = await client.post(f"{API}/auth/refresh", json={"refreshToken": token})
        assert resp.status == 200
        token = (await resp.json())["data"]["refreshToken"]
    resp = await client.post(f"{API}/auth/refresh", json={"refreshToken": token})
    assert resp.status == 429


async def test_password_changes_per_user(make_client):
    client, _ = await make_client(rate_limit_password_user="2/minute")
    alice = await register(client, "alice")
    for _ in range(2):
        await alice.call("PUT", "/auth/password", {"current_password": "wrong one", "new_password": "whatever1"},
                         expect=401)
    await alice.call("PUT", "/auth/password", {"current_password": PASSWORD, "new_password": "whatever1"},
                     expect=429)


async def test_kdf_pool_is_bounded_and_does_not_hold_up_the_api(make_client):
    # One KDF thread, no queue, a KDF slow enough to overlap: concurrent logins past the bound
    # answer 429 at once, and the rest of the API answers meanwhile.
    client, _ = await make_client(password_workers=1, password_queue=0, password_memory_kib=8192,
                                  password_time_cost=6, rate_limit_login_address="1000/minute",
                                  rate_limit_login_user="1000/minute")
    await register(client, "alice")

    async def health_time() -> float:
        start = time.perf_counter()
        resp = await client.get(f"{API}/health")
        assert resp.status in (200, 503)
        return time.perf_counter() - start

    logins = [asyncio.create_task(login(client, "alice", "wrong password")) for _ in range(12)]
    await asyncio.sleep(0.01)
    health = [await health_time() for _ in range(3)]
    statuses = sorted([r.status for r in await asyncio.gather(*logins)])
    assert 401 in statuses and 429 in statuses and set(statuses) <= {401, 429}, statuses
    assert max(health) < 1.0, health


async def test_a_failed_login_costs_the_same_whether_or_not_the_user_exists(make_client):
    client, _ = await make_client(password_memory_kib=16384, password_time_cost=2,
                                  rate_limit_login_address="1000/minute", rate_limit_login_user="1000/minute")
    await register(client, "alice")
    await login(client, "nobody", "warm the dummy hash")

    async def timed(name: str) -> float:
        start = time.perf_counter()
        assert (await login(client, name, "wrong password")).status == 401
        return time.perf_counter() - start

    known = statistics.median([await timed("alice") for _ in range(7)])
    unknown = statistics.median([await timed("nobody") for _ in range(7)])
    assert 0.6 < unknown / known < 1.6, (known, unknown)


async def test_a_refused_request_is_answered_late_to_slow_a_flood(make_client):
    client, _ = await make_client(rate_limit_login_address="1/minute", rate_limit_delay_seconds=0.5)
    assert (await login(client, "x", "wrong password")).status == 401
    start = time.perf_counter()
    assert (await login(client, "x", "wrong password")).status == 429
    assert time.perf_counter() - start >= 0.45
    health = time.perf_counter()
    await client.get(f"{API}/health")  # the tarpit sleeps; it holds nobody else up
    assert time.perf_counter() - health < 0.4
