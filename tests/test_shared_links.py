"""Public links through HTTP on both backends: what a key shows without a token, expiry,
password (and its rate limit), download off, revocation at once, bad input, the log (who
created and revoked, never the key) and rebuilds.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.settings import Settings
from projections.registry import PROJECTIONS
from projections.runner import rebuild
from tests.conftest import make_settings
from tests.helpers import API, User, jpeg, processed, register


@pytest.fixture
def settings(tmp_path: Path, backend: str, pg_schema: str | None) -> Settings:
    return make_settings(tmp_path, backend, pg_schema, run_workers=True, rate_limit_share_password="3/minute")


async def public(client: Any, path: str, password: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"X-Share-Password": password} if password is not None else {}
    resp = await client.get(f"{API}/s/{path}", headers=headers)
    return resp.status, dict(resp.headers), await resp.read()


async def library(client: Any, media: Path) -> dict[str, Any]:
    alice = await register(client, "alice")
    ids = []
    for tag in ("one", "two", "private"):
        ids.append((await alice.upload_bytes(jpeg(media, tag), f"{tag}.jpg"))["data"]["asset_id"])
    await processed(alice, ids)
    album = (await alice.call("POST", "/albums", {"album_name": "Holiday", "description": "sun",
                                                  "cover_asset_id": ids[2]}, expect=201))["data"]["album_id"]
    for asset in ids[:2]:
        await alice.call("POST", f"/albums/{album}/assets/{asset}")
    return {"alice": alice, "one": ids[0], "two": ids[1], "private": ids[2], "album": album}


async def link(user: User, body: dict[str, Any]) -> dict[str, Any]:
    return (await user.call("POST", "/shared-links", body, expect=201))["data"]


async def test_an_album_link_shows_exactly_the_album(client, media):
    lib = await library(client, media)
    created = await link(lib["alice"], {"album_id": lib["album"]})
    key = created["key"]
    assert len(key) >= 43 and created["allow_download"] is True and created["expires_at"] is None
    status, _, body = await public(client, key)
    assert status == 200, body
    data = json.loads(body)["data"]
    assert data["album"] == {"album_name": "Holiday", "description": "sun", "cover_asset_id": None,
                             "asset_count": 2}
    assert [a["asset_id"] for a in data["assets"]] == [lib["one"], lib["two"]]
    # No asset id outside the link (the cover is the private photo), no owner, path or hash.
    text = body.decode()
    for leak in (lib["private"], "owner_id", "storage_path", "repository_id", '"hash"'):
        assert leak not in text, leak
    for asset in (lib["one"], lib["two"]):
        status, headers, thumb = await public(client, f"{key}/assets/{asset}/thumbnail")
        assert status == 200 and headers["Content-Type"] == "image/webp" and thumb[:4] == b"RIFF"
    for size, status in (("small", 200), ("large", 200), ("huge", 400)):
        assert (await public(client, f"{key}/assets/{lib['one']}/thumbnail?size={size}"))[0] == status, size
    status, _, original = await public(client, f"{key}/assets/{lib['one']}/original")
    assert status == 200 and original == jpeg(media, "one")
    for path in (f"{key}/assets/{lib['private']}/thumbnail", f"{key}/assets/{lib['private']}/original",
                 f"{key}/assets/not-a-uuid/original", "x" * 43, "x" * 43 + f"/assets/{lib['one']}/original"):
        status, _, body = await public(client, path)
        assert status == 404, (path, body)
    # The album follows its owner's changes: a removed asset leaves the link at once.
    await lib["alice"].call("DELETE", f"/albums/{lib['album']}/assets/{lib['two']}")
    assert (await public(client, f"{key}/assets/{lib['two']}/thumbnail"))[0] == 404
    await lib["alice"].call("DELETE", f"/albums/{lib['album']}")
    assert (await public(client, key))[0] == 404


async def test_an_asset_link_shows_only_its_assets_and_download_off_keeps_originals(client, media):
    lib = await library(client, media)
    key = (await link(lib["alice"], {"asset_ids": [lib["one"]], "allow_download": False}))["key"]
    status, _, body = await public(client, key)
    data = json.loads(body)["data"]
    assert status == 200 and "album" not in data or data.get("album") is None
    assert [a["asset_id"] for a in data["assets"]] == [lib["one"]]
    assert data["assets"][0]["original_url"] is None and data["allow_download"] is False
    assert (await public(client, f"{key}/assets/{lib['one']}/thumbnail"))[0] == 200
    assert (await public(client, f"{key}/assets/{lib['one']}/original"))[0] == 403
    assert (await public(client, f"{key}/assets/{lib['two']}/thumbnail"))[0] == 404
    # A deleted asset leaves the link.
    await lib["alice"].call("DELETE", f"/assets/{lib['one']}")
    status, _, body = await public(client, key)
    assert status == 200 and json.loads(body)["data"]["assets"] == []


async def test_password_is_needed_checked_and_rate_limited(client, media):
    lib = await library(client, media)
    key = (await link(lib["alice"], {"album_id": lib["album"], "password": "open sesame"}))["key"]
    assert (await public(client, key))[0] == 401
    assert (await public(client, f"{key}/assets/{lib['one']}/original"))[0] == 401
    assert (await public(client, key, "open sesame"))[0] == 200
    assert (await public(client, f"{key}/assets/{lib['one']}/original", "open sesame"))[0] == 200
    for _ in range(3):  # the test setting: 3 wrong passwords a minute
        assert (await public(client, key, "guess"))[0] == 404
    status, headers, body = await public(client, key, "another guess")
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 60, body
    assert json.loads(body)["code"] == 429
    # The right password already verified keeps working (a gallery of thumbnails is one check).
    assert (await public(client, key, "open sesame"))[0] == 200
    # The password is nowhere in the log, and its hash is redacted from the event stream.
    events = (await lib["alice"].call("GET", "/admin/events?type=SharedLink.Created"))["data"]["events"]
    assert "open sesame" not in json.dumps(events) and "argon2" not in json.dumps(events)


async def test_expiry(client, media):
    lib = await library(client, media)
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    created = await link(lib["alice"], {"album_id": lib["album"], "expires_at": soon})
    assert created["expires_at"].endswith("Z")
    assert (await public(client, created["key"]))[0] == 200
    await asyncio.sleep(2.2)
    assert (await public(client, created["key"]))[0] == 404
    assert (await public(client, f"{created['key']}/assets/{lib['one']}/thumbnail"))[0] == 404


async def test_revocation_takes_effect_at_once_and_is_logged_without_the_key(client, media):
    lib = await library(client, media)
    alice = lib["alice"]
    bob = await register(client, "bob")
    created = await link(alice, {"album_id": lib["album"]})
    other = await link(alice, {"asset_ids": [lib["two"]]})
    links = (await alice.call("GET", "/shared-links"))["data"]
    assert [x["link_id"] for x in links["links"]] == [created["link_id"], other["link_id"]] and links["total"] == 2
    assert "key" not in json.dumps(links)
    assert (await bob.call("GET", "/shared-links"))["data"]["total"] == 0
    assert (await bob.call("DELETE", f"/shared-links/{created['link_id']}", expect=404))["code"] == 404
    await alice.call("DELETE", f"/shared-links/{created['link_id']}")
    assert (await public(client, created["key"]))[0] == 404
    assert (await public(client, f"{created['key']}/assets/{lib['one']}/original"))[0] == 404
    assert (await public(client, other["key"]))[0] == 200
    await alice.call("DELETE", f"/shared-links/{created['link_id']}", expect=404)
    assert [x["link_id"] for x in (await alice.call("GET", "/shared-links"))["data"]["links"]] == [other["link_id"]]
    stream = json.dumps((await alice.call("GET", "/admin/events?type=SharedLink.Created,SharedLink.Revoked"))["data"])
    assert created["key"] not in stream and other["key"] not in stream
    events = json.loads(stream)["events"]
    assert [e["type"] for e in events] == ["SharedLink.Created", "SharedLink.Created", "SharedLink.Revoked"]
    assert events[0]["payload"]["owner_id"] == alice.user_id and events[2]["payload"]["by"] == alice.user_id


async def test_link_creation_refuses_bad_input(client, media):
    lib = await library(client, media)
    alice, bob = lib["alice"], await register(client, "bob")
    bobs = (await bob.upload_bytes(jpeg(media, "bob"), "b.jpg"))["data"]["asset_id"]
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for body, status in (
        ({}, 400),
        ({"album_id": lib["album"], "asset_ids": [lib["one"]]}, 400),
        ({"asset_ids": []}, 400),
        ({"asset_ids": [bobs]}, 404),  # another user's asset is not found
        ({"asset_ids": ["not-a-uuid"]}, 400),
        ({"asset_ids": [lib["one"]], "expires_at": past}, 400),
        ({"asset_ids": [lib["one"]], "expires_at": "tomorrow"}, 400),
        ({"asset_ids": [lib["one"]], "expires_at": "2099-01-01T00:00:00"}, 400),  # no offset
        ({"asset_ids": [lib["one"]], "allow_download": "yes"}, 400),
        ({"asset_ids": [lib["one"]], "password": ""}, 400),
        ({"asset_ids": [lib["one"]], "key": "mine"}, 400),
        ({"album_id": 0}, 400),
        ({"album_id": 999}, 404),
        ({"album_id": "1"}, 400),
    ):
        resp = await alice.client.post(f"{API}/shared-links", json=body, headers=alice.headers)
        assert resp.status == status, (body, await resp.text())
    # Another user's album: not found; shared with me as a member: not mine to publish.
    assert (await bob.call("POST", "/shared-links", {"album_id": lib["album"]}, expect=404))["code"] == 404
    await alice.call("POST", f"/albums/{lib['album']}/members", {"username": "bob", "role": "editor"}, expect=201)
    assert (await bob.call("POST", "/shared-links", {"album_id": lib["album"]}, expect=403))["code"] == 403
    for bad in ("0", "x", "-1"):
        assert (await alice.call("DELETE", f"/shared-links/{bad}", expect=400))["code"] == 400
    assert (await alice.call("GET", "/shared-links?limit=0", expect=400))["code"] == 400
    resp = await client.get(f"{API}/s/short")
    assert resp.status == 400  # not the shape of a key at all
    assert (await alice.call("GET", "/shared-links"))["data"]["total"] == 0  # nothing was created


async def test_rebuild_keeps_links(client, services, media):
    lib = await library(client, media)
    kept = await link(lib["alice"], {"album_id": lib["album"], "password": "pw", "allow_download": False})
    gone = await link(lib["alice"], {"asset_ids": [lib["one"], lib["two"]]})
    await lib["alice"].call("DELETE", f"/shared-links/{gone['link_id']}")
    live = services.db.query("SELECT * FROM shared_links ORDER BY link_id")
    rebuild(services.app, services.db, PROJECTIONS["shared_links"], batch_size=2)
    assert services.db.query("SELECT * FROM shared_links ORDER BY link_id") == live
    assert (await public(client, kept["key"], "pw"))[0] == 200
    assert (await public(client, gone["key"]))[0] == 404


def test_the_password_rate_setting_is_checked_at_start():
    from infra.settings import SettingsError, load_settings

    assert load_settings(environ={"DARKROOM_RATE_LIMIT_SHARE_PASSWORD": "5/hour"}).rate_limit_share_password == "5/hour"
    for bad in ("often", "0/minute", "10/week", "10 per minute"):
        with pytest.raises(SettingsError, match="DARKROOM_RATE_LIMIT_SHARE_PASSWORD"):
            load_settings(environ={"DARKROOM_RATE_LIMIT_SHARE_PASSWORD": bad})
