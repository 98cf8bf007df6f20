"""Jobs: the state machine, workers under misbehaving processors, and the admin jobs API."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta, timezone

import pytest

from commands.jobs import JobPolicy
from domain.job import IllegalTransition, Job
from processors import worker as worker_module
from tests.helpers import register
from tests.scenario import fake_upload, settle_jobs

FAKE = "tests.fake_processors:"


def start(services, timeout: float = 20.0, **processors: str) -> None:
    """Run the embedded processing with fake processors per queue (`metadata_asset="raises"`)."""
    services.settings.job_timeout_seconds = timeout
    services.app.job_policy = JobPolicy(max_attempts=3, backoff_base_seconds=0.05, backoff_cap_seconds=0.2)
    specs = {q: FAKE + processors.get(q, "ok") for q in ("metadata_asset", "thumbnail_asset", "transcode_asset")}
    services.start_processing(processors=specs)


def by_queue(jobs: list[dict]) -> dict[str, dict]:
    return {j["queue"]: j for j in jobs}


def upload_photo(services, n: int = 0, owner: int | None = None):
    if owner is None:
        owner = services.app.register(f"u{n}", f"u{n}@example.org", "x").user.user_id
    return owner, services.app.upload(fake_upload(owner, n))


# -- the state machine -----------------------------------------------------------------------


def test_job_moves_only_along_legal_edges():
    now = datetime.now(timezone.utc)
    job = Job(job_id=1, kind="metadata_asset", queue="metadata_asset", asset_id="a", owner_id=1,
              max_attempts=2, priority=1, created_at=now, scheduled_at=now)
    assert job.state == "available"
    with pytest.raises(IllegalTransition):
        job.complete(at=now)  # never ran
    job.start(worker="w", at=now)
    with pytest.raises(IllegalTransition):
        job.start(worker="w2", at=now)  # already running
    job.fail(at=now, error="boom", retry_at=now + timedelta(seconds=1))
    assert job.state == "retryable" and not job.is_due(now) and job.is_due(now + timedelta(seconds=2))
    job.start(worker="w", at=now)
    job.fail(at=now, error="boom again", retry_at=now)  # attempt 2 of 2: discarded
    assert job.state == "discarded" and [e["attempt"] for e in job.errors] == [1, 2]
    for move in (lambda: job.start(worker="w", at=now), lambda: job.cancel(at=now)):
        with pytest.raises(IllegalTransition):
            move()


def test_backoff_grows_exponentially_with_jitter():
    policy = JobPolicy(backoff_base_seconds=1.0, backoff_cap_seconds=100.0)
    now = datetime.now(timezone.utc)
    delays = [[(policy.retry_at(now, a) - now).total_seconds() for _ in range(50)] for a in (1, 2, 3, 8)]
    assert all(0.5 <= d <= 1.5 for d in delays[0])
    assert all(1.0 <= d <= 3.0 for d in delays[1])
    assert all(2.0 <= d <= 6.0 for d in delays[2])
    assert all(d <= 150 for d in delays[3])  # capped (times jitter)
    assert len(set(delays[0])) > 1  # jittered


# -- workers ---------------------------------------------------------------------------------


def test_upload_enqueues_one_job_per_task_and_the_asset_is_processing(services):
    _, outcome = upload_photo(services)
    services.wait_for(outcome.position)
    asset = services.catalog.row(1, str(outcome.asset_id))
    assert '"state":"processing"' in asset["status"].replace(" ", "")
    jobs = by_queue(services.jobs.page(state=None, queue=None, kind=None, since=None, before=None,
                                       limit=10, include_count=False)[0])
    assert set(jobs) == {"metadata_asset", "thumbnail_asset"}
    assert all(j["state"] == "available" and j["attempt"] == 0 for j in jobs.values())
    assert outcome.task_id == jobs["metadata_asset"]["id"]


def test_a_processor_that_raises_is_retried_then_discarded_with_its_errors(services):
    start(services, metadata_asset="raises")
    owner, outcome = upload_photo(services)
    jobs = by_queue(settle_jobs(services))
    meta = jobs["metadata_asset"]
    assert meta["state"] == "discarded" and meta["attempt"] == 3
    assert [e["attempt"] for e in meta["errors"]] == [1, 2, 3]
    assert all("not an image at all" in e["error"] for e in meta["errors"])
    assert jobs["thumbnail_asset"]["state"] == "completed"
    status = services.app.repository.get(outcome.asset_id).status
    assert status["state"] == "failed" and status["tasks"]["metadata_asset"] == "discarded"


def test_a_flaky_processor_succeeds_on_its_second_attempt(services):
    start(services, metadata_asset="flaky")
    _, outcome = upload_photo(services)
    meta = by_queue(settle_jobs(services))["metadata_asset"]
    assert meta["state"] == "completed" and meta["attempt"] == 2 and len(meta["errors"]) == 1
    assert services.app.repository.get(outcome.asset_id).status["state"] == "complete"


def test_a_hanging_processor_is_killed_at_its_timeout_and_the_worker_goes_on(services):
    start(services, timeout=1.0, thumbnail_asset="hangs")
    owner, first = upload_photo(services, 0)
    jobs = by_queue(settle_jobs(services, timeout=90))
    thumb = jobs["thumbnail_asset"]
    assert thumb["state"] == "discarded" and "timed out after 1 s" in thumb["errors"][-1]["error"]
    assert jobs["metadata_asset"]["state"] == "completed"
    # The worker still works after killing hung children.
    services.settings.job_timeout_seconds = 30
    services.worker.processors["thumbnail_asset"] = FAKE + "ok"
    _, second = upload_photo(services, 1, owner)
    settle_jobs(services)
    assert services.app.repository.get(second.asset_id).status["state"] == "complete"


def test_a_processor_whose_process_dies_fails_its_attempt_not_the_worker(services):
    start(services, metadata_asset="dies")
    _, outcome = upload_photo(services)
    meta = by_queue(settle_jobs(services))["metadata_asset"]
    assert meta["state"] == "discarded" and "process died" in meta["errors"][0]["error"]
    assert services.worker._pool is not None and services.worker._pool.active


class _MisbehavingPool:
    """Stands in for a pebble pool in the ways pebble fails a worker (a child that died before
    pebble saw it take its task): `breaks` — what it takes fails with BrokenProcessPool and it is
    no longer active; `broken` — inactive from the start; `breaks_at_handover` — active when
    looked at, then refuses the task ("Unexpected error within the Pool") and is inactive;
    `loses` — takes tasks and never answers (pebble dropped them), staying active; `strands` —
    never answers the first task, then breaks under the second."""

    def __init__(self, mode: str) -> None:
        self.mode, self.stopped, self.handed = mode, False, 0
        self.active = mode != "broken"

    def schedule(self, fn, args, timeout):
        if self.mode == "breaks_at_handover":
            self.active = False
            raise RuntimeError("Unexpected error within the Pool")
        self.handed += 1
        future: Future = Future()
        if self.mode == "breaks" or (self.mode == "strands" and self.handed == 2):
            self.active = False
            future.set_exception(BrokenProcessPool("All workers expired"))
        return future

    def stop(self) -> None:
        self.stopped = True

    def join(self, timeout=None) -> None:
        pass


def _run_on_misbehaving_pool(services, mode: str, timeout: float = 20.0) -> tuple[_MisbehavingPool, list[dict]]:
    """Start the worker, swap its pool for a misbehaving one, upload a photo; the settled jobs."""
    start(services, timeout=timeout)
    real = services.worker._pool
    services.worker._pool = fake = _MisbehavingPool(mode)
    real.stop()
    upload_photo(services)
    return fake, settle_jobs(services)


def test_a_pool_that_breaks_under_a_job_is_replaced_and_the_job_retried(services):
    fake, jobs = _run_on_misbehaving_pool(services, "breaks")
    assert {j["state"] for j in jobs} == {"completed"}
    hit = [j for j in jobs if j["errors"]]
    assert hit and all(j["attempt"] == 2 and "process died" in j["errors"][0]["error"] for j in hit)
    assert fake.handed == len(hit) and fake.stopped
    assert services.worker.pools_renewed == 1 and services.worker._pool.active


@pytest.mark.parametrize("mode", ["broken", "breaks_at_handover"])
def test_a_pool_found_broken_is_replaced_and_the_job_handed_to_the_new_one(services, mode):
    fake, jobs = _run_on_misbehaving_pool(services, mode)
    assert [(j["state"], j["attempt"], j["errors"]) for j in jobs] == [("completed", 1, [])] * len(jobs)
    assert fake.handed == 0 and fake.stopped and services.worker.pools_renewed == 1


def test_a_task_left_unanswered_in_a_pool_that_breaks_fails_with_it_at_once(services, monkeypatch):
    """Two jobs in one pool: the first never answered, the second breaks the pool. Renewing the
    pool fails the first at once (not after the timeout plus grace); both finish on the new one."""
    monkeypatch.setattr(worker_module, "RESULT_GRACE_SECONDS", 600.0)
    fake, jobs = _run_on_misbehaving_pool(services, "strands")
    assert fake.handed == 2 and len(jobs) == 2
    assert [(j["state"], j["attempt"]) for j in jobs] == [("completed", 2)] * 2
    assert all("process died or was lost" in j["errors"][0]["error"] for j in jobs)
    assert services.worker.pools_renewed == 1


def test_a_task_the_pool_never_answers_fails_its_attempt_and_frees_the_slot(services, monkeypatch):
    monkeypatch.setattr(worker_module, "RESULT_GRACE_SECONDS", 0.5)
    fake, jobs = _run_on_misbehaving_pool(services, "loses", timeout=0.3)
    assert {j["state"] for j in jobs} == {"discarded"}
    assert all("lost by the process pool" in e["error"] for j in jobs for e in j["errors"])
    assert fake.handed == sum(j["attempt"] for j in jobs) and services.worker.busy == 0
    # The slots came back: the same worker runs the next upload on a working pool.
    services.worker._pool = services.worker._new_pool()
    services.settings.job_timeout_seconds = 20
    services.worker.timeout = 20
    _, second = upload_photo(services, 1)
    settle_jobs(services)
    assert services.app.repository.get(second.asset_id).status["state"] == "complete"


def test_a_job_left_running_by_a_lost_worker_is_rescued_and_finished(services, monkeypatch):
    _, outcome = upload_photo(services)
    services.wait_for(outcome.position)
    job_id = outcome.task_id
    assert services.app.start_job(job_id, "a-worker-that-then-died") is not None
    monkeypatch.setattr(worker_module, "RESCUE_GRACE_SECONDS", 0.0)
    start(services, timeout=0.3)
    time.sleep(0.5)
    assert services.worker.rescue() == 1
    jobs = by_queue(settle_jobs(services))
    meta = jobs["metadata_asset"]
    assert meta["state"] == "completed" and meta["attempt"] == 2
    assert "worker lost" in meta["errors"][0]["error"]


def test_a_duplicate_or_stale_message_changes_nothing(services):
    start(services)
    _, outcome = upload_photo(services)
    settle_jobs(services)
    head = services.app.recorder.max_notification_id()
    assert services.worker.handle(outcome.task_id) is None
    assert services.app.complete_job(outcome.task_id, 1, {"width": 1}) is False
    assert services.app.fail_job(outcome.task_id, 1, "late") is None
    assert services.app.recorder.max_notification_id() == head


# -- the admin API ---------------------------------------------------------------------------


async def test_jobs_api_cursor_walk_never_repeats_or_skips_under_concurrent_inserts(client, services):
    admin = await register(client, "admin")
    for n in range(260):  # two jobs each: 520 jobs
        services.app.upload(fake_upload(admin.user_id, n))
    services.wait_for(services.app.recorder.max_notification_id())
    before = sorted((int(r["job_id"]) for r in services.db.query("SELECT job_id FROM jobs")), reverse=True)
    first = (await admin.call("GET", "/admin/river/jobs?limit=50&include_count=true"))["data"]
    assert first["total_count"] == 520 and len(first["jobs"]) == 50
    seen = [j["id"] for j in first["jobs"]]
    cursor, extra = first["cursor"], 260
    while cursor:
        # Somebody keeps uploading while we walk.
        for _ in range(3):
            services.app.upload(fake_upload(admin.user_id, extra))
            extra += 1
        page = (await admin.call("GET", f"/admin/river/jobs?limit=50&cursor={cursor}"))["data"]
        seen.extend(j["id"] for j in page["jobs"])
        cursor = page["cursor"]
    # Job ids grow with time (no shared sequence): the walk sees exactly the jobs that were
    # there when it began, newest first, none twice; later ones land before its cursor.
    assert len(before) == 520 and seen == before


async def test_jobs_api_filters_stats_queues_and_bad_input(client, services):
    admin = await register(client, "admin")
    other = await register(client, "other")
    outcomes = [services.app.upload(fake_upload(admin.user_id, n)) for n in range(5)]
    tasks = services.app.repository.get(outcomes[0].asset_id).tasks
    meta_id, thumb_id = tasks["metadata_asset"]["job_id"], tasks["thumbnail_asset"]["job_id"]
    services.app.start_job(meta_id, "w")
    services.app.fail_job(meta_id, 1, "boom")
    services.app.start_job(thumb_id, "w")
    services.app.complete_job(thumb_id, 1, {"thumbnails": {}})
    services.wait_for(services.app.recorder.max_notification_id())

    stats = (await admin.call("GET", "/admin/river/stats"))["data"]
    assert stats["retryable"] == 1 and stats["completed"] == 1 and stats["available"] == 8
    assert sum(stats.values()) == 10
    queues = {q["name"]: q for q in (await admin.call("GET", "/admin/river/queues"))["data"]["queues"]}
    assert set(queues) == {"metadata_asset", "thumbnail_asset"}
    assert sum(sum(q["metadata"].values()) for q in queues.values()) == 10
    assert queues["metadata_asset"]["metadata"]["retryable"] == 1

    retryable = (await admin.call("GET", "/admin/river/jobs?state=retryable"))["data"]["jobs"]
    assert [j["id"] for j in retryable] == [meta_id] and retryable[0]["errors"][0]["error"] == "boom"
    thumbs = (await admin.call("GET", "/admin/river/jobs?queue=thumbnail_asset&kind=thumbnail_asset&time_range=1h"))["data"]["jobs"]
    assert len(thumbs) == 5 and all(j["queue"] == "thumbnail_asset" for j in thumbs)
    job = (await admin.call("GET", f"/admin/river/jobs/{thumb_id}"))["data"]
    assert job["state"] == "completed" and job["attempt"] == 1 and job["finalized_at"]
    assert set(job) >= {"id", "kind", "queue", "state", "args", "metadata", "attempt", "max_attempts",
                        "priority", "errors", "created_at", "scheduled_at", "attempted_at", "finalized_at"}

    await admin.call("GET", "/admin/river/jobs/999", expect=404)
    for bad in ("state=done", "time_range=2h", "limit=0", "cursor=%%%", "cursor=eyJiZWZvcmUiOiAieCJ9", "include_count=maybe"):
        body = await admin.call("GET", f"/admin/river/jobs?{bad}", expect=400)
        assert body["code"] == 400
    for path in ("/admin/river/jobs", "/admin/river/jobs/1", "/admin/river/queues", "/admin/river/stats"):
        await other.call("GET", path, expect=403)


async def test_reprocess_retries_failed_or_named_tasks(client, services):
    alice = await register(client, "alice")
    outcome = services.app.upload(fake_upload(alice.user_id, 1))
    asset = str(outcome.asset_id)
    for attempt in (1, 2, 3):
        services.app.start_job(outcome.task_id, "w")
        services.app.fail_job(outcome.task_id, attempt, f"boom {attempt}")
        if attempt < 3:  # make the retry due now
            job = services.app.load_job(outcome.task_id)
            assert job.state == "retryable"
            await asyncio.sleep(max(0.0, (job.scheduled_at - datetime.now(timezone.utc)).total_seconds()) + 0.01)
    services.wait_for(services.app.recorder.max_notification_id())
    shown = (await alice.call("GET", f"/assets/{asset}"))["data"]
    assert shown["status"]["state"] == "processing"  # thumbnail still waiting
    assert shown["status"]["tasks"]["metadata_asset"] == "discarded"

    result = (await alice.call("POST", f"/assets/{asset}/reprocess", {}))["data"]
    assert result["retry_tasks"] == ["metadata_asset"] and result["failed_tasks"] == ["metadata_asset"]
    shown = (await alice.call("GET", f"/assets/{asset}"))["data"]
    assert shown["status"]["tasks"]["metadata_asset"] == "available"

    forced = (await alice.call("POST", f"/assets/{asset}/reprocess", {"force_full_retry": True}))["data"]
    assert sorted(forced["retry_tasks"]) == ["metadata_asset", "thumbnail_asset"]
    stats = (await alice.call("GET", "/admin/river/stats"))["data"]
    assert stats["cancelled"] == 2  # the superseded waiting jobs

    named = (await alice.call("POST", f"/assets/{asset}/reprocess", {"tasks": ["thumbnail_asset"]}))["data"]
    assert named["retry_tasks"] == ["thumbnail_asset"]
    bad = await alice.call("POST", f"/assets/{asset}/reprocess", {"tasks": ["transcode_asset"]}, expect=400)
    assert "transcode_asset" in bad["error"]
    await alice.call("POST", f"/assets/{asset}/reprocess", {"tasks": "thumbnail_asset"}, expect=400)
    await alice.call("POST", f"/assets/{asset}/reprocess", {"bogus": 1}, expect=400)
    bob = await register(client, "bob")
    await bob.call("POST", f"/assets/{asset}/reprocess", {}, expect=404)
