"""A Darkroom on the real Kafka broker for tests: a topic prefix per test, `darkroom worker`
subprocesses, and readers for what landed in the event store and in the topics.

The broker comes from `DARKROOM_KAFKA_BOOTSTRAP` (`make services` writes it to .services.env).
PostgreSQL is used when `DARKROOM_TEST_DATABASE_URL` is set (the distributed setting), else a
SQLite file shared by the processes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from processors.base import JobInput, UnprocessableMedia

# The workers' child processes import this module for the processors below: everything heavier
# is imported where it is used, so a child loads no more than a processor needs.
if TYPE_CHECKING:
    from infra.bootstrap import Services
    from infra.settings import Settings

REPO = Path(__file__).resolve().parents[1]
BOOTSTRAP = os.environ.get("DARKROOM_TEST_KAFKA_BOOTSTRAP") or os.environ.get("DARKROOM_KAFKA_BOOTSTRAP", "")
PG_URL = os.environ.get("DARKROOM_TEST_DATABASE_URL", "")
SESSION_TIMEOUT_MS = 6000  # the broker's minimum: a killed worker's partitions move after this
FAKE = "tests.fake_processors:"
HERE = "tests.kafka_fixtures:"
QUEUES = ("metadata_asset", "thumbnail_asset", "transcode_asset")
QUEUE_ARGS = [arg for q in QUEUES for arg in ("--queue", q)]


# -- processors the workers run in some tests (module:function, imported in the child) ---------


def held(job: JobInput) -> dict[str, Any]:
    """Slow enough to kill its worker in the middle."""
    time.sleep(6.0)
    return {"thumbnails": {}, "specific_metadata": {"title": job.original_filename}}


def poison_or_ok(job: JobInput) -> dict[str, Any]:
    if "poison" in job.original_filename:
        raise UnprocessableMedia(f"{job.original_filename}: poisoned on purpose")
    return {"thumbnails": {}, "specific_metadata": {"title": job.original_filename}}


# -- waiting -----------------------------------------------------------------------------------


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


# -- the environment ---------------------------------------------------------------------------


class WorkerProcess:
    """A `darkroom worker` subprocess."""

    def __init__(self, env: dict[str, str], log_path: Path, args: list[str]) -> None:
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", *args], cwd=REPO,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.worker_id = ""

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 60) -> str:
        def started() -> str | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}: {self.output()[-3000:]}")
            found = re.search(r"darkroom: worker (\S+) consuming", self.output())
            return found.group(1) if found else None

        self.worker_id = wait_until(started, timeout, "the worker to start")
        return self.worker_id

    def terminate(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


class KafkaDarkroom:
    """One test's Darkroom on Kafka: its settings, topics prefix, database and workers."""

    def __init__(self, tmp_path: Path, partitions: int = 8, **settings: Any) -> None:
        from infra.kafka_bus import KafkaBus, KafkaConfig

        self.tmp_path = tmp_path
        self.prefix = "t" + uuid.uuid4().hex[:10]
        self.schema = ("k_" + uuid.uuid4().hex[:10]) if PG_URL else ""
        self.bus_url = f"kafka://{BOOTSTRAP}?session_timeout_ms={SESSION_TIMEOUT_MS}&partitions={partitions}"
        self.extra = {"job_backoff_base_seconds": 0.2, "job_timeout_seconds": 60.0, **settings}
        self.workers: list[WorkerProcess] = []
        self.services: list[Services] = []
        self.config = KafkaConfig.from_url(self.bus_url, self.prefix)
        self.admin_bus = KafkaBus(self.config, client_id=f"{self.prefix}-test")

    def settings(self) -> Settings:
        from tests.conftest import make_settings

        s = make_settings(self.tmp_path, "postgres" if self.schema else "sqlite", self.schema or None,
                          bus=self.bus_url, kafka_prefix=self.prefix, **self.extra)
        return s

    def env(self, **more: str) -> dict[str, str]:
        s = self.settings()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("DARKROOM_")}
        environ.update({
            "DARKROOM_DATA_DIR": str(s.data_dir), "DARKROOM_DATABASE_URL": s.database_url,
            "DARKROOM_DATABASE_SCHEMA": s.database_schema, "DARKROOM_BUS": self.bus_url,
            "DARKROOM_KAFKA_PREFIX": self.prefix, "DARKROOM_JWT_SECRET": s.jwt_secret,
            "DARKROOM_PASSWORD_MEMORY_KIB": "1024", "DARKROOM_PASSWORD_TIME_COST": "1",
            "DARKROOM_JOB_BACKOFF_BASE_SECONDS": str(s.job_backoff_base_seconds),
            "DARKROOM_JOB_TIMEOUT_SECONDS": str(s.job_timeout_seconds),
            "DARKROOM_JOB_MAX_ATTEMPTS": str(s.job_max_attempts),
            "DARKROOM_MODEL_OCR": s.model_ocr, "DARKROOM_MODEL_FACE": s.model_face,
            "DARKROOM_MODEL_LABELS": s.model_labels,
            "DARKROOM_MODEL_SPECIES": s.model_species,
            **more,
        })
        return environ

    def serve(self) -> Services:
        """The `darkroom serve` side in this process: projections, relay and scheduler."""
        from infra.bootstrap import bootstrap

        services = bootstrap(self.settings())
        services.start_daemon()
        services.start_outbox()
        self.services.append(services)
        return services

    def worker(self, *args: str, ready: bool = True) -> WorkerProcess:
        w = WorkerProcess(self.env(), self.tmp_path / f"worker-{len(self.workers)}.log", [*QUEUE_ARGS, *args])
        self.workers.append(w)
        if ready:
            w.wait_ready()
        return w

    def wait_joined(self, workers: list[WorkerProcess], queues: tuple[str, ...] = QUEUES, timeout: float = 60) -> None:
        """Until every queue's group is settled with a consumer of each of these workers."""
        def joined() -> bool:
            for queue in queues:
                members = self.admin_bus.group_members(queue)
                if members is None or not all(any(m.startswith(w.worker_id + "/") for m in members) for w in workers):
                    return False
            return True

        wait_until(joined, timeout, f"workers {[w.worker_id for w in workers]} to join {queues}", every=0.25)

    def close(self) -> None:
        for w in self.workers:
            w.terminate(timeout=30)
        for services in self.services:
            services.close()
        try:
            admin = self.admin_bus.admin()
            topics = [t for t in admin.list_topics() if t.startswith(self.prefix + ".")]
            if topics:
                admin.delete_topics(topics, raise_errors=False)
            groups = [self.config.group(q) for q in QUEUES]
            admin.delete_groups(groups)
        except Exception:  # a leftover topic with a unique prefix harms nobody
            pass
        self.admin_bus.close()
        if self.schema:
            import psycopg
            from psycopg import sql

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))


@pytest.fixture
def kafka_darkroom(tmp_path: Path) -> Iterator[Callable[..., KafkaDarkroom]]:
    if not BOOTSTRAP:
        if os.environ.get("CI"):
            pytest.fail("DARKROOM_KAFKA_BOOTSTRAP is not set; run the suite with `make test`")
        pytest.skip("DARKROOM_KAFKA_BOOTSTRAP not set: start Kafka with `make services` (or scripts/kafka.sh start)")
    made: list[KafkaDarkroom] = []

    def make(**kwargs: Any) -> KafkaDarkroom:
        made.append(KafkaDarkroom(tmp_path, **kwargs))
        return made[-1]

    yield make
    for k in made:
        k.close()


# -- reading results ---------------------------------------------------------------------------


def stored_events(services: Services) -> list[tuple[int, str, str]]:
    """(position, topic, originator id) of every stored event, in log order."""
    out, position = [], 0
    while batch := services.app.recorder.select_notifications(position, 1000, inclusive_of_start=False):
        out.extend((n.id, n.topic, str(n.originator_id)) for n in batch)
        position = batch[-1].id
    return out


def completions(services: Services) -> Counter[str]:
    """Job.Completed events per job aggregate."""
    return Counter(o for _, topic, o in stored_events(services) if topic.endswith(":Job.Completed"))


def starts(services: Services) -> list[Any]:
    """Every Job.Started event, in log order."""
    return [services.app.mapper.to_domain_event(n)
            for n in _notifications(services) if n.topic.endswith(":Job.Started")]


def _notifications(services: Services) -> list[Any]:
    out, position = [], 0
    while batch := services.app.recorder.select_notifications(position, 1000, inclusive_of_start=False):
        out.extend(batch)
        position = batch[-1].id
    return out


def all_jobs(services: Services) -> list[dict[str, Any]]:
    return services.jobs.page(state=None, queue=None, kind=None, since=None, before=None,
                              limit=10000, include_count=False)[0]


def read_topic(bootstrap: str, topic: str, timeout: float = 30) -> list[Any]:
    """Every record of a topic from offset 0 to its current end, partition by partition."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = wait_until(lambda: consumer.partitions_for_topic(topic), timeout, f"topic {topic}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout:g} s")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def event_records(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [json.loads(r.value) | {"_key": r.key.decode(), "_partition": r.partition, "_offset": r.offset}
            for r in read_topic(bootstrap, topic)]


def committed_to_end(bootstrap: str, config: Any, queue: str) -> bool:
    """Whether the queue's group has committed every message of its topic."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=config.group(queue), enable_auto_commit=False)
    try:
        topic = config.job_topic(queue)
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        end = consumer.end_offsets(tps)
        return all((consumer.committed(tp) or 0) >= end[tp] for tp in tps)
    finally:
        consumer.close()
