"""Leadership: one holder at a time of a named role, on SQLite (a lock file) and PostgreSQL
(an advisory lock), handed over when the holder releases it or dies."""

from __future__ import annotations

import psycopg
import pytest

from infra import leadership as leadership_module
from infra.leadership import Leadership


def test_one_holder_at_a_time_and_a_release_hands_over(settings):
    a, b = Leadership(settings, "relay-x"), Leadership(settings, "relay-x")
    other_role = Leadership(settings, "scheduler-x")
    try:
        assert a.hold() and a.hold()  # holding again is cheap and still true
        assert not b.hold() and not b.held
        assert other_role.hold()  # another name is another role
        a.release()
        assert not a.held and b.hold()
        assert not a.hold()  # released for good: its owner is stopping
        c = Leadership(settings, "relay-x")
        assert not c.hold()  # b leads
        b.release()
        assert c.hold()
        c.release()
    finally:
        for x in (a, b, other_role):
            x.release()


def test_a_postgres_leader_whose_session_dies_steps_down_and_another_takes_over(settings, backend, monkeypatch):
    if backend != "postgres":
        pytest.skip("SQLite's lock file is dropped by the kernel when the process dies")
    monkeypatch.setattr(leadership_module, "CHECK_EVERY_SECONDS", 0.0)
    a, b = Leadership(settings, "relay-y"), Leadership(settings, "relay-y")
    try:
        assert a.hold()
        pid = a._conn.info.backend_pid
        with psycopg.connect(**settings.postgres_parts(), autocommit=True) as admin:
            # Waits (up to 5 s) until the backend is gone, so the lock is free when it returns.
            assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]
        assert b.hold()  # the lock went with the session
        assert b._conn.execute("SHOW tcp_keepalives_idle").fetchone()[0] == "10"  # a vanished leader ends soon
        assert not a.hold() and not a.held  # the old leader notices and stands by
        assert not a.hold()  # and stays a standby while b holds
    finally:
        a.release()
        b.release()


def test_a_lock_that_cannot_be_reached_is_not_held_and_says_why(settings, backend):
    if backend != "postgres":
        pytest.skip("a lock file on the local disk is always reachable")
    from dataclasses import replace

    from tests.live_server import free_port

    nowhere = replace(settings, database_url=f"postgresql://darkroom:darkroom@127.0.0.1:{free_port()}/darkroom")
    lost = Leadership(nowhere, "relay-z")
    assert not lost.hold() and not lost.held
    assert lost.error and "OperationalError" in lost.error and "127.0.0.1" in lost.error
    reachable = Leadership(settings, "relay-z")
    try:
        assert reachable.hold() and reachable.error is None
    finally:
        reachable.release()
