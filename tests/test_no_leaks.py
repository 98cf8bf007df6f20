"""Nothing leaked: public health says only its status, the detail is an admin's and summarised,
503s carry no exception text, `darkroom config` masks secrets by key, and the JWT secret file is
private from its first byte and one across processes that start together."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

from eventsourcing.persistence import ConnectionUnavailableError

from api.routes.health import summarise
from infra.settings import Settings, load_settings, mask_url_password
from tests.helpers import API, register


async def test_public_health_answers_only_its_status(client, services):
    resp = await client.get(f"{API}/health")
    body = await resp.json()
    assert resp.status == 200 and body["data"] == {"status": "ok"}
    alice = await register(client, "alice")  # the first account: admin
    bob = await register(client, "bob")
    assert (await (await client.get(f"{API}/health", headers=bob.headers)).json())["data"] == {"status": "ok"}
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await (await client.get(f"{API}/health", headers=bad)).json())["data"] == {"status": "ok"}
    detail = (await (await client.get(f"{API}/health", headers=alice.headers)).json())["data"]
    assert {"event_store", "projections", "bus", "search_index", "ml"} <= set(detail)
    assert detail["projections"]["users"]["lag"] == 0


async def test_health_summarises_backend_errors_and_hides_credentials(client, services, monkeypatch):
    admin = await register(client, "admin")

    def broken() -> int:
        raise ConnectionUnavailableError('connection to server at "db.internal" (10.1.2.3), port 5432 '
                                         'failed: FATAL: password authentication failed for user "darkroom"')

    monkeypatch.setattr(services.app.recorder, "max_notification_id", broken)
    for headers in ({}, admin.headers):
        resp = await client.get(f"{API}/health", headers=headers)
        text = await resp.text()
        assert resp.status == 503
        for secret in ("db.internal", "10.1.2.3", "darkroom\\\"", "password authentication"):
            assert secret not in text, text
    body = await (await client.get(f"{API}/health", headers=admin.headers)).json()
    assert body["data"]["event_store"] == {"status": "down", "backend": body["data"]["event_store"]["backend"],
                                           "error": "ConnectionUnavailableError"}
    assert "10.1.2.3" not in summarise("cannot reach 10.1.2.3:9092 as http://u:p@host:9200")
    assert "u:p@" not in summarise("cannot reach http://u:p@host:9200")


async def test_a_503_envelope_carries_no_exception_text(client, services, monkeypatch):
    alice = await register(client, "alice")

    def down(*args, **kwargs):
        raise ConnectionUnavailableError('connection to server at "db.internal" failed for user "darkroom"')

    monkeypatch.setattr(services.catalog, "list", down, raising=False)
    monkeypatch.setattr(services.app, "get_user", down)
    resp = await client.get(f"{API}/auth/me", headers=alice.headers)
    text = await resp.text()
    assert resp.status == 503 and "db.internal" not in text and "darkroom\\\"" not in text
    assert resp.headers["Retry-After"] == "1"


def test_config_masks_passwords_by_key():
    settings = load_settings(environ={"DARKROOM_DATABASE_URL": "postgresql://secret:secret@db:5432/dr",
                                      "DARKROOM_ELASTICSEARCH_URL": "https://elastic:hunter2@es:9200"})
    shown = settings.public_dict()
    assert shown["database_url"] == "postgresql://secret:***@db:5432/dr"
    assert shown["elasticsearch_url"] == "https://elastic:***@es:9200"
    assert "hunter2" not in str(shown)
    assert mask_url_password("postgresql://u@db/dr") == "postgresql://u@db/dr"


def test_percent_escaped_postgres_passwords_are_decoded():
    settings = Settings(database_url="postgresql://us%40er:p%40ss%2Fw%3Ard@db:5432/dr")
    parts = settings.postgres_parts()
    assert parts["user"] == "us@er" and parts["password"] == "p@ss/w:rd"


def _secret(data_dir: str, out: "multiprocessing.Queue[str]") -> None:
    out.put(Settings(data_dir=Path(data_dir)).resolved_jwt_secret())


def test_jwt_secret_file_is_private_and_one_across_racing_processes(tmp_path):
    old = os.umask(0o022)
    try:
        for attempt in range(5):
            data_dir = tmp_path / f"d{attempt}"
            ctx = multiprocessing.get_context("fork")
            out = ctx.Queue()
            procs = [ctx.Process(target=_secret, args=(str(data_dir), out)) for _ in range(6)]
            for p in procs:
                p.start()
            for p in procs:
                p.join(30)
            secrets = {out.get(timeout=5) for _ in procs}
            assert len(secrets) == 1
            path = data_dir / "jwt-secret"
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert [p.name for p in data_dir.iterdir()] == ["jwt-secret"]  # no temporary left
    finally:
        os.umask(old)
