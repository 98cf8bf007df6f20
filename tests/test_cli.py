"""Operator commands, run as real processes: projections status/rebuild/run, events export, config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


from projections.runner import head_position
from tests.scenario import busy_library, snapshot


def cli_env(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DARKROOM_")}
    env.update({
        "DARKROOM_DATA_DIR": str(settings.data_dir),
        "DARKROOM_DATABASE_URL": settings.database_url,
        "DARKROOM_DATABASE_SCHEMA": settings.database_schema,
        "DARKROOM_JWT_SECRET": settings.jwt_secret,
        "DARKROOM_ELASTICSEARCH_URL": settings.elasticsearch_url,
        "DARKROOM_ELASTICSEARCH_PREFIX": settings.elasticsearch_prefix,
    })
    return env


def darkroom(settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args], env=cli_env(settings), capture_output=True,
        text=True, timeout=120, check=check,
    )


def test_export_round_trip(services, settings, tmp_path):
    """Export writes one JSON line per event, in log order, with the documented fields."""
    busy_library(services, users=1, assets_per_user=6)
    head = head_position(services.app)
    out = tmp_path / "events.jsonl"
    result = darkroom(settings, "events", "export", "--output", str(out))
    assert f"exported {head} events" in result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["position"] for r in records] == list(range(1, head + 1))
    assert set(records[0]) == {"position", "timestamp", "aggregate", "aggregate_id", "type", "version",
                               "event_version", "payload"}
    expected_types = [
        type(services.app.mapper.to_domain_event(n)).__qualname__
        for n in services.app.recorder.select_notifications(1, head)
    ]
    assert [r["type"] for r in records] == expected_types
    # Secrets never leave the event store.
    registered = next(r for r in records if r["type"] == "User.Registered")
    assert registered["payload"]["password_hash"] == "***"

    ratings = darkroom(settings, "events", "export", "--type", "Asset.RatingChanged", "--from", "3", "--to", str(head - 2))
    lines = [json.loads(line) for line in ratings.stdout.splitlines()]
    assert lines and all(r["type"] == "Asset.RatingChanged" and 3 < r["position"] <= head - 2 for r in lines)
    assert len(lines) == sum(1 for r in records if r["type"] == "Asset.RatingChanged" and 3 < r["position"] <= head - 2)


def test_projections_status_and_rebuild_commands(services, settings):
    busy_library(services, users=1, assets_per_user=8)
    for runner in services.runners.values():
        runner.catch_up()
    live = snapshot(services)
    head = head_position(services.app)

    status = darkroom(settings, "projections", "status").stdout
    rows = {line.split()[0]: line.split()[1:] for line in status.splitlines()[1:]}
    assert rows["catalog"] == [str(head), "0"] and rows["albums"] == [str(head), "0"]

    rebuilt = darkroom(settings, "projections", "rebuild", "--all")
    assert "rebuilt catalog" in rebuilt.stdout and "rebuilt albums" in rebuilt.stdout
    assert "rebuild catalog" in rebuilt.stderr  # the progress bar
    assert snapshot(services) == live

    bad = darkroom(settings, "projections", "rebuild", "nonsense", check=False)
    assert bad.returncode == 2 and "name a projection" in bad.stderr


def test_projection_process_killed_with_sigkill_resumes_exactly(services, settings):
    """`darkroom projections run` killed with SIGKILL mid-stream, then restarted: the read
    models end equal to a clean rebuild (nothing applied twice, nothing skipped)."""
    busy_library(services, users=3, assets_per_user=60)
    with services.db.transaction() as tx:  # make the runner start over from event 1
        tx.execute("DELETE FROM catalog_assets")
        tx.execute("DELETE FROM album_assets")
        tx.execute("DELETE FROM albums")
        tx.execute("UPDATE projection_positions SET position = 0")
    env = cli_env(settings) | {"DARKROOM_PROJECTION_BATCH_SIZE": "5"}
    proc = subprocess.Popen([sys.executable, "-m", "infra.cli", "projections", "run"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    head = head_position(services.app)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and services.runners["catalog"].position() < 40:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    killed_at = services.runners["catalog"].position()
    assert 0 < killed_at < head, f"killed at {killed_at} of {head}: not mid-stream"

    proc = subprocess.Popen([sys.executable, "-m", "infra.cli", "projections", "run"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(
            r.position() < head for r in services.runners.values()
        ):
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert all(r.position() == head for r in services.runners.values())
    resumed = snapshot(services)
    darkroom(settings, "projections", "rebuild", "--all", "--quiet")
    assert snapshot(services) == resumed


def test_config_prints_effective_settings_without_secrets(settings):
    out = json.loads(darkroom(settings, "config").stdout)
    assert out["data_dir"] == str(settings.data_dir)
    assert out["jwt_secret"] == "(set)"
    assert settings.jwt_secret not in json.dumps(out)


def test_bad_database_url_is_a_clear_error(settings):
    env_settings = settings
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", "projections", "status"],
        env=cli_env(env_settings) | {"DARKROOM_DATABASE_URL": "postgresql://nobody:x@127.0.0.1:1/nothing"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "cannot connect to PostgreSQL" in result.stderr and "make services" in result.stderr
