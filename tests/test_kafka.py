"""Distributed processing on the real Kafka broker: the outbox relay, `darkroom worker` processes
in consumer groups, and the faults they must survive.

Each test has its own topic prefix (so topics and groups never collide) and its own database.
The `darkroom serve` side (projections, relay, scheduler) runs in the test process unless the
test is about the real server; workers are always real `darkroom worker` subprocesses.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from infra.bus import JobMessage
from infra.kafka_bus import KafkaConfig
from infra.settings import SettingsError
from processors.relay import OutboxRelay
from tests.conftest import MEDIA
from tests.helpers import jpeg, register
from tests.kafka_fixtures import (
    BOOTSTRAP, FAKE, HERE, REPO, all_jobs, committed_to_end, completions, event_records,
    kafka_darkroom, starts, stored_events, wait_until,
)
from tests.live_server import LiveServer
from tests.test_processing import LOCKED, NO_IMAGE
from tests.scenario import fake_upload

__all__ = ["kafka_darkroom"]  # the fixture, imported for pytest

OK_PROCESSORS = [f"--processor={q}={FAKE}ok" for q in ("metadata_asset", "thumbnail_asset", "transcode_asset")]
FINAL = ("completed", "discarded", "cancelled")


def settle(services, timeout: float = 90) -> list[dict]:
    """Until every job in the read model is final; returns them."""
    def final():
        jobs = all_jobs(services)
        return jobs if jobs and all(j["state"] in FINAL for j in jobs) else None
    jobs = wait_until(final, timeout, "every job to be final", every=0.2)
    services.wait_for(services.app.recorder.max_notification_id())  # the other read models too
    return jobs


def register_owner(services) -> int:
    return services.app.register(f"owner{time.monotonic_ns()}", f"o{time.monotonic_ns()}@example.org", "x").user.user_id


# -- configuration and bad input ---------------------------------------------------------------


def test_bus_urls_are_checked_with_a_clear_message():
    config = KafkaConfig.from_url("kafka://h1:9092,h2:9093?session_timeout_ms=7000&partitions=3", "dr")
    assert config.bootstrap == ("h1:9092", "h2:9093") and config.session_timeout_ms == 7000
    assert config.job_topic("metadata_asset") == "dr.jobs.metadata_asset"
    assert config.group("metadata_asset") == "dr.workers.metadata_asset" and config.events_topic == "dr.events"
    for bad, says in (("kafka://", "not a Kafka address"), ("kafka://host", "not host:port"),
                      ("kafka://h:1?linger=5", "unknown option 'linger'"),
                      ("kafka://h:1?partitions=0", "partitions must be an integer"),
                      ("kafka://h:99999", "not host:port")):
        with pytest.raises(SettingsError, match=says):
            KafkaConfig.from_url(bad, "dr")
    with pytest.raises(SettingsError, match="DARKROOM_KAFKA_PREFIX"):
        KafkaConfig.from_url("kafka://h:1", "has space")


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DARKROOM_")}
    environ.update({"DARKROOM_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=60)


def test_worker_refuses_bad_input_clearly(tmp_path):
    kafka = {"DARKROOM_BUS": f"kafka://{BOOTSTRAP or '127.0.0.1:1'}"}
    cases = [
        (("worker", "--queue", "nosuch"), kafka, "no processor for queue(s) nosuch; known queues: metadata_asset"),
        (("worker",), {"DARKROOM_BUS": "kafak://127.0.0.1:19092"}, "DARKROOM_BUS is 'kafak://127.0.0.1:19092'; use 'inprocess'"),
        (("worker",), {"DARKROOM_BUS": "kafka://127.0.0.1"}, "is not host:port"),
        (("worker",), {}, "`darkroom worker` consumes from Kafka: set DARKROOM_BUS=kafka://"),
        (("worker", "--concurrency", "0"), kafka, "--concurrency must be at least 1"),
        (("worker", "--processor", "metadata_asset"), kafka, "must be QUEUE=MODULE:FUNCTION"),
        (("serve",), {"DARKROOM_BUS": "rabbit://x"}, "DARKROOM_BUS is 'rabbit://x'"),
    ]
    for args, env, says in cases:
        done = _cli(tmp_path, *args, **env)
        assert done.returncode == 2 and says in done.stderr, (args, done.returncode, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, done.stderr


# -- the corpus on two workers -----------------------------------------------------------------

CORPUS = [
    "photo/apple_iphone_4_gps.jpg", "photo/canon_eos_1000d_orient6_lens.jpg",
    "photo/samsung_sm-g975f_orient6.heic", "photo/samsung_gt-i9000_zero_gps_orient6.jpg",
    "raw/nikon_d70_stripped.nef", "raw/canon_eos_350d_stripped.cr2", "video/rot90_zero_gps.mp4",
    "document/libreoffice_encrypted.pdf",
]


def corpus_files() -> list[Path]:
    """About fifteen varied files: named ones, then the smallest others of each kind."""
    chosen = [MEDIA / rel for rel in CORPUS if (MEDIA / rel).exists()]
    for kind in ("photo", "raw", "video", "audio", "document"):
        others = sorted((p for p in (MEDIA / kind).iterdir() if p not in chosen), key=lambda p: p.stat().st_size)
        chosen.extend(others[: 2 if kind in ("photo", "audio", "document") else 1])
    broken = sorted((MEDIA / "broken").iterdir(), key=lambda p: p.stat().st_size)
    return chosen + broken[:1]


BROKEN = tuple(p.name for p in sorted((MEDIA / "broken").iterdir(), key=lambda p: p.stat().st_size)[:1]) if MEDIA.is_dir() else ()


def test_corpus_on_two_workers_every_job_completes_once_and_both_work(kafka_darkroom, tmp_path):
    k = kafka_darkroom()
    settings = k.settings()
    w1 = k.worker("--concurrency", "2")
    w2 = k.worker("--concurrency", "2")
    server = LiveServer(settings.data_dir, settings.database_url, settings.database_schema,
                        **{key: value for key, value in k.env().items() if key.startswith("DARKROOM_")
                           and key not in ("DARKROOM_DATA_DIR", "DARKROOM_PORT")})
    try:
        k.wait_joined([w1, w2])
        auth = server.json("POST", "/auth/register", json_body={
            "username": "owner", "email": "owner@example.org", "password": "correct horse"}, expect=201)
        token = auth["data"]["token"]
        files = corpus_files()
        for path in files:
            body = server.json("POST", "/assets", token, files={"file": path}, expect=None)
            assert body["code"] == 0, (path, body)

        def done():
            stats = server.json("GET", "/admin/river/stats", token)["data"]
            return stats["available"] + stats["scheduled"] + stats["running"] + stats["retryable"] == 0 and stats
        stats = wait_until(done, 150, "the corpus to be processed", every=0.5)
        health = server.json("GET", "/health", token, expect=None)["data"]
        assert health["bus"]["backend"].startswith("kafka://")
    finally:
        server.stop()
    reader = k.serve()  # the same database, read here
    jobs = all_jobs(reader)
    assert len(jobs) >= 2 * len(files) and stats["running"] == 0
    done_jobs = completions(reader)
    assert all(count == 1 for count in done_jobs.values()), done_jobs  # exactly once
    assert sum(1 for j in jobs if j["state"] == "completed") == len(done_jobs)
    names = {a["asset_id"]: a["original_filename"] for a in reader.db.query("SELECT asset_id, original_filename FROM catalog_assets")}
    failed = {(names[j["args"]["asset_id"]], j["queue"], j["errors"][-1]["error"][:80]) for j in jobs if j["state"] != "completed"}
    # As in-process (test_processing): only files without image data and the broken one fail a task.
    assert all(name in NO_IMAGE | LOCKED | set(BROKEN) for name, _, _ in failed), failed
    assert not [f for f in failed if f[1] == "metadata_asset" and f[0] not in BROKEN], failed
    workers = Counter(e.worker.split(":")[1] for e in starts(reader))
    assert set(workers) == {str(w1.proc.pid), str(w2.proc.pid)}, workers  # both took work
    for w in (w1, w2):  # SIGTERM: a clean stop that says what it did
        assert w.terminate() == 0
        assert "stopped (" in w.output() and "Traceback" not in w.output(), w.output()[-3000:]


# -- faults ------------------------------------------------------------------------------------


def test_a_killed_worker_s_job_is_finished_by_the_other_after_the_session_times_out(kafka_darkroom):
    k = kafka_darkroom()
    services = k.serve()
    args = ["--concurrency", "1", f"--processor=metadata_asset={HERE}held", *OK_PROCESSORS[1:]]
    w1, w2 = k.worker(*args), k.worker(*args)
    k.wait_joined([w1, w2])
    owner = register_owner(services)
    outcome = services.app.upload(fake_upload(owner, 1))
    job_id = outcome.task_id  # the metadata job

    def running():
        job = services.jobs.get(job_id)
        return job if job and job["state"] == "running" else None
    job = wait_until(running, 30, "the slow job to start")
    holder = w1 if job["metadata"]["worker"] == w1.worker_id else w2
    other = w2 if holder is w1 else w1
    holder.kill9()
    killed_at = time.monotonic()

    def finished():
        job = services.jobs.get(job_id)
        return job if job and job["state"] == "completed" else None
    job = wait_until(finished, 60, "the other worker to finish the job")
    assert time.monotonic() - killed_at >= 5.0  # not before the session timed out
    assert job["metadata"]["worker"] == other.worker_id and job["attempt"] == 2
    assert "left consumer group" in job["errors"][0]["error"]
    jobs = settle(services)
    assert not [j for j in jobs if j["state"] == "running"]
    assert all(n == 1 for n in completions(services).values()) and len(completions(services)) == len(jobs)


def test_a_poison_file_is_discarded_while_its_partition_moves_on_and_duplicates_change_nothing(kafka_darkroom):
    k = kafka_darkroom(partitions=1, job_max_attempts=3)  # one partition: everything queues behind the poison
    services = k.serve()
    w = k.worker("--concurrency", "1", f"--processor=metadata_asset={HERE}poison_or_ok", *OK_PROCESSORS[1:])
    k.wait_joined([w])
    owner = register_owner(services)
    poison = services.app.upload(replace(fake_upload(owner, 0), original_filename="poison.jpg"))
    others = [services.app.upload(fake_upload(owner, n)) for n in range(1, 6)]
    jobs = {j["id"]: j for j in settle(services, timeout=60)}
    bad = jobs[poison.task_id]
    assert bad["state"] == "discarded" and bad["attempt"] == 3 and len(bad["errors"]) == 3
    assert all("poisoned on purpose" in e["error"] for e in bad["errors"])
    assert all(jobs[o.task_id]["state"] == "completed" for o in others)
    assert all(j["state"] == "completed" for j in jobs.values() if j["id"] != poison.task_id)

    # The same messages again (twice): the worker takes them, claims nothing, acknowledges.
    wait_until(lambda: all(committed_to_end(BOOTSTRAP, k.config, q) for q in ("metadata_asset", "thumbnail_asset")),
               30, "the groups to commit everything")
    head = services.app.recorder.max_notification_id()
    bus = services.bus
    for job in jobs.values():
        for _ in range(2):
            bus.publish(JobMessage(time.time(), job["id"], job["queue"], job["args"]["asset_id"]))
    bus.flush()
    wait_until(lambda: all(committed_to_end(BOOTSTRAP, k.config, q) for q in ("metadata_asset", "thumbnail_asset")),
               30, "the duplicates to be consumed")
    assert services.app.recorder.max_notification_id() == head  # nothing changed
    assert all(n == 1 for n in completions(services).values())


def _broker_pid() -> int | None:
    data = Path(os.environ.get("DARKROOM_KAFKA_DATA") or Path(os.environ.get("TMPDIR", "/tmp")) / "darkroom-kafka")
    try:
        return int((data / "kafka.pid").read_text())
    except (OSError, ValueError):
        return None


def _port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def _kafka_sh(action: str) -> None:
    done = subprocess.run(["bash", str(REPO / "scripts" / "kafka.sh"), action], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


async def test_uploads_succeed_while_kafka_is_down_and_processing_resumes_after(kafka_darkroom, aiohttp_client):
    from api.app import create_app

    if _broker_pid() is None:
        pytest.skip("the broker was not started by scripts/kafka.sh here; cannot stop and restart it")
    k = kafka_darkroom()
    services = k.serve()
    w = k.worker("--concurrency", "2", *OK_PROCESSORS)
    k.wait_joined([w])
    client = await aiohttp_client(create_app(services, start_projections=False))
    alice = await register(client, "alice")
    before = await alice.upload_bytes(jpeg(MEDIA, "before"), "before.jpg")
    settle(services, timeout=60)
    pid = _broker_pid()
    try:
        _kafka_sh("stop")
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), 60, "the broker to exit")
        started = time.monotonic()
        ids = []
        for n in range(5):
            up = await alice.upload_bytes(jpeg(MEDIA, f"down-{n}"), f"down{n}.jpg")
            ids.append(up["data"]["asset_id"])
        assert time.monotonic() - started < 10  # no upload waited on Kafka
        assert services.relay.stored_position() < services.app.recorder.max_notification_id()  # not out yet
        # Health tells the operator the relay is stalled, and why.
        wait_until(lambda: services.relay.last_error is not None, 90, "the relay to notice the broker is gone")
        health = ((await client.get("/api/v1/health")).status,
                  await (await client.get("/api/v1/health", headers=alice.headers)).json())
        assert health[0] == 503 and health[1]["data"]["bus"]["relay"]["status"] == "stalled", health
        assert health[1]["data"]["bus"]["relay"]["lag"] > 0 and health[1]["data"]["bus"]["relay"]["error"]
    finally:
        _kafka_sh("start")
    wait_until(lambda: _port_open(BOOTSTRAP), 60, "the broker to listen again")
    jobs = settle(services, timeout=120)
    assert len(jobs) == 2 * 6 and all(j["state"] == "completed" for j in jobs)
    assert all(n == 1 for n in completions(services).values())
    relay = (await (await client.get("/api/v1/health", headers=alice.headers)).json())["data"]["bus"]["relay"]
    assert relay["status"] == "ok" and relay["role"] == "leader" and "error" not in relay, relay
    for asset_id in [before["data"]["asset_id"], *ids]:
        shown = (await alice.call("GET", f"/assets/{asset_id}"))["data"]
        assert shown["status"]["state"] == "complete", shown["status"]


def test_relay_restart_republishes_nothing_that_changes_results_and_events_replay_in_order(kafka_darkroom):
    k = kafka_darkroom()
    services = k.serve()
    owner = register_owner(services)
    for n in range(8):
        services.app.upload(fake_upload(owner, n))
    wait_until(lambda: services.relay.position == services.app.recorder.max_notification_id(), 30, "the relay to catch up")
    # A crash between Kafka's acknowledgement and the position write: the tail goes out again.
    services.relay.stop()
    with services.db.transaction() as tx:
        tx.execute("UPDATE relay_positions SET position = position - 10 WHERE name = ?", (services.relay.name,))
    for n in range(8, 12):
        services.app.upload(fake_upload(owner, n))
    relay = OutboxRelay(services.app, services.db, services.bus)
    assert relay.position == services.relay.position - 10  # resumes from the stored position
    services.relay = relay
    relay.start()
    head = services.app.recorder.max_notification_id()
    wait_until(lambda: relay.stored_position() == head, 30, "the restarted relay to catch up")
    w = k.worker("--concurrency", "2", *OK_PROCESSORS)
    jobs = settle(services, timeout=60)
    assert len(jobs) == 24 and all(j["state"] == "completed" for j in jobs)
    assert all(n == 1 for n in completions(services).values())  # the republished jobs ran once

    stored = stored_events(services)
    records = event_records(BOOTSTRAP, k.config.events_topic)
    assert len(records) > len(stored)  # some were published twice
    first: dict[int, dict] = {}
    for r in records:
        first.setdefault(r["position"], r)
    assert [(p, first[p]["topic"]) for p in sorted(first)] == [(p, t) for p, t, _ in stored]
    assert [first[p]["type"] for p in sorted(first)] == [t.split(":")[1] for _, t, _ in stored]
    by_key: dict[str, list[int]] = {}
    for r in sorted(records, key=lambda r: (r["_partition"], r["_offset"])):
        assert r["_key"] == r["aggregate_id"]
        seen = by_key.setdefault(r["_key"], [])
        if r["position"] not in seen:
            seen.append(r["position"])
    assert all(v == sorted(v) for v in by_key.values())  # order per key, duplicates aside
    assert w.terminate() == 0


def test_of_two_serve_replicas_one_relays_and_the_other_takes_over_when_it_goes(kafka_darkroom):
    k = kafka_darkroom()
    first = k.serve()
    wait_until(lambda: first.relay.role == "leader" and first.scheduler.leadership.held, 15, "the first replica to lead")
    second = k.serve()  # same database, same topics
    owner = register_owner(first)
    for n in range(6):
        first.app.upload(fake_upload(owner, n))
    head = first.app.recorder.max_notification_id()
    wait_until(lambda: first.relay.stored_position() == head, 30, "the leading relay to publish")
    wait_until(lambda: second.relay.position == head, 10, "the standby to follow the stored position")
    assert second.relay.role == "standby" and second.relay.published == 0
    assert not second.scheduler.leadership.held
    assert second.relay.stored_position() == head

    first.close()  # the leading replica goes away
    for n in range(6, 10):
        second.app.upload(fake_upload(owner, n))
    head = second.app.recorder.max_notification_id()
    wait_until(lambda: second.relay.role == "leader" and second.relay.stored_position() == head, 30,
               "the standby to take over and publish the rest")
    wait_until(lambda: second.scheduler.leadership.held, 15, "the standby's scheduler to take over")
    records = event_records(BOOTSTRAP, k.config.events_topic)
    # A clean handover: every event out exactly once, from one relay or the other.
    assert sorted(r["position"] for r in records) == [p for p, _, _ in stored_events(second)]
    w = k.worker("--concurrency", "2", *OK_PROCESSORS)
    jobs = settle(second, timeout=60)
    assert len(jobs) == 20 and all(j["state"] == "completed" for j in jobs)
    assert w.terminate() == 0


def test_sigterm_releases_the_job_in_flight_and_leaves_the_group_at_once(kafka_darkroom):
    k = kafka_darkroom()
    services = k.serve()
    w = k.worker("--concurrency", "1", "--grace", "1", f"--processor=metadata_asset={HERE}held", *OK_PROCESSORS[1:])
    k.wait_joined([w])
    outcome = services.app.upload(fake_upload(register_owner(services), 1))
    wait_until(lambda: (services.jobs.get(outcome.task_id) or {}).get("state") == "running", 30, "the job to start")
    stopping = time.monotonic()
    assert w.terminate() == 0
    assert time.monotonic() - stopping < 15  # the grace, not the job's 6 s or a session timeout
    assert "1 released" in w.output(), w.output()[-2000:]
    for queue in ("metadata_asset", "thumbnail_asset", "transcode_asset"):
        assert k.admin_bus.group_members(queue) == set()  # left cleanly: the group is empty now
    job = wait_until(lambda: (j := services.jobs.get(outcome.task_id)) and j["state"] == "retryable" and j, 10,
                     "the released job to be retryable")
    assert "released: worker" in job["errors"][0]["error"]
    k.worker("--concurrency", "1", *OK_PROCESSORS)  # another worker picks the retry up
    jobs = settle(services, timeout=60)
    assert {j["state"] for j in jobs} == {"completed"}
    assert services.jobs.get(outcome.task_id)["attempt"] == 2


def test_a_message_put_back_comes_again_after_its_delay_and_an_acked_one_never(kafka_darkroom):
    """What the worker does when it cannot even claim (the database is away): the partition is
    rewound and paused, so that message, and the ones behind it, come again in order."""
    from infra.kafka_bus import KafkaBus

    k = kafka_darkroom(partitions=1)
    producer_side = KafkaBus(k.config, client_id=f"{k.prefix}-producer")
    consumer_side = KafkaBus(k.config, client_id=f"{k.prefix}-consumer")
    try:
        for job_id in (1, 2):
            producer_side.publish(JobMessage(time.time(), job_id, "metadata_asset", "asset-a"))
        producer_side.flush()
        first = wait_until(lambda: consumer_side.consume(["metadata_asset"], timeout=0.5), 30, "the first message")
        assert first.job_id == 1
        put_back = time.monotonic()
        consumer_side.retry_later(first, 1.0)
        again = wait_until(lambda: consumer_side.consume(["metadata_asset"], timeout=0.2), 10, "the message again", every=0)
        assert again.job_id == 1 and time.monotonic() - put_back >= 0.9  # not before its delay
        consumer_side.ack(again)
        second = wait_until(lambda: consumer_side.consume(["metadata_asset"], timeout=0.2), 10, "the next message", every=0)
        assert second.job_id == 2  # order kept behind the put-back message
        consumer_side.ack(second)
        assert consumer_side.consume(["metadata_asset"], timeout=1.0) is None
        assert committed_to_end(BOOTSTRAP, k.config, "metadata_asset")
    finally:
        producer_side.close()
        consumer_side.close()
