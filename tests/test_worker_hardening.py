"""The worker never strands a job: a refused result fails its attempt with the domain's reason;
each queue has its own timeout and concurrency; required work goes before optional work; and a
lock timeout in the store is told apart from a conflict."""

from __future__ import annotations

import sqlite3
import time

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from commands import retry
from commands.retry import retry_on_conflict
from domain.asset import task_priority
from domain.errors import Conflict, Unavailable
from infra.bus import InProcessBus, JobMessage
from infra.settings import SettingsError, load_settings
from tests.scenario import settle_jobs
from tests.test_jobs import by_queue, start, upload_photo


def test_a_refused_result_fails_the_attempt_with_its_reason(services):
    start(services, metadata_asset="refused")
    upload_photo(services)
    jobs = by_queue(settle_jobs(services))
    meta = jobs["metadata_asset"]
    assert meta["state"] == "discarded" and meta["attempt"] == 3, meta
    assert all("result refused: InvalidInput" in e["error"] and "specific_metadata.title" in e["error"]
               for e in meta["errors"]), meta["errors"]
    assert jobs["thumbnail_asset"]["state"] == "completed"


def test_each_queue_has_its_own_timeout(services):
    services.settings.extra["queues"] = {"metadata_asset": {"timeout_seconds": 0.5},
                                         "thumbnail_asset": {"timeout_seconds": 30}}
    start(services, metadata_asset="slow", thumbnail_asset="slow")
    upload_photo(services)
    jobs = by_queue(settle_jobs(services, timeout=60))
    assert jobs["metadata_asset"]["state"] == "discarded"
    assert "timed out after 0.5 s" in jobs["metadata_asset"]["errors"][0]["error"]
    assert jobs["thumbnail_asset"]["state"] == "completed"


def test_queue_settings_come_from_the_environment():
    settings = load_settings(environ={"DARKROOM_QUEUE_TRANSCODE_ASSET_TIMEOUT_SECONDS": "3600",
                                      "DARKROOM_QUEUE_PROCESS_CLIP_CONCURRENCY": "1"})
    assert settings.queue_timeout("transcode_asset") == 3600.0
    assert settings.queue_timeout("thumbnail_asset") == settings.job_timeout_seconds
    assert settings.queue_concurrency("process_clip") == 1
    assert settings.max_queue_timeout() == 3600.0
    with pytest.raises(SettingsError):
        load_settings(environ={"DARKROOM_QUEUE_X_CONCURRENCY": "0"})
    with pytest.raises(SettingsError):
        load_settings(environ={"DARKROOM_QUEUE_X_TIMEOUT_SECONDS": "soon"})


def test_in_process_bus_gives_required_work_first():
    bus = InProcessBus(priority_of=task_priority)
    now = time.time() - 1
    bus.publish(JobMessage(now - 5, 1, "process_clip"))  # optional, and older
    bus.publish(JobMessage(now, 2, "thumbnail_asset"))
    bus.publish(JobMessage(now + 3600, 3, "metadata_asset"))  # not due: never first
    queues = ["process_clip", "thumbnail_asset", "metadata_asset"]
    assert [bus.consume(queues, 0.1).job_id, bus.consume(queues, 0.1).job_id] == [2, 1]
    assert bus.consume(queues, 0.05) is None


def test_optional_work_leaves_a_slot_for_required_work(services):
    from processors.worker import Worker

    worker = Worker(services, InProcessBus(), ["process_clip", "thumbnail_asset"], concurrency=2,
                    priority_of=task_priority)
    with worker._gates("process_clip"):
        assert not worker._optional_slots.acquire(blocking=False)  # a second optional job waits
        with worker._gates("thumbnail_asset"):  # required work still gets the last slot
            pass


def test_a_lock_timeout_is_503_and_a_conflict_is_retried(monkeypatch):
    calls = []

    def jammed():
        calls.append(1)
        time.sleep(0.05)
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(retry, "LOCK_TIMEOUT_SECONDS", 0.04)
    with pytest.raises(Unavailable) as refused:
        retry_on_conflict(jammed)
    assert len(calls) == 1 and refused.value.backend == "event store"

    tries = []

    def busy_then_fine():
        tries.append(1)
        if len(tries) < 3:
            raise OperationalError("database is locked")  # at once: a busy answer, not a timeout
        return "ok"

    assert retry_on_conflict(busy_then_fine) == "ok" and len(tries) == 3

    def always_conflicts():
        raise IntegrityError("version taken")

    with pytest.raises(Conflict):
        retry_on_conflict(always_conflicts, attempts=3)
