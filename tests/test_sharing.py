"""Shared albums through HTTP on both backends: a viewer sees the album and exactly its assets,
an editor adds and removes their own, the owner keeps control, and a removed member loses
access at once. Every asset route is tried by a stranger (404) and by a viewer.

Processing runs in-process here (thumbnails and web versions are real), so a 404 for "not
yours" is told apart from a 404 for "not made yet".
"""

from __future__ import annotations

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
    return make_settings(tmp_path, backend, pg_schema, run_workers=True)


async def upload(user: User, media: Path, tag: str) -> str:
    body = await user.upload_bytes(jpeg(media, tag), f"{tag}.jpg")
    return str(body["data"]["asset_id"])


async def status_of(user: User, method: str, path: str, json: Any = None) -> int:
    resp = await user.client.request(method, API + path, json=json, headers=user.headers)
    await resp.read()
    return resp.status


# Every route that reads or changes one asset by id, with what a stranger must get (404).
def asset_routes(asset_id: str, album_id: int) -> list[tuple[str, str, Any]]:
    return [
        ("GET", f"/assets/{asset_id}", None),
        ("GET", f"/assets/{asset_id}/thumbnail", None),
        ("GET", f"/assets/{asset_id}/thumbnail?size=small", None),
        ("GET", f"/assets/{asset_id}/original", None),
        ("GET", f"/assets/{asset_id}/video/web", None),
        ("GET", f"/assets/{asset_id}/audio/web", None),
        ("GET", f"/assets/{asset_id}/albums", None),
        ("PUT", f"/assets/{asset_id}", {"specific_metadata": {"title": "x"}}),
        ("PUT", f"/assets/{asset_id}/description", {"description": "mine now"}),
        ("PUT", f"/assets/{asset_id}/like", {"liked": True}),
        ("PUT", f"/assets/{asset_id}/rating", {"rating": 5}),
        ("PUT", f"/assets/{asset_id}/rating-and-like", {"rating": 5, "liked": True}),
        ("POST", f"/assets/{asset_id}/reprocess", {}),
        ("POST", f"/assets/{asset_id}/albums/{album_id}", None),
        ("DELETE", f"/assets/{asset_id}", None),
    ]


async def scene(client: Any, media: Path) -> dict[str, Any]:
    """alice has an album with a photo and a song, and a private photo; bob is a viewer of the
    album, carol a stranger with an album of her own."""
    alice, bob, carol = [await register(client, n) for n in ("alice", "bob", "carol")]
    photo = await upload(alice, media, "in-album")
    private = await upload(alice, media, "private")
    song = (await alice.upload(media / "audio" / "chirp_id3_all_fields.mp3"))["data"]["asset_id"]
    await processed(alice, [photo, private, song])
    album = (await alice.call("POST", "/albums", {"album_name": "Trip"}, expect=201))["data"]["album_id"]
    for asset in (photo, song):
        await alice.call("POST", f"/albums/{album}/assets/{asset}")
    shared = await alice.call("POST", f"/albums/{album}/members", {"username": "bob", "role": "viewer"}, expect=201)
    assert shared["data"]["members"] == [{"user_id": bob.user_id, "username": "bob", "role": "viewer"}]
    carols = (await carol.call("POST", "/albums", {"album_name": "Mine"}, expect=201))["data"]["album_id"]
    return {"alice": alice, "bob": bob, "carol": carol, "photo": photo, "private": private, "song": song,
            "album": album, "carols": carols}


async def test_a_viewer_sees_the_album_and_exactly_its_assets(client, media):
    s = await scene(client, media)
    alice, bob, album, photo, song = s["alice"], s["bob"], s["album"], s["photo"], s["song"]

    listed = (await bob.call("GET", "/albums?scope=shared"))["data"]
    assert [a["album_id"] for a in listed["albums"]] == [album] and listed["total"] == 1
    assert listed["albums"][0]["owner_id"] == alice.user_id and listed["albums"][0]["role"] == "viewer"
    assert (await bob.call("GET", "/albums"))["data"]["total"] == 0  # owned is the default scope
    assert (await bob.call("GET", "/albums?scope=all"))["data"]["total"] == 1
    assert (await alice.call("GET", "/albums?scope=shared"))["data"]["total"] == 0
    assert (await bob.call("GET", f"/albums/{album}"))["data"]["role"] == "viewer"
    assets = (await bob.call("GET", f"/albums/{album}/assets"))["data"]["assets"]
    assert [a["asset_id"] for a in assets] == [photo, song]

    detail = (await bob.call("GET", f"/assets/{photo}"))["data"]
    assert detail["owner_id"] == alice.user_id
    assert [a["album_id"] for a in detail["albums"]] == [album]
    for path in (f"/assets/{photo}/thumbnail", f"/assets/{photo}/original", f"/assets/{song}/audio/web",
                 f"/assets/{photo}/albums"):
        assert await status_of(bob, "GET", path) == 200, path
    resp = await client.get(f"{API}/assets/{photo}/original", headers=bob.headers)
    assert await resp.read() == jpeg(media, "in-album")

    # A viewer changes nothing: the owner's asset is not theirs (404), the album is not theirs to edit.
    for method, path, body in asset_routes(photo, s["carols"])[7:]:
        assert await status_of(bob, method, path, body) == 404, (method, path)
    bobs = await upload(bob, media, "bob-1")
    assert (await bob.call("POST", f"/albums/{album}/assets/{bobs}", expect=403))["code"] == 403
    assert await status_of(bob, "POST", f"/assets/{bobs}/albums/{album}") == 403
    assert await status_of(bob, "DELETE", f"/albums/{album}/assets/{photo}") == 403
    assert await status_of(bob, "PUT", f"/albums/{album}", {"album_name": "Mine"}) == 404
    assert await status_of(bob, "DELETE", f"/albums/{album}") == 404
    assert await status_of(bob, "POST", f"/albums/{album}/members", {"username": "carol", "role": "viewer"}) == 403
    # Nothing else of alice's: her private photo by every route, and in no listing of bob's.
    for method, path, body in asset_routes(s["private"], s["carols"]):
        assert await status_of(bob, method, path, body) == 404, (method, path)
    await bob.call("PUT", f"/assets/{bobs}/like", {"liked": True})
    for path in ("/assets?type=PHOTO", "/assets/liked", "/assets/rating/0"):
        assert [a["asset_id"] for a in (await bob.call("GET", path))["data"]["assets"]] == [bobs], path
    found = await bob.call("POST", "/assets/search", {"query": "jpg", "search_type": "filename"})
    assert [a["asset_id"] for a in found["data"]["assets"]] == [bobs]
    assert (await alice.call("GET", f"/assets/{photo}"))["data"]["rating"] == 0  # nothing changed


async def test_a_stranger_gets_404_from_every_asset_route(client, media):
    s = await scene(client, media)
    carol = s["carol"]
    for asset in (s["photo"], s["song"], s["private"]):
        for method, path, body in asset_routes(asset, s["carols"]):
            assert await status_of(carol, method, path, body) == 404, (method, path)
    for method, path in (("GET", f"/albums/{s['album']}"), ("GET", f"/albums/{s['album']}/assets"),
                         ("GET", f"/albums/{s['album']}/members"),
                         ("DELETE", f"/albums/{s['album']}/assets/{s['photo']}")):
        assert await status_of(carol, method, path) == 404, path
    assert await status_of(carol, "POST", f"/albums/{s['album']}/members", {"username": "carol", "role": "editor"}) == 404
    assert (await carol.call("GET", "/albums?scope=all"))["data"]["total"] == 1  # only her own


async def test_removing_a_member_takes_effect_at_once(client, media):
    s = await scene(client, media)
    alice, bob, album, photo = s["alice"], s["bob"], s["album"], s["photo"]
    assert await status_of(bob, "GET", f"/assets/{photo}/original") == 200
    await alice.call("DELETE", f"/albums/{album}/members/{bob.user_id}")
    for method, path, body in asset_routes(photo, s["carols"])[:7]:
        assert await status_of(bob, method, path, body) == 404, path
    assert await status_of(bob, "GET", f"/albums/{album}") == 404
    assert (await bob.call("GET", "/albums?scope=shared"))["data"]["total"] == 0
    # Shared again, then the album deleted: gone for the member too.
    await alice.call("POST", f"/albums/{album}/members", {"username": "bob", "role": "viewer"}, expect=201)
    assert await status_of(bob, "GET", f"/assets/{photo}") == 200
    await alice.call("DELETE", f"/albums/{album}")
    assert await status_of(bob, "GET", f"/assets/{photo}") == 404
    assert await status_of(bob, "GET", f"/albums/{album}/assets") == 404


async def test_a_member_may_leave(client, media):
    s = await scene(client, media)
    bob, album = s["bob"], s["album"]
    await bob.call("DELETE", f"/albums/{album}/members/{bob.user_id}")
    assert await status_of(bob, "GET", f"/albums/{album}") == 404
    assert await status_of(bob, "GET", f"/assets/{s['photo']}") == 404


async def test_an_editor_adds_and_removes_their_own_assets(client, media):
    s = await scene(client, media)
    alice, bob, album, photo = s["alice"], s["bob"], s["album"], s["photo"]
    dave = await register(client, "dave")
    changed = await alice.call("POST", f"/albums/{album}/members", {"username": "dave", "role": "editor"}, expect=201)
    assert {m["username"]: m["role"] for m in changed["data"]["members"]} == {"bob": "viewer", "dave": "editor"}
    mine, private = await upload(dave, media, "dave-1"), await upload(dave, media, "dave-2")
    await dave.call("POST", f"/albums/{album}/assets/{mine}")
    await processed(dave, [mine])
    assert [a["asset_id"] for a in (await alice.call("GET", f"/albums/{album}/assets"))["data"]["assets"]] == [
        photo, s["song"], mine]
    # The owner and the other members see what the editor added; nothing else of the editor's.
    for user in (alice, bob):
        assert await status_of(user, "GET", f"/assets/{mine}/thumbnail") == 200
        assert await status_of(user, "GET", f"/assets/{private}") == 404
    # An editor removes only their own; the owner keeps control of everything.
    assert await status_of(dave, "DELETE", f"/albums/{album}/assets/{photo}") == 403
    assert await status_of(dave, "PUT", f"/albums/{album}/assets/{mine}/position", {"position": 0}) == 404
    assert await status_of(dave, "POST", f"/albums/{album}/assets/{photo}") == 404  # not dave's asset
    await dave.call("DELETE", f"/albums/{album}/assets/{mine}")
    assert await status_of(alice, "GET", f"/assets/{mine}") == 404
    await dave.call("POST", f"/assets/{mine}/albums/{album}")
    await alice.call("DELETE", f"/albums/{album}/assets/{mine}")
    assert await status_of(bob, "GET", f"/assets/{mine}") == 404
    # A role change takes effect at once, both ways.
    await alice.call("PUT", f"/albums/{album}/members/{bob.user_id}", {"role": "editor"})
    bobs = await upload(bob, media, "bob-2")
    await bob.call("POST", f"/albums/{album}/assets/{bobs}")
    await alice.call("PUT", f"/albums/{album}/members/{bob.user_id}", {"role": "viewer"})
    assert await status_of(bob, "DELETE", f"/albums/{album}/assets/{bobs}") == 403


async def test_member_routes_refuse_bad_input(client, media):
    alice, bob, carol = await register(client, "alice"), await register(client, "bob"), await register(client, "carol")
    album = (await alice.call("POST", "/albums", {"album_name": "A"}, expect=201))["data"]["album_id"]
    url = f"/albums/{album}/members"
    for body, status in (
        ({"username": "nobody", "role": "viewer"}, 404),
        ({"username": "bob", "role": "admin"}, 400),
        ({"username": "bob"}, 400),
        ({"username": "bob", "role": "viewer", "extra": 1}, 400),
        ({"username": 7, "role": "viewer"}, 400),
        ({"username": "", "role": "viewer"}, 400),
        ({"username": "alice", "role": "viewer"}, 400),  # the owner is no member
        ("not an object", 400),
    ):
        assert await status_of(alice, "POST", url, body) == status, body
    await alice.call("POST", url, {"username": "BOB", "role": "viewer"}, expect=201)  # any letter case
    assert await status_of(alice, "POST", url, {"username": "bob", "role": "editor"}) == 409
    for bad in ("0", "-1", "abc", "1.5"):
        assert await status_of(alice, "POST", f"/albums/{bad}/members", {"username": "bob", "role": "viewer"}) == 400
        assert await status_of(alice, "PUT", f"{url}/{bad}", {"role": "viewer"}) == 400
        assert await status_of(alice, "DELETE", f"{url}/{bad}") == 400
    assert await status_of(alice, "POST", "/albums/999/members", {"username": "bob", "role": "viewer"}) == 404
    assert await status_of(alice, "PUT", f"{url}/{carol.user_id}", {"role": "viewer"}) == 404
    assert await status_of(alice, "PUT", f"{url}/{bob.user_id}", {"role": "owner"}) == 400
    assert await status_of(alice, "PUT", f"{url}/{bob.user_id}", {}) == 400
    assert await status_of(alice, "DELETE", f"{url}/{carol.user_id}") == 404
    assert await status_of(carol, "DELETE", f"{url}/{bob.user_id}") == 404
    assert await status_of(bob, "PUT", f"{url}/{bob.user_id}", {"role": "editor"}) == 403
    for scope in ("mine", "OWNED", ""):
        expected = 200 if scope == "" else 400
        assert await status_of(alice, "GET", f"/albums?scope={scope}") == expected, scope
    members = (await alice.call("GET", url))["data"]["members"]
    assert members == [{"user_id": bob.user_id, "username": "bob", "role": "viewer"}]


async def test_rebuild_keeps_members(client, services, media):
    s = await scene(client, media)
    await s["alice"].call("POST", f"/albums/{s['album']}/members", {"username": "carol", "role": "editor"}, expect=201)
    await s["alice"].call("PUT", f"/albums/{s['album']}/members/{s['carol'].user_id}", {"role": "viewer"})
    await s["alice"].call("DELETE", f"/albums/{s['album']}/members/{s['bob'].user_id}")
    live = services.db.query("SELECT * FROM album_members ORDER BY album_id, user_id")
    shares = services.db.query("SELECT * FROM album_shares ORDER BY album_id")
    assert [(r["user_id"], r["role"]) for r in live] == [(s["carol"].user_id, "viewer")]
    for name in ("album_members", "shared_links"):
        rebuild(services.app, services.db, PROJECTIONS[name], batch_size=3)
    assert services.db.query("SELECT * FROM album_members ORDER BY album_id, user_id") == live
    assert services.db.query("SELECT * FROM album_shares ORDER BY album_id") == shares
    assert await status_of(s["carol"], "GET", f"/assets/{s['photo']}") == 200
    assert await status_of(s["bob"], "GET", f"/assets/{s['photo']}") == 404


async def test_search_within_a_shared_album(client, media):
    s = await scene(client, media)
    alice, bob, carol, album = s["alice"], s["bob"], s["carol"], s["album"]
    found = (await bob.call("POST", "/assets/filter", {"filter": {"album_id": album}}))["data"]
    assert {a["asset_id"] for a in found["assets"]} == {s["photo"], s["song"]} and found["total"] == 2
    found = (await bob.call("POST", "/assets/filter", {"filter": {"album_id": album, "type": "AUDIO"}}))["data"]
    assert [a["asset_id"] for a in found["assets"]] == [s["song"]]
    found = (await bob.call("POST", "/assets/search", {"query": "in-album", "search_type": "filename",
                                                       "filter": {"album_id": album}}))["data"]
    assert [a["asset_id"] for a in found["assets"]] == [s["photo"]]
    # The album's own owner searches it the same way; a stranger and an unknown album get 404.
    assert (await alice.call("POST", "/assets/filter", {"filter": {"album_id": album}}))["data"]["total"] == 2
    for user, album_id in ((carol, album), (bob, s["carols"]), (bob, 999)):
        assert await status_of(user, "POST", "/assets/filter", {"filter": {"album_id": album_id}}) == 404
    for bad in (0, -1, "1", 1.5):
        assert await status_of(bob, "POST", "/assets/filter", {"filter": {"album_id": bad}}) == 400, bad
    # Words (file names, OCR, tags...) within the album: alice's photo for bob; her private photo,
    # outside the album, never, even though its name matches.
    found = (await bob.call("POST", "/assets/search", {"query": "album private chirp", "search_type": "text",
                                                       "filter": {"album_id": album}}))["data"]
    assert {a["asset_id"] for a in found["assets"]} == {s["photo"], s["song"]} and found["total"] == 2
    assert all(a["score"] > 0 for a in found["assets"])
    found = (await bob.call("POST", "/assets/search", {"query": "album", "search_type": "text",
                                                       "filter": {"album_id": album, "type": "AUDIO"}}))["data"]
    assert found["total"] == 0
    found = (await alice.call("POST", "/assets/search", {"query": "private", "search_type": "text",
                                                         "filter": {"album_id": album}}))["data"]
    assert found["total"] == 0
    for user, album_id in ((carol, album), (bob, s["carols"]), (bob, 999)):
        for kind in ("text", "semantic"):
            assert await status_of(user, "POST", "/assets/search", {"query": "album", "search_type": kind,
                                                                    "filter": {"album_id": album_id}}) == 404
    # Semantic search within the album goes as far as the model: this server has none (503).
    assert await status_of(bob, "POST", "/assets/search", {"query": "x", "search_type": "semantic",
                                                          "filter": {"album_id": album}}) == 503
    await alice.call("DELETE", f"/albums/{album}/members/{bob.user_id}")
    assert await status_of(bob, "POST", "/assets/filter", {"filter": {"album_id": album}}) == 404
