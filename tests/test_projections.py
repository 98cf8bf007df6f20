"""Read models: rebuild equivalence, crash safety, and following the log live."""

from __future__ import annotations

import pytest

from projections.catalog import CatalogProjection
from projections.registry import PROJECTIONS
from projections.runner import ProjectionRunner, head_position, rebuild
from tests.scenario import busy_library, fake_upload, snapshot


def catch_up_all(services) -> None:
    for runner in services.runners.values():
        runner.catch_up()


def test_rebuilt_tables_equal_live_ones_row_for_row(services):
    """Given a busy log followed live, when every projection is rebuilt, the rows are identical."""
    busy_library(services)
    catch_up_all(services)
    live = snapshot(services)
    assert len(live["catalog_assets"]) == 40 and live["album_assets"]

    progress: list[tuple[int, int]] = []
    for cls in PROJECTIONS.values():
        rebuild(services.app, services.db, cls, batch_size=37, progress=lambda d, t: progress.append((d, t)))

    assert snapshot(services) == live
    head = head_position(services.app)
    assert progress[-1] == (head, head)
    assert all(r.position() == head for r in services.runners.values())


def test_live_runner_continues_on_swapped_tables(services):
    """After a rebuild swaps tables in, the live runner applies new events to the new tables."""
    owned = busy_library(services, users=1, assets_per_user=5)
    catch_up_all(services)
    rebuild(services.app, services.db, CatalogProjection)
    user_id, ids = next(iter(owned.items()))
    services.app.rate(user_id, ids[0], 5)
    services.runners["catalog"].catch_up()
    row = services.db.query_one("SELECT rating FROM catalog_assets WHERE asset_id = ?", (str(ids[0]),))
    assert row["rating"] == 5


def test_rebuild_keeps_serving_the_old_copy_until_the_swap(services):
    """While the shadow copy is being filled, the live table is untouched and readable."""
    busy_library(services, users=1, assets_per_user=10)
    catch_up_all(services)
    before = snapshot(services)["catalog_assets"]
    seen_during: list[int] = []

    def progress(done: int, total: int) -> None:
        seen_during.append(len(services.db.query("SELECT asset_id FROM catalog_assets")))

    rebuild(services.app, services.db, CatalogProjection, batch_size=5, progress=progress)
    assert seen_during and all(n == len(before) for n in seen_during)


class Crash(Exception):
    pass


def test_projection_killed_mid_batch_resumes_without_duplicates_or_gaps(services):
    """A runner that dies in the middle of a batch leaves no trace of that batch; the next run
    applies every event exactly once, ending equal to a clean rebuild."""
    busy_library(services)
    projection = CatalogProjection()
    applied: list[int] = []

    def die_on_the_13th(_projection, _event, position: int) -> None:
        applied.append(position)
        if len(applied) == 13:
            raise Crash()

    runner = ProjectionRunner(services.app, services.db, projection, batch_size=10, on_event=die_on_the_13th)
    # Start from scratch on the live tables.
    with services.db.transaction() as tx:
        tx.execute("DELETE FROM catalog_assets")
        tx.execute("UPDATE projection_positions SET position = 0 WHERE name = 'catalog'")
    with pytest.raises(Crash):
        runner.catch_up()
    # The first batch (10 events) committed; the second died after 3 and rolled back.
    assert runner.position() == 10

    ProjectionRunner(services.app, services.db, projection, batch_size=10).catch_up()
    resumed = snapshot(services)["catalog_assets"]
    rebuild(services.app, services.db, CatalogProjection)
    assert snapshot(services)["catalog_assets"] == resumed


def test_positions_never_go_backwards_across_runners(services):
    """Two runners on one projection (two processes, say) share the position: no event twice."""
    app = services.app
    session = app.register("solo", "solo@example.org", "x")
    for n in range(30):
        app.upload(fake_upload(session.user.user_id, n))
    a = ProjectionRunner(app, services.db, CatalogProjection(), batch_size=7)
    b = ProjectionRunner(app, services.db, CatalogProjection(), batch_size=7)
    while a.process_batch() + b.process_batch():
        pass
    rows = services.db.query("SELECT asset_id FROM catalog_assets")
    assert len(rows) == 30
    assert a.position() == head_position(app)


def test_a_projection_whose_schema_changed_is_replayed_on_start(services, monkeypatch):
    """An upgrade that changes a projection's tables bumps its schema version; the next start
    rebuilds them aside from event 1 and swaps them in, instead of failing on missing columns
    (tests/test_projection_upgrade.py: readers meanwhile keep the old, whole answer)."""
    busy_library(services, users=1, assets_per_user=5)
    catch_up_all(services)
    before = snapshot(services)
    with services.db.transaction() as tx:  # what an older release would have left behind
        tx.execute("ALTER TABLE catalog_assets RENAME COLUMN hash TO old_hash")
    monkeypatch.setattr(CatalogProjection, "schema_version", CatalogProjection.schema_version + 1)
    runner = ProjectionRunner(services.app, services.db, CatalogProjection())
    runner.ensure_tables()
    assert runner.position() == head_position(services.app)
    assert runner.catch_up() == 0
    assert snapshot(services) == before
    ProjectionRunner(services.app, services.db, CatalogProjection()).ensure_tables()  # idempotent now
    assert runner.position() == head_position(services.app)


def every_table(services) -> dict[str, list[dict[str, object]]]:
    """Every row of every projection's tables, in a stable order (search text as FTS5 holds it)."""
    out = {}
    for cls in PROJECTIONS.values():
        for table in cls.tables:
            if table == "search_generation":  # a fresh id per build, by design
                continue
            rows = services.db.query(f"SELECT * FROM {table}")
            for row in rows:
                # Which write touched a search document last: counts writes, so it follows the
                # batching (the Elasticsearch mirror only needs it to grow), not the events.
                row.pop("seq", None)
            out[table] = sorted(rows, key=lambda r: sorted((k, repr(v)) for k, v in r.items()))
    return out


def richer_log(services) -> None:
    """busy_library plus what processors add: embeddings (nested lists), started and failed jobs."""
    owned = busy_library(services, users=2, assets_per_user=12)
    for user_id, ids in owned.items():
        for n, asset_id in enumerate(ids[:6]):
            services.app.record_embedding(asset_id, "clip-test", [0.5, -1.0, n + 0.25])
    catch_up_all(services)
    for row in services.db.query("SELECT job_id FROM jobs ORDER BY job_id")[:5]:
        ticket = services.app.start_job(int(row["job_id"]), "worker-test")
        if ticket is not None:
            services.app.fail_job(int(row["job_id"]), ticket.attempt, "boom")
    catch_up_all(services)


@pytest.mark.parametrize("max_states", [3, 20_000])
def test_fast_replay_gives_the_rows_of_following_live(services, max_states):
    """Rebuilt by the fast replay (orjson decoding, states held across batches and flushed every
    `max_states`, indexes after the load) every projection's rows equal those followed live."""
    richer_log(services)
    live = every_table(services)
    assert live["search_documents"] and live["jobs"] and live["facet_values"]
    for cls in PROJECTIONS.values():
        rebuild(services.app, services.db, cls, batch_size=11, max_states=max_states)
    assert every_table(services) == live
    assert all(r.position() == head_position(services.app) for r in services.runners.values())


def test_fast_decoding_reads_every_stored_event_as_the_mapper_does(services):
    """Every event of the log decodes to the same attributes (values and types) both ways."""
    from projections.replay import Replay, read_stored

    richer_log(services)
    stored = read_stored(services.app, 0, 100_000)
    assert len(stored) == head_position(services.app)
    replay = Replay(services.app, CatalogProjection())
    for n in stored:
        fast = replay.decode(n).attributes()
        slow = services.app.mapper.to_domain_event(n).__dict__
        assert fast == slow
        assert {k: type(v) for k, v in fast.items()} == {k: type(v) for k, v in slow.items()}


def test_json_columns_take_any_value_json_takes() -> None:
    """Read-model JSON is written by orjson; an integer past 64 bits (an odd EXIF value) must not
    stop a projection: it is written as json would."""
    import json

    from projections.base import to_json

    for value in ({"b": 1, "a": [1.5, "é", None]}, {"big": 2**70, "neg": -(2**65)}, [2**64]):
        assert json.loads(to_json(value)) == value
    assert list(json.loads(to_json({"b": 1, "a": 2}))) == ["a", "b"]  # keys sorted
