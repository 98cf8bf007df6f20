"""Hot paths of a running server, measured from outside with 16 concurrent clients.

    python bench/hot_paths.py [--clients 16] [--seconds 5] [--uploads 480]
    # PostgreSQL + Elasticsearch ingest: DARKROOM_DATABASE_URL (+ DARKROOM_ELASTICSEARCH_URL)
    # from `source .services.env`; skipped when unset

Each figure beside a baseline measured in the same run on the same machine:
  1. GET /assets?type=PHOTO&limit=50 and GET /assets/{id} (embedded default) vs GET /health of
     the same server (aim >= 0.6 and >= 0.9);
  2. small-photo uploads/s on PostgreSQL (+ Elasticsearch when set) vs the same uploads on the
     embedded default (aim >= 0.8).
Processing workers are off (the bench measures the API and the write path, not thumbnails); the
projections run in the server as they do by default.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.live_server import API, LiveServer  # noqa: E402

PHOTO = Path(__file__).resolve().parents[1] / "tests" / "media" / "photo" / "apple_iphone_xr_1x1px_gps.jpg"


async def _load(base: str, paths: list[str], token: str, clients: int, seconds: float) -> tuple[float, float]:
    """Requests/s and p99 latency (ms) of `clients` loops cycling through `paths`."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    stop = time.perf_counter() + seconds

    async def client(n: int, session: aiohttp.ClientSession) -> None:
        i = n
        while time.perf_counter() < stop:
            start = time.perf_counter()
            async with session.get(base + API + paths[i % len(paths)], headers=headers) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            latencies.append(time.perf_counter() - start)
            i += clients

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(client(n, session) for n in range(clients)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(len(latencies) * 0.99) - 1] * 1000


async def _uploads(base: str, token: str, clients: int, count: int) -> tuple[float, list[str]]:
    """Uploads/s of `count` distinct small photos sent by `clients` concurrent clients."""
    photo = PHOTO.read_bytes()
    headers = {"Authorization": f"Bearer {token}"}
    ids: list[str] = []
    queue = list(range(count))

    async def client(session: aiohttp.ClientSession) -> None:
        while queue:
            n = queue.pop()
            form = aiohttp.FormData()
            # Bytes after the JPEG's end marker make each file distinct and still a JPEG.
            form.add_field("file", photo + f"bench {n} {uuid.uuid4()}".encode(), filename=f"IMG_{n:05d}.jpg",
                           content_type="image/jpeg")
            async with session.post(base + API + "/assets", data=form, headers=headers) as resp:
                body = await resp.json()
                assert resp.status == 201, body
                ids.append(body["data"]["asset_id"])

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - began
    return count / elapsed, ids


def _server(root: Path, name: str, **env: str) -> LiveServer:
    data = root / name
    data.mkdir()
    return LiveServer(data, DARKROOM_RUN_WORKERS="false", **env)


def _token(server: LiveServer) -> str:
    body = server.json("POST", "/auth/register", json_body={
        "username": "bench", "email": "bench@example.org", "password": "a long bench password"}, expect=201)
    return str(body["data"]["token"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--uploads", type=int, default=480)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="darkroom-hot-"))
    results: list[tuple[str, str, str, float, str]] = []

    server = _server(root, "embedded")
    try:
        token = _token(server)
        embedded_rate, ids = asyncio.run(_uploads(server.base, token, args.clients, args.uploads))
        health, health_p99 = asyncio.run(_load(server.base, ["/health"], token, args.clients, args.seconds))
        listing, listing_p99 = asyncio.run(_load(
            server.base, [f"/assets?type=PHOTO&limit=50&offset={o}" for o in range(0, 200, 50)],
            token, args.clients, args.seconds))
        detail, detail_p99 = asyncio.run(_load(server.base, [f"/assets/{i}" for i in ids], token,
                                               args.clients, args.seconds))
    finally:
        server.stop()
    results.append(("GET /assets?type=PHOTO&limit=50", f"{listing:.0f} req/s, p99 {listing_p99:.0f} ms",
                    f"GET /health {health:.0f} req/s, p99 {health_p99:.0f} ms", listing / health, ">= 0.6"))
    results.append(("GET /assets/{id}", f"{detail:.0f} req/s, p99 {detail_p99:.0f} ms",
                    f"GET /health {health:.0f} req/s", detail / health, ">= 0.9"))

    url = os.environ.get("DARKROOM_DATABASE_URL", "")
    if url.startswith("postgres"):
        schema = "bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        es = os.environ.get("DARKROOM_ELASTICSEARCH_URL", "")
        server = _server(root, "postgres", DARKROOM_DATABASE_URL=url, DARKROOM_DATABASE_SCHEMA=schema,
                         DARKROOM_ELASTICSEARCH_URL=es, DARKROOM_ELASTICSEARCH_PREFIX=schema)
        try:
            token = _token(server)
            pg_rate, pg_ids = asyncio.run(_uploads(server.base, token, args.clients, args.uploads))
            assert len(set(pg_ids)) == args.uploads
        finally:
            server.stop()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        what = "PostgreSQL" + (" + Elasticsearch" if es else "")
        results.append((f"small-photo uploads, {what}", f"{pg_rate:.1f}/s",
                        f"embedded default {embedded_rate:.1f}/s", pg_rate / embedded_rate, ">= 0.8"))
    else:
        print("bench: DARKROOM_DATABASE_URL unset; PostgreSQL ingest skipped", file=sys.stderr)

    print(f"hot paths, {args.clients} clients, {os.cpu_count()} cores")
    for path, ours, base, ratio, aim in results:
        print(f"  {path:<44} {ours:<26} | {base:<36} ratio {ratio:5.2f}  (aim {aim})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
