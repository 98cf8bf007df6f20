"""A projection whose schema_version changes is rebuilt aside while the old tables serve, then
swapped in: a reader during the upgrade always gets the whole answer, never a partial one."""

from __future__ import annotations

import threading

from projections.catalog import CatalogProjection
from projections.runner import SCHEMAS_TABLE, ProjectionRunner
from tests.scenario import busy_library, snapshot


class CatalogV2(CatalogProjection):
    """The catalog after an upgrade that changed its tables (a new schema version)."""

    schema_version = CatalogProjection.schema_version + 1


def test_schema_upgrade_builds_aside_while_readers_read(services) -> None:
    busy_library(services, users=3, assets_per_user=40)
    for runner in services.runners.values():
        runner.catch_up()
    live = snapshot(services)["catalog_assets"]
    expected = len(live)
    answers: list[int | str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                answers.append(int(services.db.query_one("SELECT count(*) AS n FROM catalog_assets")["n"]))
            except Exception as exc:  # a missing table would be a failed read: recorded
                answers.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        upgraded = ProjectionRunner(services.app, services.db, CatalogV2(), batch_size=7)
        upgraded.ensure_tables()
    finally:
        stop.set()
        thread.join()
    assert len(answers) > 1
    changes = [a for i, a in enumerate(answers) if i == 0 or answers[i - 1] != a]
    assert set(answers) == {expected}, (changes, len(answers))
    version = services.db.query_one(f"SELECT version FROM {SCHEMAS_TABLE} WHERE name = ?", ("catalog",))
    assert int(version["version"]) == CatalogV2.schema_version
    assert snapshot(services)["catalog_assets"] == live  # the same rows, rebuilt from the log
    assert upgraded.position() == services.app.recorder.max_notification_id()
    upgraded.ensure_tables()  # up to date now: nothing to do
    assert int(services.db.query_one(f"SELECT version FROM {SCHEMAS_TABLE} WHERE name = ?",
                                     ("catalog",))["version"]) == CatalogV2.schema_version
