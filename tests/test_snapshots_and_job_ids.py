"""Snapshots keep loading flat for aggregates that grow without end, and the upload path has no
global aggregate: concurrent uploads neither conflict nor lose a job."""

from __future__ import annotations

import threading
from typing import Any

from commands.application import SNAPSHOT_INTERVAL
from commands.job_ids import MAX_JOB_ID, JobIds
from domain.indexes import Sequence
from domain.user import User
from tests.scenario import fake_upload


def _replayed(services: Any, aggregate_id: Any) -> Any:
    """The aggregate rebuilt from every one of its events, ignoring snapshots."""
    aggregate = None
    for event in services.app.events.get(aggregate_id):
        aggregate = event.mutate(aggregate)
    return aggregate


def test_a_user_loaded_from_a_snapshot_equals_one_replayed_from_every_event(services) -> None:
    session = services.app.register("snappy", "snappy@example.org", "not-a-real-hash")
    user_id = session.user.user_id
    for n in range(2 * SNAPSHOT_INTERVAL + 17):
        if n % 3 == 0:
            services.app.refresh(str(services.app.log_in(user_id).refresh_token))
        else:
            services.app.log_in(user_id)
    aggregate_id = User.create_id(user_id)
    snapshots = list(services.app.snapshots.get(aggregate_id))
    assert len(snapshots) >= 2 and all(s.originator_version % SNAPSHOT_INTERVAL == 0 for s in snapshots)
    services.app.repository.cache = None  # read from the store, through the latest snapshot
    loaded = services.app.repository.get(aggregate_id)
    full = _replayed(services, aggregate_id)
    assert loaded.version == full.version > 2 * SNAPSHOT_INTERVAL
    assert vars(loaded) == vars(full)
    # The snapshot answers what the user needs: tokens still verify after a reload.
    assert loaded.refresh_tokens == full.refresh_tokens and loaded.last_login == full.last_login


def test_sequences_are_snapshotted_too(services) -> None:
    for n in range(SNAPSHOT_INTERVAL + 3):
        services.app.create_album(1, f"album {n}", None, None)
    sequence_id = Sequence.create_id("albums")
    assert list(services.app.snapshots.get(sequence_id))
    services.app.repository.cache = None
    assert services.app.repository.get(sequence_id).last == SNAPSHOT_INTERVAL + 3


def test_job_ids_grow_fit_javascript_and_never_repeat() -> None:
    ids = JobIds()
    allocated = [i for _ in range(2000) for i in ids.next_ids(3)]
    assert allocated == sorted(allocated) and len(set(allocated)) == len(allocated)
    assert all(0 < i <= MAX_JOB_ID for i in allocated)
    frozen = JobIds(clock=lambda: 1_800_000_000.0)  # a stuck clock still gives new ids
    a, b = frozen.next_ids(2), frozen.next_ids(2)
    assert a[1] < b[0]


def test_the_upload_path_touches_no_shared_aggregate(services) -> None:
    before = services.app.upload(fake_upload(1, 0))
    services.app.upload(fake_upload(2, 0))
    assert not services.app.exists(Sequence.create_id("jobs"))
    assert before.task_id is not None


def test_sixteen_concurrent_uploaders_get_no_conflict_and_lose_no_job(services) -> None:
    """16 threads upload at once: every upload succeeds first time through the retry loop's
    eyes (no conflict raised), and every asset has its jobs, each job exactly once."""
    from commands import retry

    conflicts = []
    original = retry.retry_on_conflict

    def counting(command: Any, *args: Any, **kwargs: Any) -> Any:
        def attempt() -> Any:
            try:
                return command()
            except Exception as exc:  # count, then let the real loop decide
                conflicts.append(type(exc).__name__)
                raise
        return original(attempt, *args, **kwargs)

    import commands.assets as assets_module
    assets_module.retry_on_conflict = counting
    outcomes: list[Any] = []
    errors: list[BaseException] = []

    def uploader(owner: int) -> None:
        try:
            for n in range(8):
                outcomes.append(services.app.upload(fake_upload(owner, n)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=uploader, args=(owner,)) for owner in range(1, 17)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        assets_module.retry_on_conflict = original
    assert errors == [] and len(outcomes) == 16 * 8
    assert conflicts == []
    services.wait_for(services.app.recorder.max_notification_id())
    rows = services.db.query("SELECT job_id, asset_id FROM jobs")
    assert len(rows) == 2 * 16 * 8 and len({r["job_id"] for r in rows}) == len(rows)
    assert {r["asset_id"] for r in rows} == {str(o.asset_id) for o in outcomes}
