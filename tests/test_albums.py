"""Album endpoints through HTTP, with the inputs a real (and a careless) client sends.

Every test runs on SQLite and on PostgreSQL (the `client` fixture). Positions are checked through
the `position` field of GET /albums/{id}/assets, read in order: they must always be 0..n-1.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.helpers import API, User, photos, register

ALBUM_FIELDS = {
    "album_id", "user_id", "album_name", "description", "cover_asset_id", "asset_count",
    "created_at", "updated_at",
}
BAD_ALBUM_IDS = ["0", "-1", "abc", "1.5", "01x"]


# -- helpers ---------------------------------------------------------------------------------





async def new_album(user: User, name: str = "Holiday", **extra: Any) -> dict[str, Any]:
    body = await user.call("POST", "/albums", {"album_name": name, **extra}, expect=201)
    return body["data"]


async def members(user: User, album_id: int) -> list[str]:
    """Asset ids of an album in order, after checking that positions are exactly 0..n-1."""
    assets = (await user.call("GET", f"/albums/{album_id}/assets"))["data"]["assets"]
    assert [a["position"] for a in assets] == list(range(len(assets))), assets
    return [a["asset_id"] for a in assets]


async def album_total(user: User) -> int:
    return (await user.call("GET", "/albums"))["data"]["total"]


def assert_error(body: dict[str, Any], status: int, field: str | None = None) -> None:
    """A failure envelope: real status, same code, no data, and the offending field named."""
    assert body["_status"] == status, body
    assert body["code"] == status, body
    assert "data" not in body or body["data"] is None, body
    if field is not None:
        assert field in (body.get("error", "") + " " + body.get("message", "")), body


# -- create ----------------------------------------------------------------------------------


async def test_create_answers_the_album_object(client, media):
    """POST /albums answers 201 with the whole album; a fresh album is empty."""
    alice = await register(client, "alice")
    body = await alice.call("POST", "/albums", {"album_name": "Rome", "description": "spring"},
                            expect=201)
    assert body["code"] == 0
    album = body["data"]
    assert set(album) == ALBUM_FIELDS
    assert album["user_id"] == alice.user_id
    assert album["album_name"] == "Rome"
    assert album["description"] == "spring"
    assert album["cover_asset_id"] is None
    assert album["asset_count"] == 0
    assert isinstance(album["album_id"], int) and album["album_id"] >= 1
    assert album["created_at"] and album["updated_at"]
    fetched = await alice.call("GET", f"/albums/{album['album_id']}")
    assert fetched["data"] == album


async def test_create_with_a_cover_of_ones_own_asset(client, media):
    """A cover is one of the creator's assets, kept as given."""
    alice = await register(client, "alice")
    [asset] = await photos(alice, media, 1)
    album = await new_album(alice, cover_asset_id=asset)
    assert album["cover_asset_id"] == asset
    assert album["asset_count"] == 0  # a cover is not a member


async def test_album_ids_are_consecutive_integers_across_users(client):
    """Album ids come from one sequence: 1, 2, 3 for alice, then 4 for bob."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    ids = [(await new_album(alice, f"a{i}"))["album_id"] for i in range(3)]
    ids.append((await new_album(bob, "b"))["album_id"])
    assert ids == [1, 2, 3, 4]


async def test_longest_allowed_name_is_accepted(client):
    """255 characters is the limit, inclusive."""
    alice = await register(client, "alice")
    album = await new_album(alice, "n" * 255)
    assert album["album_name"] == "n" * 255


@pytest.mark.parametrize(("body", "field"), [
    ({}, "album_name"),
    ({"album_name": ""}, "album_name"),
    ({"album_name": "   "}, "album_name"),
    ({"album_name": "x" * 256}, "album_name"),
    ({"album_name": None}, "album_name"),
    ({"album_name": 42}, "album_name"),
    ({"album_name": ["Rome"]}, "album_name"),
    ({"album_name": "Rome", "owner": 2}, "owner"),
    ({"album_name": "Rome", "user_id": 2}, "user_id"),
    ({"album_name": "Rome", "description": 7}, "description"),
    ({"album_name": "Rome", "description": "d" * 10_001}, "description"),
    ({"album_name": "Rome", "cover_asset_id": 12}, "cover_asset_id"),
    ({"album_name": "Rome", "cover_asset_id": "not-a-uuid"}, "cover_asset_id"),
    ({"album_name": "Rome", "cover_asset_id": str(uuid.uuid4())}, "cover_asset_id"),
], ids=[
    "missing-name", "empty-name", "blank-name", "name-too-long", "null-name", "int-name",
    "list-name", "extra-field", "extra-user_id", "int-description", "description-too-long",
    "int-cover", "malformed-cover", "unknown-cover",
])
async def test_create_rejects_bad_bodies_and_creates_nothing(client, body, field):
    """Each bad body is a 400 naming the field, and the album list is unchanged."""
    alice = await register(client, "alice")
    await new_album(alice, "existing")
    resp = await alice.call("POST", "/albums", body, expect=None)
    assert_error(resp, 400, field)
    assert await album_total(alice) == 1
    # The failed create did not consume an album id either.
    assert (await new_album(alice, "next"))["album_id"] == 2


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"Rome"', b"{\"album_name\": "])
async def test_create_rejects_bodies_that_are_not_a_json_object(client, raw):
    """Garbage, arrays, strings and truncated JSON are 400, never 500."""
    alice = await register(client, "alice")
    resp = await client.post(f"{API}/albums", data=raw,
                             headers={**alice.headers, "Content-Type": "application/json"})
    body = await resp.json()
    assert resp.status == 400, body
    assert body["code"] == 400
    assert await album_total(alice) == 0


async def test_cover_must_be_the_users_own_undeleted_asset(client, media):
    """Another user's asset, or one's own deleted asset, is not a valid cover (400)."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    [bobs] = await photos(bob, media, 1)
    [gone] = await photos(alice, media, 1)
    await alice.call("DELETE", f"/assets/{gone}")
    for cover in (bobs, gone):
        resp = await alice.call("POST", "/albums", {"album_name": "x", "cover_asset_id": cover},
                                expect=None)
        assert_error(resp, 400, "cover_asset_id")
    assert await album_total(alice) == 0


async def test_requests_without_a_token_are_401(client):
    """Albums are private: no bearer token, no access."""
    resp = await client.get(f"{API}/albums")
    assert resp.status == 401
    resp = await client.post(f"{API}/albums", json={"album_name": "x"})
    assert resp.status == 401
    assert (await resp.json())["code"] == 401


# -- list, get -------------------------------------------------------------------------------


async def test_list_pages_with_limit_offset_and_total(client):
    """The list is ordered by id and paged; total counts all of the user's albums."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    for i in range(5):
        await new_album(alice, f"a{i}")
    await new_album(bob, "bob's")

    page = (await alice.call("GET", "/albums?limit=2&offset=0"))["data"]
    assert (page["limit"], page["offset"], page["total"]) == (2, 0, 5)
    assert [a["album_name"] for a in page["albums"]] == ["a0", "a1"]

    page = (await alice.call("GET", "/albums?limit=2&offset=2"))["data"]
    assert [a["album_name"] for a in page["albums"]] == ["a2", "a3"]

    page = (await alice.call("GET", "/albums?limit=2&offset=4"))["data"]
    assert [a["album_name"] for a in page["albums"]] == ["a4"]
    assert page["total"] == 5

    page = (await alice.call("GET", "/albums?offset=50"))["data"]
    assert page["albums"] == [] and page["total"] == 5

    page = (await alice.call("GET", "/albums"))["data"]
    assert page["limit"] == 20 and page["offset"] == 0 and len(page["albums"]) == 5
    assert all(set(a) == ALBUM_FIELDS for a in page["albums"])

    page = (await alice.call("GET", "/albums?limit=1000"))["data"]
    assert page["limit"] == 100


@pytest.mark.parametrize("query", ["limit=abc", "offset=-1", "limit=0", "limit=-5", "offset=x"])
async def test_list_rejects_bad_paging(client, query):
    """Paging parameters that are not sensible integers are 400."""
    alice = await register(client, "alice")
    resp = await alice.call("GET", f"/albums?{query}", expect=None)
    assert_error(resp, 400, query.split("=")[0])


# -- update ----------------------------------------------------------------------------------


async def test_update_changes_only_the_given_fields(client, media):
    """A PUT changes exactly the fields sent; updated_at moves, created_at does not."""
    alice = await register(client, "alice")
    first, second = await photos(alice, media, 2)
    album = await new_album(alice, "Rome", description="spring", cover_asset_id=first)

    renamed = (await alice.call("PUT", f"/albums/{album['album_id']}", {"album_name": "Roma"}))["data"]
    assert renamed["album_name"] == "Roma"
    assert renamed["description"] == "spring"
    assert renamed["cover_asset_id"] == first
    assert renamed["created_at"] == album["created_at"]
    assert renamed["updated_at"] > album["updated_at"]

    described = (await alice.call("PUT", f"/albums/{album['album_id']}", {"description": "autumn"}))["data"]
    assert (described["album_name"], described["description"], described["cover_asset_id"]) == (
        "Roma", "autumn", first)
    assert described["updated_at"] > renamed["updated_at"]

    recovered = (await alice.call("PUT", f"/albums/{album['album_id']}", {"cover_asset_id": second}))["data"]
    assert (recovered["album_name"], recovered["description"], recovered["cover_asset_id"]) == (
        "Roma", "autumn", second)

    cleared = (await alice.call("PUT", f"/albums/{album['album_id']}",
                                {"cover_asset_id": None, "description": None}))["data"]
    assert (cleared["album_name"], cleared["description"], cleared["cover_asset_id"]) == (
        "Roma", None, None)

    fetched = (await alice.call("GET", f"/albums/{album['album_id']}"))["data"]
    assert fetched == cleared


@pytest.mark.parametrize(("body", "field"), [
    ({"album_name": ""}, "album_name"),
    ({"album_name": "  "}, "album_name"),
    ({"album_name": "x" * 256}, "album_name"),
    ({"album_name": 3}, "album_name"),
    ({"description": ["x"]}, "description"),
    ({"cover_asset_id": "nope"}, "cover_asset_id"),
    ({"cover_asset_id": str(uuid.uuid4())}, "cover_asset_id"),
    ({"album_name": "ok", "asset_count": 9}, "asset_count"),
], ids=["empty-name", "blank-name", "long-name", "int-name", "list-description",
        "malformed-cover", "unknown-cover", "extra-field"])
async def test_update_rejects_bad_bodies_and_changes_nothing(client, body, field):
    """A bad update is 400 and leaves the album exactly as it was."""
    alice = await register(client, "alice")
    album = await new_album(alice, "Rome", description="spring")
    resp = await alice.call("PUT", f"/albums/{album['album_id']}", body, expect=None)
    assert_error(resp, 400, field)
    assert (await alice.call("GET", f"/albums/{album['album_id']}"))["data"] == album


async def test_update_cover_to_another_users_asset_is_400(client, media):
    """Even a valid asset id is refused as a cover when it is someone else's."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    [bobs] = await photos(bob, media, 1)
    album = await new_album(alice)
    resp = await alice.call("PUT", f"/albums/{album['album_id']}", {"cover_asset_id": bobs}, expect=None)
    assert_error(resp, 400, "cover_asset_id")
    assert (await alice.call("GET", f"/albums/{album['album_id']}"))["data"]["cover_asset_id"] is None


# -- delete ----------------------------------------------------------------------------------


async def test_delete_removes_the_album_but_not_its_assets(client, media):
    """After DELETE the album is 404 and unlisted; its assets are still there and albumless."""
    alice = await register(client, "alice")
    assets = await photos(alice, media, 2)
    keep = await new_album(alice, "keep")
    doomed = await new_album(alice, "doomed")
    for a in assets:
        await alice.call("POST", f"/albums/{doomed['album_id']}/assets/{a}")
    await alice.call("POST", f"/albums/{keep['album_id']}/assets/{assets[0]}")

    body = await alice.call("DELETE", f"/albums/{doomed['album_id']}")
    assert body["code"] == 0

    assert_error(await alice.call("GET", f"/albums/{doomed['album_id']}", expect=None), 404)
    assert_error(await alice.call("GET", f"/albums/{doomed['album_id']}/assets", expect=None), 404)
    listed = (await alice.call("GET", "/albums"))["data"]
    assert [a["album_id"] for a in listed["albums"]] == [keep["album_id"]]
    assert listed["total"] == 1

    for a in assets:
        asset = (await alice.call("GET", f"/assets/{a}"))["data"]
        assert asset["is_deleted"] is False
    in_albums = (await alice.call("GET", f"/assets/{assets[0]}/albums"))["data"]["albums"]
    assert [a["album_id"] for a in in_albums] == [keep["album_id"]]
    assert (await alice.call("GET", f"/assets/{assets[1]}/albums"))["data"]["albums"] == []
    assert await members(alice, keep["album_id"]) == [assets[0]]


async def test_a_deleted_album_cannot_be_changed_or_deleted_again(client, media):
    """Every operation on a deleted album is 404."""
    alice = await register(client, "alice")
    [a] = await photos(alice, media, 1)
    album = await new_album(alice)
    aid = album["album_id"]
    await alice.call("DELETE", f"/albums/{aid}")
    assert_error(await alice.call("DELETE", f"/albums/{aid}", expect=None), 404)
    assert_error(await alice.call("PUT", f"/albums/{aid}", {"album_name": "x"}, expect=None), 404)
    assert_error(await alice.call("POST", f"/albums/{aid}/assets/{a}", expect=None), 404)
    assert_error(await alice.call("POST", f"/assets/{a}/albums/{aid}", expect=None), 404)
    assert (await alice.call("GET", f"/assets/{a}/albums"))["data"]["albums"] == []


# -- membership and order ----------------------------------------------------------------------


async def test_both_add_routes_append(client, media):
    """POST /albums/{id}/assets/{asset} and POST /assets/{asset}/albums/{id} both append."""
    alice = await register(client, "alice")
    a, b, c = await photos(alice, media, 3)
    aid = (await new_album(alice))["album_id"]
    await alice.call("POST", f"/albums/{aid}/assets/{a}")
    await alice.call("POST", f"/assets/{b}/albums/{aid}")
    await alice.call("POST", f"/albums/{aid}/assets/{c}", {})
    assert await members(alice, aid) == [a, b, c]
    assert (await alice.call("GET", f"/albums/{aid}"))["data"]["asset_count"] == 3


async def test_add_at_a_position_inserts_and_shifts(client, media):
    """A given position inserts there; the assets from that position on shift up by one."""
    alice = await register(client, "alice")
    a, b, c, d, e, f = await photos(alice, media, 6)
    aid = (await new_album(alice))["album_id"]
    for x in (a, b, c):
        await alice.call("POST", f"/albums/{aid}/assets/{x}")
    await alice.call("POST", f"/albums/{aid}/assets/{d}", {"position": 1})
    assert await members(alice, aid) == [a, d, b, c]
    await alice.call("POST", f"/albums/{aid}/assets/{e}", {"position": 0})
    assert await members(alice, aid) == [e, a, d, b, c]
    await alice.call("POST", f"/albums/{aid}/assets/{f}", {"position": 5})  # == n: the end
    assert await members(alice, aid) == [e, a, d, b, c, f]


async def test_adding_an_asset_twice_is_409(client, media):
    """An asset is in an album at most once, whichever route tries to add it again."""
    alice = await register(client, "alice")
    a, b = await photos(alice, media, 2)
    aid = (await new_album(alice))["album_id"]
    await alice.call("POST", f"/albums/{aid}/assets/{a}")
    await alice.call("POST", f"/albums/{aid}/assets/{b}")
    assert_error(await alice.call("POST", f"/albums/{aid}/assets/{a}", expect=None), 409)
    assert_error(await alice.call("POST", f"/assets/{a}/albums/{aid}", expect=None), 409)
    assert_error(await alice.call("POST", f"/albums/{aid}/assets/{b}", {"position": 0}, expect=None), 409)
    assert await members(alice, aid) == [a, b]
    assert (await alice.call("GET", f"/albums/{aid}"))["data"]["asset_count"] == 2


@pytest.mark.parametrize("position", [3, 4, 1000, -1, "1", 1.5, True, None])
async def test_add_at_a_bad_position_is_400(client, media, position):
    """Positions beyond n, negative ones and non-integers are 400; nothing is added."""
    alice = await register(client, "alice")
    a, b, x = await photos(alice, media, 3)
    aid = (await new_album(alice))["album_id"]
    await alice.call("POST", f"/albums/{aid}/assets/{a}")
    await alice.call("POST", f"/albums/{aid}/assets/{b}")
    if position is None:  # explicit null means "append", which is fine: check it separately
        await alice.call("POST", f"/albums/{aid}/assets/{x}", {"position": None})
        assert await members(alice, aid) == [a, b, x]
        return
    resp = await alice.call("POST", f"/albums/{aid}/assets/{x}", {"position": position}, expect=None)
    assert_error(resp, 400, "position")
    assert await members(alice, aid) == [a, b]


async def test_add_with_an_unknown_body_field_is_400(client, media):
    """The add body accepts only `position`."""
    alice = await register(client, "alice")
    [a] = await photos(alice, media, 1)
    aid = (await new_album(alice))["album_id"]
    resp = await alice.call("POST", f"/albums/{aid}/assets/{a}", {"pos": 0}, expect=None)
    assert_error(resp, 400, "pos")
    assert await members(alice, aid) == []


async def test_remove_shifts_later_assets_down(client, media):
    """Removing an asset closes the gap; removing one that is not there is 404."""
    alice = await register(client, "alice")
    a, b, c, d = await photos(alice, media, 4)
    aid = (await new_album(alice))["album_id"]
    for x in (a, b, c, d):
        await alice.call("POST", f"/albums/{aid}/assets/{x}")
    await alice.call("DELETE", f"/albums/{aid}/assets/{b}")
    assert await members(alice, aid) == [a, c, d]
    await alice.call("DELETE", f"/albums/{aid}/assets/{d}")
    assert await members(alice, aid) == [a, c]
    assert_error(await alice.call("DELETE", f"/albums/{aid}/assets/{b}", expect=None), 404)
    assert_error(await alice.call("DELETE", f"/albums/{aid}/assets/{uuid.uuid4()}", expect=None), 404)
    assert (await alice.call("GET", f"/albums/{aid}"))["data"]["asset_count"] == 2
    # The removed asset can come back, appended.
    await alice.call("POST", f"/albums/{aid}/assets/{b}")
    assert await members(alice, aid) == [a, c, b]
    # And the asset itself was never touched.
    assert (await alice.call("GET", f"/assets/{d}"))["data"]["is_deleted"] is False


async def test_move_shifts_the_others_and_keeps_positions_dense(client, media):
    """PUT .../position moves forward and backward; positions stay 0..n-1 throughout."""
    alice = await register(client, "alice")
    a, b, c, d, e = await photos(alice, media, 5)
    aid = (await new_album(alice))["album_id"]
    for x in (a, b, c, d, e):
        await alice.call("POST", f"/albums/{aid}/assets/{x}")

    async def move(asset: str, position: int) -> list[str]:
        await alice.call("PUT", f"/albums/{aid}/assets/{asset}/position", {"position": position})
        return await members(alice, aid)

    assert await move(a, 3) == [b, c, d, a, e]
    assert await move(e, 0) == [e, b, c, d, a]
    assert await move(a, 4) == [e, b, c, d, a]  # already there: no change
    assert await move(c, 1) == [e, c, b, d, a]
    assert await move(e, 4) == [c, b, d, a, e]
    assert await move(d, 2) == [c, b, d, a, e]
    # Removing after moves still leaves a dense order.
    await alice.call("DELETE", f"/albums/{aid}/assets/{b}")
    assert await members(alice, aid) == [c, d, a, e]
    assert await move(c, 3) == [d, a, e, c]


@pytest.mark.parametrize("body", [
    {"position": 3}, {"position": 99}, {"position": -1}, {"position": "0"}, {"position": 0.5},
    {"position": None}, {"position": False}, {}, {"position": 1, "extra": 1},
], ids=["n", "far", "negative", "string", "float", "null", "bool", "missing", "extra-field"])
async def test_move_to_a_bad_position_is_400(client, media, body):
    """Only an integer in 0..n-1 is a position to move to; the order is unchanged otherwise."""
    alice = await register(client, "alice")
    a, b, c = await photos(alice, media, 3)
    aid = (await new_album(alice))["album_id"]
    for x in (a, b, c):
        await alice.call("POST", f"/albums/{aid}/assets/{x}")
    resp = await alice.call("PUT", f"/albums/{aid}/assets/{b}/position", body, expect=None)
    assert_error(resp, 400)
    assert await members(alice, aid) == [a, b, c]


async def test_move_without_a_body_is_400(client, media):
    """An empty request body is not a position."""
    alice = await register(client, "alice")
    [a] = await photos(alice, media, 1)
    aid = (await new_album(alice))["album_id"]
    await alice.call("POST", f"/albums/{aid}/assets/{a}")
    resp = await alice.call("PUT", f"/albums/{aid}/assets/{a}/position", expect=None)
    assert_error(resp, 400)


async def test_moving_an_asset_that_is_not_in_the_album_is_404(client, media):
    """Own asset outside the album, unknown asset, malformed id: all 404, order unchanged."""
    alice = await register(client, "alice")
    a, b, outsider = await photos(alice, media, 3)
    aid = (await new_album(alice))["album_id"]
    await alice.call("POST", f"/albums/{aid}/assets/{a}")
    await alice.call("POST", f"/albums/{aid}/assets/{b}")
    for asset in (outsider, str(uuid.uuid4()), "not-a-uuid"):
        resp = await alice.call("PUT", f"/albums/{aid}/assets/{asset}/position", {"position": 0},
                                expect=None)
        assert_error(resp, 404)
    assert await members(alice, aid) == [a, b]


# -- asset side: albums of an asset, counts, soft delete ----------------------------------------


async def test_albums_of_an_asset(client, media):
    """GET /assets/{id}/albums lists exactly the user's albums that hold the asset."""
    alice = await register(client, "alice")
    a, b = await photos(alice, media, 2)
    one, two, three = [(await new_album(alice, n))["album_id"] for n in ("one", "two", "three")]
    await alice.call("POST", f"/albums/{one}/assets/{a}")
    await alice.call("POST", f"/assets/{a}/albums/{three}")
    await alice.call("POST", f"/albums/{two}/assets/{b}")
    await alice.call("POST", f"/albums/{three}/assets/{b}")

    albums = (await alice.call("GET", f"/assets/{a}/albums"))["data"]["albums"]
    assert [x["album_id"] for x in albums] == [one, three]
    assert all(set(x) == ALBUM_FIELDS for x in albums)
    assert {x["album_id"]: x["asset_count"] for x in albums} == {one: 1, three: 2}

    await alice.call("DELETE", f"/albums/{three}/assets/{a}")
    albums = (await alice.call("GET", f"/assets/{a}/albums"))["data"]["albums"]
    assert [x["album_id"] for x in albums] == [one]

    # The asset page embeds the same list.
    asset = (await alice.call("GET", f"/assets/{b}"))["data"]
    assert [x["album_id"] for x in asset["albums"]] == [two, three]


async def test_albums_of_an_unknown_asset_is_404(client):
    """Unknown or malformed asset ids are not found."""
    alice = await register(client, "alice")
    assert_error(await alice.call("GET", f"/assets/{uuid.uuid4()}/albums", expect=None), 404)
    assert_error(await alice.call("GET", "/assets/nope/albums", expect=None), 404)


async def test_asset_count_follows_adds_and_removes(client, media):
    """asset_count on get, list and albums-of-asset counts the members."""
    alice = await register(client, "alice")
    assets = await photos(alice, media, 3)
    aid = (await new_album(alice))["album_id"]
    for n, a in enumerate(assets, start=1):
        await alice.call("POST", f"/albums/{aid}/assets/{a}")
        assert (await alice.call("GET", f"/albums/{aid}"))["data"]["asset_count"] == n
    listed = (await alice.call("GET", "/albums"))["data"]["albums"]
    assert listed[0]["asset_count"] == 3
    await alice.call("DELETE", f"/albums/{aid}/assets/{assets[0]}")
    assert (await alice.call("GET", f"/albums/{aid}"))["data"]["asset_count"] == 2
    of_asset = (await alice.call("GET", f"/assets/{assets[1]}/albums"))["data"]["albums"]
    assert of_asset[0]["asset_count"] == 2


async def test_a_soft_deleted_asset_leaves_album_listings_and_counts(client, media):
    """Deleting an asset hides it from every album's assets and asset_count."""
    alice = await register(client, "alice")
    a, b, c = await photos(alice, media, 3)
    first = (await new_album(alice, "first"))["album_id"]
    second = (await new_album(alice, "second"))["album_id"]
    for x in (a, b, c):
        await alice.call("POST", f"/albums/{first}/assets/{x}")
    await alice.call("POST", f"/albums/{second}/assets/{b}")

    await alice.call("DELETE", f"/assets/{b}")

    listed = (await alice.call("GET", f"/albums/{first}/assets"))["data"]["assets"]
    assert [x["asset_id"] for x in listed] == [a, c]
    assert (await alice.call("GET", f"/albums/{first}"))["data"]["asset_count"] == 2
    assert (await alice.call("GET", f"/albums/{second}"))["data"]["asset_count"] == 0
    assert (await alice.call("GET", f"/albums/{second}/assets"))["data"]["assets"] == []
    page = (await alice.call("GET", "/albums"))["data"]["albums"]
    assert {x["album_id"]: x["asset_count"] for x in page} == {first: 2, second: 0}


async def test_album_positions_stay_dense_after_a_member_is_soft_deleted(client, media):
    """The listing a client sees after an asset is deleted still numbers positions 0..n-1,
    and moving to the last listed position works."""
    alice = await register(client, "alice")
    a, b, c = await photos(alice, media, 3)
    aid = (await new_album(alice))["album_id"]
    for x in (a, b, c):
        await alice.call("POST", f"/albums/{aid}/assets/{x}")
    await alice.call("DELETE", f"/assets/{a}")
    assert await members(alice, aid) == [b, c]
    await alice.call("PUT", f"/albums/{aid}/assets/{b}/position", {"position": 1})
    assert await members(alice, aid) == [c, b]


async def test_a_deleted_asset_cannot_be_added(client, media):
    """Adding a soft-deleted asset is refused and the album stays empty."""
    alice = await register(client, "alice")
    [a] = await photos(alice, media, 1)
    aid = (await new_album(alice))["album_id"]
    await alice.call("DELETE", f"/assets/{a}")
    for path in (f"/albums/{aid}/assets/{a}", f"/assets/{a}/albums/{aid}"):
        resp = await alice.call("POST", path, expect=None)
        assert resp["_status"] in (404, 409), resp
        assert resp["code"] == resp["_status"]
    assert (await alice.call("GET", f"/albums/{aid}"))["data"]["asset_count"] == 0
    assert await members(alice, aid) == []


# -- isolation and ids -------------------------------------------------------------------------


async def test_another_users_album_is_404_for_everything(client, media):
    """Bob cannot see, change, delete, fill, empty or reorder Alice's album."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    [mine] = await photos(alice, media, 1)
    [bobs] = await photos(bob, media, 1)
    album = await new_album(alice, "private", description="secret")
    aid = album["album_id"]
    await alice.call("POST", f"/albums/{aid}/assets/{mine}")
    before = (await alice.call("GET", f"/albums/{aid}"))["data"]

    attempts = [
        ("GET", f"/albums/{aid}", None),
        ("PUT", f"/albums/{aid}", {"album_name": "pwned"}),
        ("DELETE", f"/albums/{aid}", None),
        ("GET", f"/albums/{aid}/assets", None),
        ("POST", f"/albums/{aid}/assets/{bobs}", None),
        ("POST", f"/assets/{bobs}/albums/{aid}", None),
        ("DELETE", f"/albums/{aid}/assets/{mine}", None),
        ("PUT", f"/albums/{aid}/assets/{mine}/position", {"position": 0}),
        ("GET", f"/assets/{mine}/albums", None),
    ]
    for method, path, body in attempts:
        resp = await bob.call(method, path, body, expect=None)
        assert_error(resp, 404)
        assert "private" not in str(resp) and "secret" not in str(resp), (method, path, resp)

    listed = (await bob.call("GET", "/albums"))["data"]
    assert listed["albums"] == [] and listed["total"] == 0
    assert (await bob.call("GET", f"/assets/{bobs}/albums"))["data"]["albums"] == []
    assert (await alice.call("GET", f"/albums/{aid}"))["data"] == before
    assert await members(alice, aid) == [mine]


async def test_adding_another_users_asset_to_your_album_is_404(client, media):
    """Alice cannot put Bob's asset in her album by either route."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    [bobs] = await photos(bob, media, 1)
    aid = (await new_album(alice))["album_id"]
    assert_error(await alice.call("POST", f"/albums/{aid}/assets/{bobs}", expect=None), 404)
    assert_error(await alice.call("POST", f"/albums/{aid}/assets/{bobs}", {"position": 0}, expect=None), 404)
    assert_error(await alice.call("POST", f"/assets/{bobs}/albums/{aid}", expect=None), 404)
    assert await members(alice, aid) == []
    assert (await bob.call("GET", f"/assets/{bobs}/albums"))["data"]["albums"] == []


@pytest.mark.parametrize("bad", BAD_ALBUM_IDS)
async def test_album_ids_that_are_not_positive_integers_are_400(client, media, bad):
    """0, -1, abc, ... in the album id position are 400 on every album route."""
    alice = await register(client, "alice")
    [a] = await photos(alice, media, 1)
    attempts = [
        ("GET", f"/albums/{bad}", None),
        ("PUT", f"/albums/{bad}", {"album_name": "x"}),
        ("DELETE", f"/albums/{bad}", None),
        ("GET", f"/albums/{bad}/assets", None),
        ("POST", f"/albums/{bad}/assets/{a}", None),
        ("DELETE", f"/albums/{bad}/assets/{a}", None),
        ("PUT", f"/albums/{bad}/assets/{a}/position", {"position": 0}),
        ("POST", f"/assets/{a}/albums/{bad}", None),
    ]
    for method, path, body in attempts:
        resp = await alice.call(method, path, body, expect=None)
        assert resp["_status"] == 400, (method, path, resp)
        assert resp["code"] == 400


async def test_unknown_album_and_unknown_asset_are_404(client, media):
    """An album id nobody has, and asset ids nobody has (or malformed), are 404."""
    alice = await register(client, "alice")
    [a] = await photos(alice, media, 1)
    aid = (await new_album(alice))["album_id"]
    for method, path, body in [
        ("GET", "/albums/999", None),
        ("PUT", "/albums/999", {"album_name": "x"}),
        ("DELETE", "/albums/999", None),
        ("GET", "/albums/999/assets", None),
        ("POST", f"/albums/999/assets/{a}", None),
        ("POST", f"/assets/{a}/albums/999", None),
        ("DELETE", f"/albums/999/assets/{a}", None),
        ("PUT", f"/albums/999/assets/{a}/position", {"position": 0}),
        ("POST", f"/albums/{aid}/assets/{uuid.uuid4()}", None),
        ("POST", f"/assets/{uuid.uuid4()}/albums/{aid}", None),
        ("POST", f"/albums/{aid}/assets/not-a-uuid", None),
        ("POST", f"/assets/not-a-uuid/albums/{aid}", None),
    ]:
        resp = await alice.call(method, path, body, expect=None)
        assert_error(resp, 404)
    assert await members(alice, aid) == []
