"""Kafka benchmark: end-to-end jobs/s, and the relay's publish rate.

    python bench/kafka.py [--files 24] [--events-uploads 1500]

Needs a broker (DARKROOM_KAFKA_BOOTSTRAP, from `make services`); PostgreSQL when
DARKROOM_DATABASE_URL is set (the distributed setting), else SQLite. Each figure is printed beside
a baseline measured in the same run on the same machine:
  1. jobs/s end to end (uploads of the same corpus files to a real `darkroom serve`, until every
     job is final) with the Kafka bus and 1, then 2, `darkroom worker` processes, vs the
     in-process bus (`darkroom serve` alone); every worker runs the same concurrency;
  2. the outbox relay's publish rate (records/s: every event to the events topic plus job
     messages, read from the event store, position written after each acknowledged batch) vs a
     bare kafka-python producer sending the same records, already encoded — aim >= 0.5.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

# This file is named like the kafka package: take its own folder off the path first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka import KafkaProducer  # noqa: E402

from infra.bootstrap import bootstrap  # noqa: E402
from infra.kafka_bus import KafkaBus, KafkaConfig, encode_job  # noqa: E402
from infra.bus import JobMessage  # noqa: E402
from infra.settings import load_settings  # noqa: E402
from processors.relay import OutboxRelay, event_value  # noqa: E402
from tests.kafka_fixtures import WorkerProcess, wait_until  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402
from tests.scenario import fake_upload  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1] / "tests" / "media"
BOOTSTRAP = os.environ.get("DARKROOM_KAFKA_BOOTSTRAP", "")
PG_URL = os.environ.get("DARKROOM_DATABASE_URL", "")
CONCURRENCY = 2


def corpus(n: int) -> list[Path]:
    """Photos first (the common case), then a video and audio file, n in all."""
    photos = [p for p in sorted((MEDIA / "photo").iterdir())]
    others = sorted([*(MEDIA / "video").iterdir(), *(MEDIA / "audio").iterdir()], key=lambda p: p.stat().st_size)
    return (photos[: n - 2] + others[:2])[:n]


def drop_schema(schema: str) -> None:
    if schema:
        import psycopg
        from psycopg import sql

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def end_to_end(work: Path, files: list[Path], workers: int, kafka: bool) -> tuple[float, int]:
    """(jobs/s, jobs) from the first upload until every job is final."""
    name = f"{'kafka' if kafka else 'inprocess'}-{workers}-{uuid.uuid4().hex[:6]}"
    data_dir = work / name / "data"
    data_dir.mkdir(parents=True)
    schema = ("b_" + uuid.uuid4().hex[:10]) if PG_URL else ""
    prefix = "bench" + uuid.uuid4().hex[:8]
    env = {
        "DARKROOM_DATA_DIR": str(data_dir), "DARKROOM_DATABASE_URL": PG_URL if schema else "",
        "DARKROOM_DATABASE_SCHEMA": schema, "DARKROOM_JWT_SECRET": "bench-" + uuid.uuid4().hex,
        "DARKROOM_PASSWORD_MEMORY_KIB": "1024", "DARKROOM_PASSWORD_TIME_COST": "1",
        "DARKROOM_WORKER_CONCURRENCY": str(CONCURRENCY), "DARKROOM_JOB_TIMEOUT_SECONDS": "300",
    }
    if kafka:
        env |= {"DARKROOM_BUS": f"kafka://{BOOTSTRAP}", "DARKROOM_KAFKA_PREFIX": prefix}
    server = LiveServer(data_dir, env["DARKROOM_DATABASE_URL"], schema,
                        **{k: v for k, v in env.items() if k not in ("DARKROOM_DATA_DIR", "DARKROOM_DATABASE_URL", "DARKROOM_DATABASE_SCHEMA")})
    procs: list[WorkerProcess] = []
    try:
        if kafka:
            base = {k: v for k, v in os.environ.items() if not k.startswith("DARKROOM_")}
            for i in range(workers):
                procs.append(WorkerProcess(base | env, work / name / f"worker-{i}.log",
                                           ["--queue", "metadata_asset", "--queue", "thumbnail_asset",
                                            "--queue", "transcode_asset"]))
            ids = [p.wait_ready() for p in procs]
            bus = KafkaBus(KafkaConfig.from_url(env["DARKROOM_BUS"], prefix), client_id="bench")
            try:
                wait_until(lambda: all(
                    (m := bus.group_members(q)) is not None and all(any(c.startswith(i + "/") for c in m) for i in ids)
                    for q in ("metadata_asset", "thumbnail_asset", "transcode_asset")), 60, "workers to join", 0.25)
            finally:
                bus.close()
        token = server.json("POST", "/auth/register", json_body={
            "username": "bench", "email": "bench@example.org", "password": "correct horse"}, expect=201)["data"]["token"]
        start = time.perf_counter()
        for path in files:
            server.json("POST", "/assets", token, files={"file": path}, expect=201)

        def finished() -> dict | None:
            stats = server.json("GET", "/admin/river/stats", token)["data"]
            busy = stats["available"] + stats["scheduled"] + stats["running"] + stats["retryable"]
            return stats if busy == 0 else None

        stats = wait_until(finished, 900, "the jobs to finish", every=0.1)
        elapsed = time.perf_counter() - start
        jobs = sum(stats.values())
        return jobs / elapsed, jobs
    finally:
        for p in procs:
            p.terminate()
        server.stop()
        drop_schema(schema)


def relay_rate(work: Path, uploads: int) -> tuple[float, float, int]:
    """(relay records/s, bare producer records/s, records)."""
    schema = ("b_" + uuid.uuid4().hex[:10]) if PG_URL else ""
    settings = load_settings(environ={}, data_dir=str(work / "relay" / "data"), database_url=PG_URL if schema else "",
                             database_schema=schema, bus=f"kafka://{BOOTSTRAP}",
                             kafka_prefix="benchrelay" + uuid.uuid4().hex[:8], run_workers=False)
    services = bootstrap(settings)
    bus = KafkaBus(KafkaConfig.from_url(settings.bus, settings.kafka_prefix), client_id="bench-relay")
    bare_config = KafkaConfig.from_url(settings.bus, "benchbare" + uuid.uuid4().hex[:8])
    bare_bus = KafkaBus(bare_config, client_id="bench-bare")
    try:
        owner = services.app.register("bench", "bench@example.org", "x").user.user_id
        for n in range(uploads):
            services.app.upload(fake_upload(owner, n))
        queues = ["metadata_asset", "thumbnail_asset"]
        bus.ensure_topics(queues, events=True)
        bare_bus.ensure_topics(queues, events=True)
        # The same records, encoded beforehand, for the bare producer.
        records = []
        position = 0
        while batch := services.app.recorder.select_notifications(position, 1000, inclusive_of_start=False):
            for n in batch:
                event = services.app.mapper.to_domain_event(n)
                records.append((bare_config.events_topic, str(n.originator_id).encode(), event_value(n.id, n.topic, event)))
                if n.topic.endswith(":Job.Enqueued"):
                    message = JobMessage(event.scheduled_at.timestamp(), event.job_id, event.queue, event.asset_id)
                    records.append((bare_config.job_topic(event.queue), event.asset_id.encode(), encode_job(message)))
            position = batch[-1].id

        producer = KafkaProducer(bootstrap_servers=[BOOTSTRAP], linger_ms=5, batch_size=256 * 1024)
        producer.send(bare_config.events_topic, key=b"warm", value=b"{}").get(30)
        start = time.perf_counter()
        for topic, key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush()
        bare = len(records) / (time.perf_counter() - start)
        producer.close()

        relay = OutboxRelay(services.app, services.db, bus, batch_size=settings.projection_batch_size)
        bus.producer().send(bus.config.events_topic, key=b"warm", value=b"{}").get(30)
        start = time.perf_counter()
        relay.catch_up()
        ours = relay.published / (time.perf_counter() - start)
        assert relay.published == len(records), (relay.published, len(records))
        return ours, bare, len(records)
    finally:
        for b in (bus, bare_bus):
            try:
                admin = b.admin()
                admin.delete_topics([t for t in admin.list_topics() if t.startswith(b.config.prefix + ".")],
                                    raise_errors=False)
            finally:
                b.close()
        services.close()
        drop_schema(schema)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=24)
    p.add_argument("--events-uploads", type=int, default=1500)
    args = p.parse_args()
    if not BOOTSTRAP:
        print("bench/kafka.py: set DARKROOM_KAFKA_BOOTSTRAP (source .services.env after make services)", file=sys.stderr)
        return 2
    backend = "PostgreSQL" if PG_URL else "SQLite"
    files = corpus(args.files)
    with tempfile.TemporaryDirectory(prefix="darkroom-bench-kafka-") as tmp:
        work = Path(tmp)
        print(f"end to end: {len(files)} corpus files, {backend}, worker concurrency {CONCURRENCY}", flush=True)
        base, jobs = end_to_end(work, files, 1, kafka=False)
        print(f"  in-process bus (serve alone):   {base:6.2f} jobs/s  ({jobs} jobs)", flush=True)
        for workers in (1, 2):
            rate, jobs = end_to_end(work, files, workers, kafka=True)
            print(f"  Kafka, {workers} worker process(es):    {rate:6.2f} jobs/s  ({jobs} jobs)  "
                  f"ratio {rate / base:.2f}", flush=True)
        ours, bare, count = relay_rate(work, args.events_uploads)
        print(f"relay: {count} records ({backend} event store)", flush=True)
        print(f"  outbox relay:          {ours:9.0f} records/s", flush=True)
        print(f"  bare kafka-python:     {bare:9.0f} records/s   ratio {ours / bare:.2f} (aim >= 0.5)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
