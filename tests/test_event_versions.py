"""Versioned events: shape changes (Job.Enqueued v2 no longer stores `args`, a copy of its asset;
v3 stores them again, null unless a job needs more than its asset, as a library scan does) read
old stored events through their upcasters, on the live path and on the fast replay path."""

from __future__ import annotations

import json

from eventsourcing.persistence import StoredEvent

from domain.job import Job
from projections.jobs import JobsProjection
from projections.replay import Replay, Stored
from tests.golden_log import golden_logs, read_stored_events
from tests.scenario import fake_upload


def _old_enqueued() -> dict:
    """A Job.Enqueued as the first golden log stored it: version 1, with `args`."""
    for row in read_stored_events(golden_logs()[0]):
        if row["topic"].endswith(":Job.Enqueued"):
            return row
    raise AssertionError("the golden log has no Job.Enqueued")


def test_a_version_1_event_is_upcast_on_read(services) -> None:
    row = _old_enqueued()
    state = json.loads(row["state"])
    assert "class_version" not in state and state["args"] == {"asset_id": state["asset_id"]}
    stored = StoredEvent(originator_id=row["originator_id"], originator_version=1, topic=row["topic"],
                         state=row["state"].encode())
    event = services.app.mapper.to_domain_event(stored)
    assert isinstance(event, Job.Enqueued)
    assert vars(event)["args"] is None and event.asset_id == state["asset_id"]  # v1 -> v2 -> v3
    job = event.mutate(None)
    assert job.args == {"asset_id": state["asset_id"]} and job.job_id == state["job_id"]


def test_new_events_are_stored_at_their_version(services) -> None:
    outcome = services.app.upload(fake_upload(1, 1))
    job = services.app.load_job(outcome.task_id)
    stored = services.app.recorder.select_events(job.id)
    state = json.loads(stored[0].state)
    assert state["class_version"] == 3 and state["args"] is None


def test_the_fast_replay_path_upcasts_old_shapes_too(services) -> None:
    """`projections.replay` decodes with orjson; an old shape goes through the mapper's upcasters."""
    row = _old_enqueued()
    replay = Replay(services.app, JobsProjection(suffix="__t"))
    event = replay.decode(Stored(1, row["originator_id"], 1, row["topic"], row["state"].encode()))
    assert getattr(event, "args", None) is None
    assert JobsProjection().enqueued(None, event)["args"] == {"asset_id": json.loads(row["state"])["asset_id"]}
