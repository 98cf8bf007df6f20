"""Event store benchmark on PostgreSQL: commands/s and rebuild events/s against raw psycopg.

    DARKROOM_DATABASE_URL=postgresql://... python bench/event_store.py [--commands N]

Prints two ratios, each measured against a baseline run in the same script on the same server:
  1. rating changes through the application (load aggregate, decide, append, commit) vs raw
     psycopg INSERTs of equally sized rows, one commit each (aim >= 0.5);
  2. projection rebuild (replay into fresh tables, then swap) vs a raw SELECT scan of the events
     table (aim >= 0.3).
Everything lives in a scratch schema that is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.bootstrap import bootstrap  # noqa: E402
from infra.settings import load_settings  # noqa: E402
from projections.catalog import CatalogProjection  # noqa: E402
from projections.runner import rebuild  # noqa: E402
from tests.scenario import fake_upload  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=3000)
    parser.add_argument("--assets", type=int, default=300)
    args = parser.parse_args()
    url = os.environ.get("DARKROOM_DATABASE_URL", "")
    if not url.startswith("postgres"):
        print("bench: set DARKROOM_DATABASE_URL=postgresql://... (make services prints it)", file=sys.stderr)
        return 2
    schema = "bench_" + uuid.uuid4().hex[:8]
    settings = load_settings(environ={}, data_dir=tempfile.mkdtemp(prefix="darkroom-bench-"),
                             database_url=url, database_schema=schema)
    services = bootstrap(settings)
    try:
        app = services.app
        owner = app.register("bench", "bench@example.org", "x").user.user_id
        assets = [app.upload(fake_upload(owner, n)).asset_id for n in range(args.assets)]
        rng = random.Random(1)
        plan = [(rng.choice(assets), rng.randint(0, 5)) for _ in range(args.commands)]

        # -- 1. commands through the application ---------------------------------------------
        start = time.perf_counter()
        for asset_id, rating in plan:
            app.rate(owner, asset_id, rating)
        app_seconds = time.perf_counter() - start
        events_written = app.recorder.max_notification_id()

        # Equally sized rows: the size of a stored RatingChanged event's state.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            state_size = conn.execute(
                "SELECT octet_length(state) FROM darkroom_events WHERE topic LIKE %s LIMIT 1",
                ("%RatingChanged",),
            ).fetchone()
            payload = os.urandom(state_size[0] if state_size else 80)
            conn.execute(
                "CREATE TABLE raw_rows (id BIGSERIAL PRIMARY KEY, originator_id UUID NOT NULL, "
                "originator_version INT NOT NULL, topic TEXT NOT NULL, state BYTEA NOT NULL, "
                "UNIQUE (originator_id, originator_version))"
            )
            start = time.perf_counter()
            for n, (asset_id, _rating) in enumerate(plan):
                conn.execute(
                    "INSERT INTO raw_rows (originator_id, originator_version, topic, state) "
                    "VALUES (%s, %s, %s, %s)",
                    (asset_id, n, "domain.asset:Asset.RatingChanged", payload),
                )
            raw_seconds = time.perf_counter() - start

            # -- 2. rebuild vs raw scan ----------------------------------------------------------
            start = time.perf_counter()
            scanned = len(conn.execute(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM darkroom_events ORDER BY notification_id"
            ).fetchall())
            scan_seconds = time.perf_counter() - start

        start = time.perf_counter()
        replayed = rebuild(app, services.db, CatalogProjection, batch_size=1000)
        rebuild_seconds = time.perf_counter() - start

        app_rate = args.commands / app_seconds
        raw_rate = args.commands / raw_seconds
        rebuild_rate = replayed / rebuild_seconds
        scan_rate = scanned / scan_seconds
        print(f"events in store:                 {events_written}")
        print(f"rating commands/s (application): {app_rate:10.0f}")
        print(f"raw psycopg inserts/s:           {raw_rate:10.0f}")
        print(f"ratio commands / raw inserts:    {app_rate / raw_rate:10.2f}   (aim >= 0.5)")
        print(f"rebuild events/s (catalog):      {rebuild_rate:10.0f}")
        print(f"raw SELECT scan rows/s:          {scan_rate:10.0f}")
        print(f"ratio rebuild / raw scan:        {rebuild_rate / scan_rate:10.2f}   (aim >= 0.3)")
    finally:
        services.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
