"""The event log outlives the code: every committed golden log replays into today's read models
and the API answers as it did when the log was written (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.app import create_app
from domain.versioning import event_classes, missing_upcasters, version_of
from projections.registry import PROJECTIONS
from projections.runner import rebuild
from tests.golden_log import answer, golden_logs, load_into, questions, read_stored_events

LOGS = golden_logs()


def test_there_is_a_golden_log() -> None:
    assert LOGS, "no golden log under tests/golden: run scripts/make_golden_log.py"


@pytest.mark.parametrize("log", LOGS, ids=[p.name for p in LOGS])
def test_golden_log_holds_every_event_type_of_its_time(log) -> None:
    """Every event type the domain had when the log was written is in it, and every type of the
    log is still in the domain: events are forever, so their classes are too."""
    manifest = json.loads((log / "manifest.json").read_text())
    written = {row["topic"].partition(":")[2] for row in read_stored_events(log)}
    assert set(manifest["event_types"]) <= written
    assert written <= set(event_classes()), "an event class of an old log was removed from the domain"
    for name, version in manifest["event_types"].items():
        assert version_of(event_classes()[name]) >= version, f"{name} went back in version"


def test_every_event_class_reads_every_older_shape() -> None:
    """Versions come from one mechanism; a class at version N has every upcaster from 1 to N."""
    classes = event_classes()
    assert len(classes) >= 39
    for name, cls in classes.items():
        assert version_of(cls) >= 1, name
        assert missing_upcasters(cls) == [], name


@pytest.mark.parametrize("log", LOGS, ids=[p.name for p in LOGS])
async def test_golden_log_replays_to_the_recorded_answers(log, services, aiohttp_client: Any) -> None:
    """Given a golden log loaded into an empty store, when every read model is rebuilt from it,
    then each recorded question gets the recorded answer."""
    count = load_into(services, log)
    for cls in PROJECTIONS.values():
        rebuild(services.app, services.db, cls, batch_size=50)
    for runner in services.runners.values():
        assert runner.catch_up() == 0 and runner.position() == services.app.recorder.max_notification_id()
    assert count == services.app.recorder.max_notification_id()
    manifest = json.loads((log / "manifest.json").read_text())
    recorded = json.loads((log / "answers.json").read_text())
    client = await aiohttp_client(create_app(services))
    asked = [(a["user"], a["method"], a["path"], a["body"]) for a in recorded]
    assert asked == questions(manifest["users"], manifest["assets"], manifest["albums"],
                              manifest.get("features", ()))
    replayed = await answer(client, services, manifest["users"], asked)
    for then, now in zip(recorded, replayed):
        assert answers_as_recorded(now, then), f"{then['method']} {then['path']} as {then['user']} answers differently"


def answers_as_recorded(now: Any, then: Any) -> bool:
    """`now` says everything `then` said, with the same values; an API may add fields over time
    (e.g. `/auth/me` gained `is_admin` and the quota), never change or drop one."""
    if isinstance(then, dict):
        return isinstance(now, dict) and all(k in now and answers_as_recorded(now[k], v) for k, v in then.items())
    if isinstance(then, list):
        return isinstance(now, list) and len(now) == len(then) and all(map(answers_as_recorded, now, then))
    return now == then
