"""Users, registration and quotas: admin management, deactivation and password change ending
sessions at once, closed registration, the shell's first admin, quotas checked before storing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from api.app import create_app
from infra.bootstrap import bootstrap
from projections.registry import PROJECTIONS
from projections.runner import rebuild
from tests.conftest import make_settings
from tests.helpers import API, User, jpeg, register

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def make_client(tmp_path, backend, pg_schema, aiohttp_client):
    """A client on services built with extra settings (both backends)."""
    made = []

    async def make(**extra: Any) -> Any:
        services = bootstrap(make_settings(tmp_path, backend, pg_schema, **extra))
        made.append(services)
        return await aiohttp_client(create_app(services)), services

    yield make
    for services in made:
        services.close()


async def post(client: Any, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    resp = await client.post(API + path, json=body, headers=headers or {})
    return resp.status, await resp.json()


async def test_admin_creates_lists_and_updates_users(client):
    admin = await register(client, "admin")
    created = await admin.call("POST", "/admin/users", {"username": "bob", "email": "Bob@Example.org",
                                                         "password": "bob's long password", "quota_bytes": 5000},
                               expect=201)
    bob_id = created["data"]["user_id"]
    assert created["data"] | {"created_at": None} == {
        "user_id": bob_id, "username": "bob", "email": "bob@example.org", "created_at": None,
        "last_login": created["data"]["last_login"], "is_active": True, "is_admin": False,
        "quota_bytes": 5000, "usage_bytes": 0}
    listed = await admin.call("GET", "/admin/users")
    assert [u["username"] for u in listed["data"]["users"]] == ["admin", "bob"]
    assert listed["data"]["total"] == 2 and listed["data"]["users"][0]["is_admin"] is True

    changed = await admin.call("PUT", f"/admin/users/{bob_id}", {"is_admin": True, "quota_bytes": 0})
    assert changed["data"]["is_admin"] is True and changed["data"]["quota_bytes"] == 0
    # The new right holds at once, without a new token.
    status, body = await post(client, "/auth/login", {"username": "bob", "password": "bob's long password"})
    bob = User(client, body["data"])
    await bob.call("GET", "/admin/users")
    await admin.call("PUT", f"/admin/users/{bob_id}", {"is_admin": False})
    await bob.call("GET", "/admin/users", expect=403)


async def test_admin_users_bad_input(client):
    admin = await register(client, "admin")
    alice = await register(client, "alice")
    await alice.call("GET", "/admin/users", expect=403)
    await alice.call("POST", "/admin/users", {"username": "x1x", "email": "x@example.org",
                                              "password": "long enough"}, expect=403)
    await alice.call("PUT", f"/admin/users/{admin.user_id}", {"is_active": False}, expect=403)
    await admin.call("PUT", "/admin/users/999", {"is_active": False}, expect=404)
    await admin.call("PUT", "/admin/users/0", {"is_active": False}, expect=400)
    await admin.call("PUT", "/admin/users/abc", {"is_active": False}, expect=400)
    await admin.call("PUT", f"/admin/users/{alice.user_id}", {"quota_bytes": -1}, expect=400)
    await admin.call("PUT", f"/admin/users/{alice.user_id}", {"is_active": "no"}, expect=400)
    await admin.call("PUT", f"/admin/users/{alice.user_id}", {"color": "red"}, expect=400)
    await admin.call("PUT", f"/admin/users/{admin.user_id}", {"is_active": False}, expect=409)
    await admin.call("PUT", f"/admin/users/{admin.user_id}", {"is_admin": False}, expect=409)
    await admin.call("DELETE", f"/admin/users/{admin.user_id}", expect=409)
    await admin.call("POST", "/admin/users", {"username": "alice", "email": "new@example.org",
                                              "password": "long enough"}, expect=409)
    await admin.call("POST", "/admin/users", {"username": "a", "email": "new@example.org",
                                              "password": "long enough"}, expect=400)
    await admin.call("POST", "/admin/users", {"username": "carol", "email": "c@example.org",
                                              "password": "short"}, expect=400)
    await admin.call("DELETE", f"/admin/users/{alice.user_id}?erase=maybe", expect=400)
    await admin.call("DELETE", "/admin/users/999999?erase=true", expect=404)
    await alice.call("GET", "/auth/me")  # refused: nothing changed
    listed = await admin.call("GET", "/admin/users")
    assert [u["username"] for u in listed["data"]["users"]] == ["admin", "alice"]


async def test_deactivation_ends_every_session_at_once(client):
    admin = await register(client, "admin")
    alice = await register(client, "alice")
    await alice.call("GET", "/auth/me")
    await admin.call("PUT", f"/admin/users/{alice.user_id}", {"is_active": False})
    body = await alice.call("GET", "/auth/me", expect=401)
    assert "deactivated" in body["message"]
    await alice.call("GET", "/albums", expect=401)
    status, _ = await post(client, "/auth/refresh", {"refreshToken": alice.refresh_token})
    assert status == 401
    status, _ = await post(client, "/auth/login", {"username": "alice", "password": "correct horse battery"})
    assert status == 401
    # Reactivated: a new login works; the old token stays dead (its session ended).
    await admin.call("PUT", f"/admin/users/{alice.user_id}", {"is_active": True})
    await alice.call("GET", "/auth/me", expect=401)
    status, body = await post(client, "/auth/login", {"username": "alice", "password": "correct horse battery"})
    assert status == 200
    await User(client, body["data"]).call("GET", "/auth/me")
    # DELETE closes the account the same way.
    await admin.call("DELETE", f"/admin/users/{alice.user_id}")
    await User(client, body["data"]).call("GET", "/auth/me", expect=401)


async def test_password_change_ends_other_sessions_and_keeps_this_one(client):
    alice = await register(client, "alice")
    status, other = await post(client, "/auth/login", {"username": "alice", "password": "correct horse battery"})
    other_user = User(client, other["data"])
    await alice.call("PUT", "/auth/password", {"current_password": "wrong password", "new_password": "a new password"},
                     expect=401)
    await alice.call("PUT", "/auth/password", {"current_password": "correct horse battery", "new_password": "short"},
                     expect=400)
    await alice.call("PUT", "/auth/password", {"current_password": "correct horse battery"}, expect=400)
    changed = await alice.call("PUT", "/auth/password", {"current_password": "correct horse battery",
                                                         "new_password": "a new password"})
    fresh = User(client, changed["data"])
    await fresh.call("GET", "/auth/me")
    await alice.call("GET", "/auth/me", expect=401)  # the token that asked: its session was renewed
    await other_user.call("GET", "/auth/me", expect=401)
    status, _ = await post(client, "/auth/refresh", {"refreshToken": other_user.refresh_token})
    assert status == 401
    status, _ = await post(client, "/auth/login", {"username": "alice", "password": "correct horse battery"})
    assert status == 401
    status, _ = await post(client, "/auth/login", {"username": "alice", "password": "a new password"})
    assert status == 200


async def test_closed_registration_refuses_once_an_admin_exists(make_client):
    client, _ = await make_client(registration="closed")
    first = await register(client, "first")  # nobody yet: the first account is the admin
    me = await first.call("GET", "/auth/me")
    assert me["data"]["is_admin"] is True
    status, body = await post(client, "/auth/register", {"username": "second", "email": "s@example.org",
                                                         "password": "long enough"})
    assert status == 403 and "closed" in body["message"]
    await first.call("POST", "/admin/users", {"username": "second", "email": "s@example.org",
                                              "password": "long enough"}, expect=201)
    status, _ = await post(client, "/auth/login", {"username": "second", "password": "long enough"})
    assert status == 200


async def test_quota_refuses_an_upload_before_storing_it(make_client, media):
    client, services = await make_client(default_quota_bytes=20_000)
    alice = await register(client, "alice")
    small = jpeg(media, "a")
    assert len(small) < 20_000
    await alice.upload_bytes(small, "a.jpg")
    me = await alice.call("GET", "/auth/me")
    assert me["data"]["quota_bytes"] == 20_000 and me["data"]["usage_bytes"] == len(small)
    big = (media / "photo" / "nikon_d5000.jpg").read_bytes()
    assert len(big) > 20_000
    originals = services.storage.repositories[services.storage.repository(None)] / "originals"
    before = sorted(p for p in originals.rglob("*") if p.is_file())
    body = await alice.upload_bytes(big, "big.jpg", expect=413)
    assert "quota" in body["message"]
    # Nothing stored: no original, no staging file, no asset.
    assert sorted(p for p in originals.rglob("*") if p.is_file()) == before
    assert list(services.storage.staging.iterdir()) == []
    listed = await alice.call("GET", "/assets?type=PHOTO")
    assert len(listed["data"]["assets"]) == 1
    # The one-file batch form is held to the same quota.
    form = aiohttp.FormData()
    form.add_field("single_s1", big, filename="big.jpg", content_type="application/octet-stream")
    result = await alice.call("POST", "/assets/batch", data=form, expect=None)
    assert result["data"]["results"][0]["success"] is False, result
    assert sorted(p for p in originals.rglob("*") if p.is_file()) == before
    # An admin raises the quota: the same upload goes through.
    admin_services = services
    admin_services.app.administer_user(alice.user_id, alice.user_id, quota_bytes=10**9)
    admin_services.wait_for(admin_services.app.recorder.max_notification_id())
    await alice.upload_bytes(big, "big.jpg")


def test_users_directory_rebuilds_to_the_same_rows(services):
    app = services.app
    a = app.register("alice", "alice@example.org", "h").user.user_id
    b = app.register("bob", "bob@example.org", "h", quota_bytes=7).user.user_id
    app.administer_user(a, b, is_active=False)
    app.administer_user(a, b, is_admin=True, quota_bytes=99)
    app.change_password(a, "h2")
    services.wait_for(app.recorder.max_notification_id())
    live = services.db.query("SELECT * FROM users ORDER BY user_id")
    rebuild(app, services.db, PROJECTIONS["users"])
    assert services.db.query("SELECT * FROM users ORDER BY user_id") == live
    assert [(r["is_active"], r["is_admin"], r["quota_bytes"], r["session_epoch"]) for r in live] == [
        (1, 1, 0, 1), (0, 1, 99, 1)]


def test_cli_creates_the_first_admin(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DARKROOM_DATA_DIR": str(tmp_path / "data"),
           "DARKROOM_PASSWORD_MEMORY_KIB": "1024", "DARKROOM_PASSWORD_TIME_COST": "1"}
    env.pop("DARKROOM_DATABASE_URL", None)
    run = subprocess.run([sys.executable, "-m", "infra.cli", "users", "create", "root", "--email",
                          "root@example.org", "--admin", "--password-stdin"], input="a long password\n",
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"user_id": 1, "username": "root",
                                                               "is_admin": True, "quota_bytes": 0}
    again = subprocess.run([sys.executable, "-m", "infra.cli", "users", "create", "root", "--email",
                            "x@example.org", "--password", "a long password"],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert again.returncode == 1 and "taken" in again.stderr
