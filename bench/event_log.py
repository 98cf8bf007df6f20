"""The event log as a product, measured: concurrent uploads before/after the shared job sequence
went away, aggregate loads with and without snapshots, Parquet export against a bare pyarrow
write of the same rows.

    DARKROOM_DATABASE_URL=postgresql://... python bench/event_log.py [--uploads-per-client N]

Without DARKROOM_DATABASE_URL it runs on SQLite (where writers serialise on the file lock).
Every figure is printed beside its baseline, run in this script on the same machine:
  1. uploads/s and conflicts with 16 concurrent clients: job ids from the old global
     `Sequence("jobs")` (the baseline, rebuilt here as it was) vs time-ordered ids (now);
     "retries" are saves that lost an optimistic-concurrency race and ran again, "409" are
     uploads that ran out of retries (answered 409 Conflict by the API);
  2. loading a user with 10k events: replayed from every event vs from its latest snapshot;
  3. Parquet export events/s vs `pyarrow.parquet.write_table` of the same finished tables.
Scratch schemas and folders are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow.parquet as pq  # noqa: E402

from commands import retry  # noqa: E402
from commands.application import Darkroom  # noqa: E402
from domain.asset import Asset  # noqa: E402
from domain.errors import Conflict  # noqa: E402
from domain.job import Job  # noqa: E402
from domain.user import User  # noqa: E402
from infra.bootstrap import bootstrap  # noqa: E402
from infra.parquet_export import export_parquet  # noqa: E402
from infra.settings import load_settings  # noqa: E402
from tests.scenario import busy_library, fake_upload  # noqa: E402

CLIENTS = 16


class SequencedJobs(Darkroom):
    """The baseline: job ids from one shared `Sequence("jobs")`, saved with every upload, as
    before this change (the sequence rides in the list of new jobs so `upload` saves it)."""

    def _new_jobs(self, asset: Asset, queues: Any) -> list[Any]:
        seq = self._sequence("jobs")
        now = self.now()
        jobs: list[Any] = []
        for queue in queues:
            job = Job(job_id=seq.next_value(), kind=queue, queue=queue, asset_id=str(asset.id),
                      owner_id=asset.owner_id, max_attempts=3, priority=1, created_at=now, scheduled_at=now)
            asset.record_task(queue=queue, job_id=job.job_id, state=job.state)
            jobs.append(job)
        return [*jobs, seq]


def concurrent_uploads(services: Any, per_client: int, offset: int) -> tuple[float, int, int, int]:
    """(uploads/s, retries, 409s, uploads) with CLIENTS threads uploading at once."""
    retries = [0]
    lock = threading.Lock()
    original = retry.retry_on_conflict

    def counting(command: Any, attempts: int = 50) -> Any:
        def attempt() -> Any:
            try:
                return command()
            except retry.CONFLICTS:
                with lock:
                    retries[0] += 1
                raise
        return original(attempt, attempts)

    import commands.assets as assets_module
    assets_module.retry_on_conflict = counting
    rejected = [0]
    done = [0]

    def client(owner: int) -> None:
        for n in range(per_client):
            try:
                services.app.upload(fake_upload(owner, offset + n))
                with lock:
                    done[0] += 1
            except Conflict:
                with lock:
                    rejected[0] += 1

    threads = [threading.Thread(target=client, args=(1000 + c,)) for c in range(CLIENTS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    assets_module.retry_on_conflict = original
    return done[0] / elapsed, retries[0], rejected[0], done[0] + rejected[0]


def snapshot_loads(services: Any, events: int) -> tuple[float, float]:
    """Seconds per load of a user with `events` events: (every event, latest snapshot)."""
    session = services.app.register(f"bench{uuid.uuid4().hex[:8]}", f"{uuid.uuid4().hex[:8]}@example.org", "x")
    user_id = session.user.user_id
    # Tokens that expire at once are pruned at the next login, as a month-old token is in real
    # use: the user's state stays small while its events pile up (what snapshots are for).
    services.app.refresh_token_ttl = timedelta(milliseconds=1)
    for _ in range(events - 2):
        services.app.log_in(user_id)
    aggregate_id = User.create_id(user_id)
    repo = services.app.repository
    repo.cache = None
    snapshots = repo.snapshot_store

    def timed(rounds: int) -> float:
        start = time.perf_counter()
        for _ in range(rounds):
            repo.get(aggregate_id)
        return (time.perf_counter() - start) / rounds

    repo.snapshot_store = None
    full = timed(5)
    repo.snapshot_store = snapshots
    snap = timed(50)
    return full, snap


def export_rates(services: Any, root: Path) -> tuple[float, float, int]:
    start = time.perf_counter()
    result = export_parquet(services.app, root / "export")
    export_s = time.perf_counter() - start
    tables = [pq.read_table(folder) for folder in sorted((root / "export").glob("type=*"))]
    start = time.perf_counter()
    for n, table in enumerate(tables):
        pq.write_table(table, root / f"bare-{n}.parquet", compression="zstd")
    bare_s = time.perf_counter() - start
    return result.events / export_s, result.events / bare_s, result.events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads-per-client", type=int, default=25)
    parser.add_argument("--user-events", type=int, default=10_000)
    parser.add_argument("--export-assets", type=int, default=200)
    args = parser.parse_args()
    url = os.environ.get("DARKROOM_DATABASE_URL", "")
    schema = "bench_" + uuid.uuid4().hex[:10] if url else ""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(environ={}, data_dir=str(Path(tmp) / "data"), run_workers=False,
                                 password_memory_kib=1024, password_time_cost=1, jwt_secret="b" * 40)
        if url:
            settings.database_url, settings.database_schema = url, schema
        services = bootstrap(settings)
        try:
            print(f"backend: {'postgresql' if url else 'sqlite'}; {CLIENTS} concurrent clients, "
                  f"{args.uploads_per_client} uploads each")
            services.app.__class__ = SequencedJobs
            before = concurrent_uploads(services, args.uploads_per_client, 0)
            services.app.__class__ = Darkroom
            after = concurrent_uploads(services, args.uploads_per_client, 10_000)
            for label, (rate, retries, rejected, total) in (("shared sequence (before)", before),
                                                             ("time-ordered ids (now)", after)):
                print(f"  {label:26s} {rate:8.1f} uploads/s   retries {retries:5d} "
                      f"({retries / total:.2f}/upload)   409 {rejected} ({rejected / total:.1%})")
            print(f"ratio uploads/s now / before:    {after[0] / before[0]:10.2f}")

            full, snap = snapshot_loads(services, args.user_events)
            print(f"load a user of {args.user_events} events: every event {full * 1000:8.1f} ms, "
                  f"from snapshot {snap * 1000:6.2f} ms")
            print(f"ratio snapshot load speed-up:    {full / snap:10.1f}")

            busy_library(services, users=3, assets_per_user=args.export_assets)
            export_rate, bare_rate, events = export_rates(services, Path(tmp))
            print(f"parquet: export {export_rate:9.0f} events/s, bare pyarrow write {bare_rate:9.0f} rows/s "
                  f"({events} events)")
            print(f"ratio export / bare write:       {export_rate / bare_rate:10.2f}")
        finally:
            services.close()
            if url:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
