"""Abuse bench: how much a login flood slows the rest of the API.

    python bench/abuse.py [--clients 64] [--seconds 8] [--postgres]

Starts a real `darkroom serve` on loopback with the production KDF (argon2id, 64 MiB, 3 passes),
registers a user with a few photos, then measures `GET /health` and `GET /assets` latency (p50,
p99) from one probing client, first idle, then while `--clients` clients post wrong passwords to
`/auth/login` as fast as they are answered. Printed: each p99 under flood as a ratio to the same
figure idle, measured in the same run (aim <= 2x). Two servers are measured:
  1. as deployed (default rate limits: the flood soon gets 429s and costs little);
  2. with the rate limits lifted, so every flood request reaches the KDF: this isolates the
     bounded password pool (extra requests answer 429 "busy" instead of queueing).
`--postgres` runs on DARKROOM_DATABASE_URL (a schema of its own, dropped after), else SQLite.
Bounded: each phase lasts `--seconds`; the whole run takes about a minute per server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402

from tests.live_server import LiveServer  # noqa: E402

API = "/api/v1"
MEDIA = Path(__file__).resolve().parents[1] / "tests" / "media"
PRODUCTION_KDF = {"DARKROOM_PASSWORD_MEMORY_KIB": "65536", "DARKROOM_PASSWORD_TIME_COST": "3"}
NO_LIMITS = {f"DARKROOM_RATE_LIMIT_{name}": "1000000/second" for name in
             ("LOGIN_USER", "LOGIN_ADDRESS", "REGISTER_ADDRESS", "REFRESH_ADDRESS", "PASSWORD_USER")}


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def probe(session: aiohttp.ClientSession, base: str, token: str, until: float) -> dict[str, list[float]]:
    """One client alternating the two reads, 20 ms apart, until `until`."""
    times: dict[str, list[float]] = {"health": [], "assets": []}
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < until:
        for name, path in (("health", "/health"), ("assets", "/assets?type=PHOTO&limit=20")):
            start = time.perf_counter()
            async with session.get(base + API + path, headers=headers) as resp:
                await resp.read()
                assert resp.status == 200, (path, resp.status)
            times[name].append(time.perf_counter() - start)
        await asyncio.sleep(0.02)
    return times


async def flood(session: aiohttp.ClientSession, base: str, until: float, statuses: Counter) -> None:
    body = {"username": "alice", "password": "wrong password"}
    while time.monotonic() < until:
        async with session.post(base + API + "/auth/login", json=body) as resp:
            await resp.read()
            statuses[resp.status] += 1


async def measure(base: str, clients: int, seconds: float) -> dict[str, object]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(base + API + "/auth/register", json={
                "username": "alice", "email": "alice@example.org", "password": "correct horse battery"}) as r:
            token = (await r.json())["data"]["token"]
        for path in sorted((MEDIA / "photo").glob("*.jpg"))[:8]:
            form = aiohttp.FormData()
            form.add_field("file", path.read_bytes(), filename=path.name)
            async with session.post(base + API + "/assets", data=form,
                                    headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status in (200, 201), await r.text()
        await probe(session, base, token, time.monotonic() + 1)  # warm up
        idle = await probe(session, base, token, time.monotonic() + seconds)
        statuses: Counter = Counter()
        until = time.monotonic() + seconds
        flooders = [asyncio.create_task(flood(session, base, until, statuses)) for _ in range(clients)]
        await asyncio.sleep(0.5)  # let the flood build up before probing
        loaded = await probe(session, base, token, until)
        await asyncio.gather(*flooders)
    return {"idle": idle, "flood": loaded, "statuses": dict(sorted(statuses.items()))}


def run(label: str, clients: int, seconds: float, database_url: str, env: dict[str, str]) -> bool:
    schema = f"bench_{uuid.uuid4().hex[:8]}" if database_url else ""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        server = LiveServer(data, database_url, schema, **PRODUCTION_KDF, **env)
        try:
            result = asyncio.run(measure(server.base, clients, seconds))
        finally:
            server.stop()
            if schema:
                import psycopg
                from psycopg import sql

                with psycopg.connect(database_url, autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    ok = True
    print(f"\n{label}: {clients} clients flooding /auth/login for {seconds:g} s; "
          f"flood answers {result['statuses']}")
    for name in ("health", "assets"):
        idle, loaded = result["idle"][name], result["flood"][name]  # type: ignore[index]
        ratio = p(loaded, 0.99) / p(idle, 0.99)
        ok &= ratio <= 2.0
        print(f"  GET /{name:<7} idle p50 {p(idle, .5):6.1f} ms  p99 {p(idle, .99):6.1f} ms | "
              f"flood p50 {p(loaded, .5):6.1f} ms  p99 {p(loaded, .99):6.1f} ms | "
              f"p99 ratio {ratio:4.2f}x {'(aim <= 2x: met)' if ratio <= 2 else '(aim <= 2x: MISSED)'} "
              f"[{len(idle)}/{len(loaded)} samples]")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--postgres", action="store_true", help="use DARKROOM_DATABASE_URL")
    parser.add_argument("--only", choices=("deployed", "no-limits"))
    args = parser.parse_args()
    database_url = os.environ.get("DARKROOM_DATABASE_URL", "") if args.postgres else ""
    if args.postgres and not database_url:
        parser.error("--postgres needs DARKROOM_DATABASE_URL")
    backend = "PostgreSQL" if database_url else "SQLite"
    print(f"abuse bench on {backend}, {os.cpu_count()} CPUs, argon2id 64 MiB x 3")
    ok = True
    if args.only in (None, "deployed"):
        ok &= run("as deployed (default rate limits)", args.clients, args.seconds, database_url, {})
    if args.only in (None, "no-limits"):
        ok &= run("rate limits lifted (the bounded KDF pool alone)", args.clients, args.seconds, database_url,
                  NO_LIMITS)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
