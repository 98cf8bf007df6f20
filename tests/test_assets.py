"""Asset endpoints through HTTP, on both backends: upload, list, show, edit, rate, like, delete, original.

Batch upload, filter, search, thumbnails, web video/audio, reprocess and stats are covered elsewhere.
"""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from blake3 import blake3

from tests.helpers import API, User, register

# Small real files, one per type, so uploads stay quick.
PHOTO = "photo/apple_iphone_xr_1x1px_gps.jpg"
PHOTO_2 = "photo/apple_iphone_4_gps.jpg"
PHOTO_3 = "photo/canon_eos_rebel_t3i_lens.jpg"
VIDEO = "video/mpeg4_amr.3gp"
AUDIO = "audio/aac_itunes_tags.m4a"
DOCUMENT = "document/acrobat_distiller_title_author.pdf"

ASSET_DTO_FIELDS = {
    "asset_id", "owner_id", "type", "original_filename", "mime_type", "file_size", "hash", "width",
    "height", "duration", "taken_time", "upload_time", "rating", "liked", "description",
    "repository_id", "storage_path", "is_deleted", "deleted_at", "status", "specific_metadata",
}


# -- helpers ---------------------------------------------------------------------------------


def b3(content: bytes) -> str:
    return blake3(content).hexdigest()


async def upload(user: User, media: Path, rel: str, expect: int = 201, **kwargs: Any) -> dict[str, Any]:
    """Upload a corpus file and return the response's `data`."""
    body = await user.upload(media / rel, expect=expect, **kwargs)
    return body["data"]


async def get_asset(user: User, asset_id: str, expect: int = 200, query: str = "") -> dict[str, Any]:
    return await user.call("GET", f"/assets/{asset_id}{query}", expect=expect)


async def listed_ids(user: User, query: str) -> list[str]:
    body = await user.call("GET", f"/assets?{query}")
    return [a["asset_id"] for a in body["data"]["assets"]]


async def post_multipart(user: User | None, client: Any, parts: list[tuple[str, bytes | str, str | None]],
                         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """POST /assets with exactly these multipart parts: (field name, value, filename or None)."""
    writer = aiohttp.MultipartWriter("form-data")
    for name, value, filename in parts:
        payload = writer.append(value if isinstance(value, bytes) else value.encode(),
                                {"Content-Type": "application/octet-stream" if filename else "text/plain"})
        payload.set_content_disposition("form-data", name=name, **({"filename": filename} if filename else {}))
    all_headers = {**(user.headers if user else {}), **(headers or {})}
    resp = await client.post(f"{API}/assets", data=writer, headers=all_headers)
    return resp.status, await resp.json()


def stored_files(services: Any) -> list[str]:
    files: list[str] = []
    for root in services.storage.repositories.values():
        files += sorted(str(p) for p in root.rglob("*") if p.is_file())
    return files


async def snapshot(user: User, services: Any) -> dict[str, Any]:
    """What a rejected upload must leave alone: the user's assets, staging, stored originals."""
    return {
        "assets": sorted(await listed_ids(user, f"owner_id={user.user_id}&limit=100")),
        "staging": sorted(p.name for p in services.storage.staging.iterdir()),
        "stored": stored_files(services),
    }


def assert_failure(body: dict[str, Any], status: int) -> None:
    """A failure envelope: non-zero code, a message, and (for bad input) an error detail."""
    assert body["code"] != 0, body
    assert body["message"], body
    assert "data" not in body or body["data"] is None, body
    if status == 400:
        assert body.get("error"), body


# -- POST /assets ----------------------------------------------------------------------------


async def test_upload_answers_asset_id_hash_size_and_name(client, services, media):
    """A fresh upload is 201 with the BLAKE3 hash and size of exactly the bytes sent."""
    alice = await register(client, "alice")
    content = (media / PHOTO_2).read_bytes()
    body = await alice.upload(media / PHOTO_2, expect=201)
    assert body["code"] == 0
    data = body["data"]
    assert data["status"] == "queued"
    assert data["size"] == len(content)
    assert data["content_hash"] == b3(content)
    assert data["file_name"] == "apple_iphone_4_gps.jpg"
    assert data["asset_id"]
    assert "task_id" in data and "message" in data

    asset = (await get_asset(alice, data["asset_id"]))["data"]
    assert asset["hash"] == b3(content)
    assert asset["file_size"] == len(content)
    assert asset["original_filename"] == "apple_iphone_4_gps.jpg"
    assert asset["owner_id"] == alice.user_id
    assert (asset["type"], asset["mime_type"]) == ("PHOTO", "image/jpeg")
    # The original was moved out of staging into its repository, byte for byte.
    assert list(services.storage.staging.iterdir()) == []
    stored = services.storage.path_of(asset["repository_id"], asset["storage_path"])
    assert stored.read_bytes() == content


@pytest.mark.parametrize(("rel", "filename", "asset_type", "mime_type"), [
    ("broken/jpeg_with_nef_extension.nef", None, "PHOTO", "image/jpeg"),
    (AUDIO, None, "AUDIO", "audio/mp4"),
    (DOCUMENT, None, "DOCUMENT", "application/pdf"),
    ("video/panasonic_mjpeg.mov", None, "VIDEO", "video/quicktime"),
    ("raw/canon_eos_350d_stripped.cr2", None, "PHOTO", "image/x-canon-cr2"),
    (PHOTO, "holiday.pdf", "PHOTO", "image/jpeg"),
    (DOCUMENT, "song.mp3", "DOCUMENT", "application/pdf"),
])
async def test_type_and_mime_are_sniffed_from_the_bytes(client, media, rel, filename, asset_type, mime_type):
    """The name does not decide what a file is: a JPEG called .nef is a JPEG photo."""
    alice = await register(client, "alice")
    data = await upload(alice, media, rel, filename=filename)
    assert data["file_name"] == (filename or Path(rel).name)
    asset = (await get_asset(alice, data["asset_id"]))["data"]
    assert (asset["type"], asset["mime_type"]) == (asset_type, mime_type)
    assert await listed_ids(alice, f"type={asset_type}") == [data["asset_id"]]


async def test_same_content_twice_is_a_duplicate_for_the_same_user_only(client, services, media):
    """Alice's second upload of a file answers 200 duplicate; Bob's upload of it is his own asset."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    first = await upload(alice, media, PHOTO)
    again = await alice.upload(media / PHOTO, expect=200, filename="renamed_copy.jpg")
    assert again["data"]["status"] == "duplicate"
    assert again["data"]["asset_id"] == first["asset_id"]
    assert again["data"]["content_hash"] == first["content_hash"]
    assert await listed_ids(alice, "type=PHOTO") == [first["asset_id"]]
    # The duplicate did not rename the existing asset.
    assert (await get_asset(alice, first["asset_id"]))["data"]["original_filename"] == Path(PHOTO).name

    theirs = await upload(bob, media, PHOTO)
    assert theirs["status"] == "queued"
    assert theirs["asset_id"] != first["asset_id"]
    assert await listed_ids(bob, "type=PHOTO") == [theirs["asset_id"]]
    assert await listed_ids(alice, "type=PHOTO") == [first["asset_id"]]
    assert list(services.storage.staging.iterdir()) == []


async def test_upload_after_delete_creates_a_new_asset(client, media):
    """Once the user deleted their copy, the same content uploads as a fresh asset."""
    alice = await register(client, "alice")
    first = await upload(alice, media, PHOTO)
    await alice.call("DELETE", f"/assets/{first['asset_id']}")
    again = await upload(alice, media, PHOTO, expect=201)
    assert again["status"] == "queued"
    assert again["asset_id"] != first["asset_id"]
    assert await listed_ids(alice, "type=PHOTO") == [again["asset_id"]]


async def test_right_content_hash_header_is_accepted(client, media):
    """X-Content-Hash equal to the BLAKE3 of the body: the upload goes through."""
    alice = await register(client, "alice")
    content = (media / PHOTO).read_bytes()
    data = await upload(alice, media, PHOTO, headers={"X-Content-Hash": b3(content)})
    assert data["status"] == "queued"
    assert data["content_hash"] == b3(content)


async def test_wrong_content_hash_header_is_400_and_stores_nothing(client, services, media):
    """A well-formed hash of other content means a corrupted upload: 400, and nothing is kept."""
    alice = await register(client, "alice")
    kept = await upload(alice, media, PHOTO)
    before = await snapshot(alice, services)
    wrong = b3(b"some other content")
    body = await alice.upload(media / DOCUMENT, expect=400, headers={"X-Content-Hash": wrong})
    assert_failure(body, 400)
    assert "X-Content-Hash" in body["error"]
    assert await snapshot(alice, services) == before
    assert before["assets"] == [kept["asset_id"]]


@pytest.mark.parametrize("header", ["abc", "z" * 64, "0" * 63, "0" * 65, "sha256:" + "0" * 64])
async def test_malformed_content_hash_header_is_400(client, services, media, header):
    """X-Content-Hash that is not 64 hex digits is rejected before anything is stored."""
    alice = await register(client, "alice")
    before = await snapshot(alice, services)
    body = await alice.upload(media / PHOTO, expect=400, headers={"X-Content-Hash": header})
    assert_failure(body, 400)
    assert "X-Content-Hash" in body["error"]
    assert await snapshot(alice, services) == before


@pytest.mark.parametrize(("content", "filename"), [
    (b"\x00garbage" + random.Random(7).randbytes(8000), "noise.jpg"),
    (b"Shopping list\n- milk\n- eggs\n" * 50, "notes.txt"),
    (b"Shopping list\n- milk\n- eggs\n" * 50, "notes.mov"),
])
async def test_unrecognised_content_is_415(client, services, content, filename):
    """Random bytes or plain text are no media, whatever the name says: 415, nothing kept."""
    alice = await register(client, "alice")
    before = await snapshot(alice, services)
    body = await alice.upload_bytes(content, filename, expect=415)
    assert_failure(body, 415)
    assert await snapshot(alice, services) == before


async def test_malformed_upload_requests_are_400_and_change_nothing(client, services, media):
    """Empty file, no `file` field, stray fields, two files, or no multipart at all: 400 each."""
    alice = await register(client, "alice")
    photo = (media / PHOTO).read_bytes()
    await upload(alice, media, PHOTO_2)
    before = await snapshot(alice, services)

    cases: dict[str, list[tuple[str, bytes | str, str | None]]] = {
        "empty file": [("file", b"", "empty.jpg")],
        "no file field": [("repository_id", "", None)],
        "file under another name": [("upload", photo, "a.jpg")],
        "extra field after the file": [("file", photo, "a.jpg"), ("comment", "hi", None)],
        "extra field before the file": [("comment", "hi", None), ("file", photo, "a.jpg")],
        "two files": [("file", photo, "a.jpg"), ("file", photo, "b.jpg")],
    }
    for case, parts in cases.items():
        status, body = await post_multipart(alice, client, parts)
        assert status == 400, (case, body)
        assert_failure(body, 400)
        assert await snapshot(alice, services) == before, case

    for case, kwargs in {
        "json body": {"json": {"file": "aGVsbG8="}},
        "raw bytes": {"data": photo, "headers": {"Content-Type": "image/jpeg"}},
        "no body": {},
    }.items():
        headers = {**alice.headers, **kwargs.pop("headers", {})}
        resp = await client.post(f"{API}/assets", headers=headers, **kwargs)
        body = await resp.json()
        assert resp.status == 400, (case, body)
        assert_failure(body, 400)
        assert await snapshot(alice, services) == before, case


async def test_repository_id_known_is_used_and_unknown_is_400(client, services, media):
    """repository_id names where the original goes: an unknown one is 400 and stores nothing."""
    alice = await register(client, "alice")
    first = await upload(alice, media, PHOTO)
    repository_id = (await get_asset(alice, first["asset_id"]))["data"]["repository_id"]
    assert repository_id

    status, body = await post_multipart(alice, client, [
        ("repository_id", repository_id, None), ("file", (media / DOCUMENT).read_bytes(), "doc.pdf"),
    ])
    assert status == 201, body
    assert (await get_asset(alice, body["data"]["asset_id"]))["data"]["repository_id"] == repository_id

    before = await snapshot(alice, services)
    for parts in (
        [("repository_id", "no-such-repository", None), ("file", (media / AUDIO).read_bytes(), "a.m4a")],
        [("file", (media / AUDIO).read_bytes(), "a.m4a"), ("repository_id", "00000000-0000-0000-0000-000000000000", None)],
    ):
        status, body = await post_multipart(alice, client, parts)
        assert status == 400, body
        assert_failure(body, 400)
        assert "repository_id" in body["error"]
        assert await snapshot(alice, services) == before


async def test_upload_without_a_valid_token_is_401(client, services, media):
    """No token or a forged one: 401, and the file is not stored."""
    alice = await register(client, "alice")
    before = await snapshot(alice, services)
    photo = (media / PHOTO).read_bytes()
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YTpi"}):
        status, body = await post_multipart(None, client, [("file", photo, "a.jpg")], headers=headers)
        assert status == 401, (headers, body)
        assert_failure(body, 401)
    assert await snapshot(alice, services) == before


# -- GET /assets -----------------------------------------------------------------------------


async def test_list_needs_type_types_or_owner(client, media):
    """Without type, types or owner_id the list is a 400 naming what is missing."""
    alice = await register(client, "alice")
    await upload(alice, media, PHOTO)
    for query in ("", "?limit=10", "?sort_order=asc", "?type=", "?owner_id="):
        body = await alice.call("GET", f"/assets{query}", expect=400)
        assert_failure(body, 400)


async def test_list_rejects_bad_parameters(client, media):
    """Unknown types, a bad sort order or non-numeric paging are 400, not an empty page."""
    alice = await register(client, "alice")
    await upload(alice, media, PHOTO)
    for query in ("type=FOO", "types=PHOTO,FOO", "types=,", "type=PHOTO&sort_order=sideways",
                  "type=PHOTO&limit=ten", "type=PHOTO&limit=0", "type=PHOTO&offset=-1",
                  "owner_id=abc"):
        body = await alice.call("GET", f"/assets?{query}", expect=400)
        assert_failure(body, 400)


async def test_list_by_type_and_types(client, media):
    """type picks one kind, types several, owner_id all of the user's."""
    alice = await register(client, "alice")
    ids = {t: (await upload(alice, media, rel))["asset_id"]
           for t, rel in (("PHOTO", PHOTO), ("VIDEO", VIDEO), ("AUDIO", AUDIO), ("DOCUMENT", DOCUMENT))}
    for t, asset_id in ids.items():
        assert await listed_ids(alice, f"type={t}") == [asset_id]
    assert sorted(await listed_ids(alice, "types=VIDEO,AUDIO")) == sorted([ids["VIDEO"], ids["AUDIO"]])
    assert sorted(await listed_ids(alice, f"owner_id={alice.user_id}")) == sorted(ids.values())
    page = (await alice.call("GET", "/assets?types=PHOTO,DOCUMENT"))["data"]
    assert {a["type"] for a in page["assets"]} == {"PHOTO", "DOCUMENT"}


async def test_list_pages_with_limit_and_offset(client, media):
    """limit and offset walk the list without gaps or repeats; limit is capped at 100."""
    alice = await register(client, "alice")
    uploaded = {(await upload(alice, media, rel))["asset_id"] for rel in (PHOTO, PHOTO_2, PHOTO_3)}

    first = (await alice.call("GET", "/assets?type=PHOTO&limit=2"))["data"]
    assert (first["limit"], first["offset"]) == (2, 0)
    second = (await alice.call("GET", "/assets?type=PHOTO&limit=2&offset=2"))["data"]
    assert (second["limit"], second["offset"]) == (2, 2)
    assert len(first["assets"]) == 2 and len(second["assets"]) == 1
    paged = [a["asset_id"] for a in first["assets"] + second["assets"]]
    assert len(set(paged)) == 3 and set(paged) == uploaded
    assert await listed_ids(alice, "type=PHOTO&offset=3") == []

    default = (await alice.call("GET", "/assets?type=PHOTO"))["data"]
    assert (default["limit"], default["offset"]) == (20, 0)
    capped = (await alice.call("GET", "/assets?type=PHOTO&limit=1000"))["data"]
    assert capped["limit"] == 100 and len(capped["assets"]) == 3


async def test_list_sort_order(client, media):
    """desc (the default) is newest first, asc the reverse."""
    alice = await register(client, "alice")
    for rel in (PHOTO, PHOTO_2, PHOTO_3):
        await upload(alice, media, rel)

    def key(a: dict[str, Any]) -> str:
        return a["taken_time"] or a["upload_time"]

    default = (await alice.call("GET", "/assets?type=PHOTO"))["data"]["assets"]
    desc = (await alice.call("GET", "/assets?type=PHOTO&sort_order=desc"))["data"]["assets"]
    asc = (await alice.call("GET", "/assets?type=PHOTO&sort_order=asc"))["data"]["assets"]
    assert [a["asset_id"] for a in default] == [a["asset_id"] for a in desc]
    assert [a["asset_id"] for a in asc] == [a["asset_id"] for a in reversed(desc)]
    assert [key(a) for a in desc] == sorted((key(a) for a in desc), reverse=True)
    assert len({key(a) for a in desc}) == 3


async def test_owner_id_of_another_user_lists_nothing_of_theirs(client, media):
    """Alice asking for Bob's assets by owner_id sees none of them."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    mine = (await upload(alice, media, PHOTO))["asset_id"]
    await upload(bob, media, PHOTO_2)
    await upload(bob, media, DOCUMENT)

    assert await listed_ids(alice, f"owner_id={bob.user_id}") == []
    assert await listed_ids(alice, f"owner_id={bob.user_id}&type=PHOTO") == []
    assert await listed_ids(alice, f"owner_id={alice.user_id}") == [mine]
    assert len(await listed_ids(bob, f"owner_id={bob.user_id}")) == 2


# -- GET /assets/{id} ------------------------------------------------------------------------


async def test_get_asset_has_every_assetdto_field(client, media):
    """A fresh asset shows the whole AssetDTO with its defaults."""
    alice = await register(client, "alice")
    content = (media / AUDIO).read_bytes()
    asset_id = (await upload(alice, media, AUDIO))["asset_id"]
    body = await get_asset(alice, asset_id)
    assert body["code"] == 0
    asset = body["data"]
    assert ASSET_DTO_FIELDS <= set(asset)
    assert asset["asset_id"] == asset_id
    assert asset["owner_id"] == alice.user_id
    assert asset["type"] == "AUDIO"
    assert asset["original_filename"] == Path(AUDIO).name
    assert asset["file_size"] == len(content)
    assert asset["hash"] == b3(content)
    assert asset["rating"] == 0
    assert asset["liked"] is False
    assert asset["description"] is None
    assert asset["is_deleted"] is False
    assert asset["deleted_at"] is None
    assert asset["repository_id"] and asset["storage_path"]
    assert isinstance(asset["specific_metadata"], dict)
    assert set(asset["status"]) >= {"state", "tasks"}
    assert asset["status"]["state"] in ("processing", "complete", "warning", "failed")
    assert isinstance(asset["status"]["tasks"], dict)
    assert datetime.fromisoformat(asset["upload_time"].replace("Z", "+00:00")).tzinfo is not None
    # The listing carries the same object.
    listed = (await alice.call("GET", "/assets?type=AUDIO"))["data"]["assets"]
    assert {k: listed[0][k] for k in ASSET_DTO_FIELDS} == {k: asset[k] for k in ASSET_DTO_FIELDS}


async def test_get_asset_include_albums(client, media):
    """Albums holding the asset come with it unless include_albums=false."""
    alice = await register(client, "alice")
    asset_id = (await upload(alice, media, PHOTO))["asset_id"]
    assert (await get_asset(alice, asset_id))["data"]["albums"] == []

    album = (await alice.call("POST", "/albums", {"album_name": "Trips"}, expect=201))["data"]
    await alice.call("POST", f"/albums/{album['album_id']}/assets/{asset_id}")
    albums = (await get_asset(alice, asset_id, query="?include_albums=true"))["data"]["albums"]
    assert [a["album_id"] for a in albums] == [album["album_id"]]
    assert albums[0]["album_name"] == "Trips"
    assert "albums" not in (await get_asset(alice, asset_id, query="?include_albums=false"))["data"]
    body = await get_asset(alice, asset_id, expect=400, query="?include_albums=maybe")
    assert_failure(body, 400)


@pytest.mark.parametrize("part", ["include_species", "include_ocr", "include_faces", "include_ai_descriptions"])
async def test_get_asset_with_a_bad_ml_part_flag_is_400(client, media, part):
    alice = await register(client, "alice")
    asset_id = (await upload(alice, media, PHOTO))["asset_id"]
    body = await get_asset(alice, asset_id, expect=400, query=f"?{part}=maybe")
    assert_failure(body, 400)
    assert part in str(body)  # the message names the parameter


@pytest.mark.parametrize("vector", [[], [1.0, float("nan")], [1.0, float("inf")], [True, 1.0], ["1", 2.0],
                                    "1,2,3", [0.5] * 4097])
def test_a_bad_embedding_is_refused_and_records_nothing(services, vector):
    from uuid import UUID

    from domain.errors import InvalidInput
    from tests.scenario import fake_upload

    owner = services.app.register("alice", "alice@example.org", "x").user.user_id
    asset_id = UUID(str(services.app.upload(fake_upload(owner, 1)).asset_id))
    before = services.app.recorder.max_notification_id()
    with pytest.raises(InvalidInput):
        services.app.record_embedding(asset_id, "clip-test", vector)
    assert services.app.recorder.max_notification_id() == before
    assert services.app.repository.get(asset_id).embedding == {}


async def test_get_unknown_malformed_or_foreign_asset_is_404(client, media):
    """An id that does not exist, is not a UUID, or is someone else's: 404 all the same."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    bobs = (await upload(bob, media, PHOTO))["asset_id"]
    for asset_id in ("7a1f1c1e-8d43-4b8e-9a38-0d0c3c0e9b11", "not-a-uuid", "12345", bobs):
        body = await get_asset(alice, asset_id, expect=404)
        assert_failure(body, 404)
    assert (await get_asset(bob, bobs))["data"]["asset_id"] == bobs


async def test_another_users_asset_cannot_be_read_or_changed(client, media):
    """Every asset endpoint answers 404 for Bob's asset to Alice, and Bob's asset is untouched."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    bobs = (await upload(bob, media, PHOTO))["asset_id"]
    before = (await get_asset(bob, bobs))["data"]
    for method, path, payload in (
        ("GET", "", None),
        ("GET", "/original", None),
        ("PUT", "", {"specific_metadata": {"camera_make": "Evil"}}),
        ("PUT", "/description", {"description": "mine now"}),
        ("PUT", "/like", {"liked": True}),
        ("PUT", "/rating", {"rating": 5}),
        ("PUT", "/rating-and-like", {"rating": 5, "liked": True}),
        ("DELETE", "", None),
    ):
        body = await alice.call(method, f"/assets/{bobs}{path}", payload, expect=404)
        assert_failure(body, 404)
    assert (await get_asset(bob, bobs))["data"] == before


# -- PUT /assets/{id} (specific metadata) ----------------------------------------------------


async def test_update_metadata_merges_fields_of_the_type(client, media):
    """Each PUT merges its fields into what is there; the answer is the updated asset."""
    alice = await register(client, "alice")
    asset_id = (await upload(alice, media, PHOTO))["asset_id"]
    first = await alice.call("PUT", f"/assets/{asset_id}",
                             {"specific_metadata": {"camera_make": "Apple", "iso_speed": 25}})
    assert first["data"]["asset_id"] == asset_id
    assert first["data"]["specific_metadata"]["camera_make"] == "Apple"
    second = await alice.call("PUT", f"/assets/{asset_id}",
                              {"specific_metadata": {"lens_model": "back camera", "iso_speed": 50}})
    meta = second["data"]["specific_metadata"]
    assert (meta["camera_make"], meta["lens_model"], meta["iso_speed"]) == ("Apple", "back camera", 50)
    assert (await get_asset(alice, asset_id))["data"]["specific_metadata"] == meta


async def test_update_metadata_rejects_fields_of_another_type(client, media):
    """A field that the asset's type does not have is a 400 naming it; nothing is merged."""
    alice = await register(client, "alice")
    photo = (await upload(alice, media, PHOTO))["asset_id"]
    song = (await upload(alice, media, AUDIO))["asset_id"]
    photo_before = (await get_asset(alice, photo))["data"]["specific_metadata"]

    body = await alice.call("PUT", f"/assets/{photo}",
                            {"specific_metadata": {"camera_make": "Apple", "artist": "Someone"}}, expect=400)
    assert_failure(body, 400)
    assert "artist" in body["error"]
    assert (await get_asset(alice, photo))["data"]["specific_metadata"] == photo_before

    body = await alice.call("PUT", f"/assets/{song}", {"specific_metadata": {"camera_make": "Apple"}}, expect=400)
    assert "camera_make" in body["error"]
    updated = await alice.call("PUT", f"/assets/{song}", {"specific_metadata": {"artist": "Test Artist"}})
    assert updated["data"]["specific_metadata"]["artist"] == "Test Artist"


async def test_update_metadata_needs_a_body(client, media):
    """No body, an empty object, a non-object or stray top-level fields: 400."""
    alice = await register(client, "alice")
    asset_id = (await upload(alice, media, DOCUMENT))["asset_id"]
    before = (await get_asset(alice, asset_id))["data"]
    for payload in (None, {}, {"specific_metadata": "title"}, {"specific_metadata": ["title"]},
                    {"specific_metadata": {"title": "x"}, "rating": 3}, ["specific_metadata"]):
        body = await alice.call("PUT", f"/assets/{asset_id}", payload, expect=400)
        assert_failure(body, 400)
    resp = await client.put(f"{API}/assets/{asset_id}", data=b"{not json", headers=alice.headers)
    assert resp.status == 400
    assert (await get_asset(alice, asset_id))["data"] == before


# -- description, like, rating ---------------------------------------------------------------


async def test_description_like_and_rating_return_the_updated_asset(client, media):
    """Each change answers with the asset as it now is, and GET agrees."""
    alice = await register(client, "alice")
    asset_id = (await upload(alice, media, PHOTO))["asset_id"]

    described = (await alice.call("PUT", f"/assets/{asset_id}/description", {"description": "Sunset"}))["data"]
    assert described["asset_id"] == asset_id and described["description"] == "Sunset"
    liked = (await alice.call("PUT", f"/assets/{asset_id}/like", {"liked": True}))["data"]
    assert liked["liked"] is True and liked["description"] == "Sunset"
    rated = (await alice.call("PUT", f"/assets/{asset_id}/rating", {"rating": 4}))["data"]
    assert rated["rating"] == 4 and rated["liked"] is True
    both = (await alice.call("PUT", f"/assets/{asset_id}/rating-and-like", {"rating": 2, "liked": False}))["data"]
    assert (both["rating"], both["liked"]) == (2, False)

    now = (await get_asset(alice, asset_id))["data"]
    assert (now["description"], now["rating"], now["liked"]) == ("Sunset", 2, False)

    cleared = (await alice.call("PUT", f"/assets/{asset_id}/description", {"description": None}))["data"]
    assert cleared["description"] is None
    zero = (await alice.call("PUT", f"/assets/{asset_id}/rating", {"rating": 0}))["data"]
    assert zero["rating"] == 0


@pytest.mark.parametrize("rating", [6, -1, "5", 2.5, True, None, 100])
async def test_invalid_rating_is_400_and_changes_nothing(client, media, rating):
    """Only the integers 0 to 5 are ratings; anything else leaves the asset as it was."""
    alice = await register(client, "alice")
    asset_id = (await upload(alice, media, PHOTO))["asset_id"]
    await alice.call("PUT", f"/assets/{asset_id}/rating-and-like", {"rating": 3, "liked": True})

    body = await alice.call("PUT", f"/assets/{asset_id}/rating", {"rating": rating}, expect=400)
    assert_failure(body, 400)
    assert "rating" in body["error"]
    body = await alice.call("PUT", f"/assets/{asset_id}/rating-and-like", {"rating": rating, "liked": False},
                            expect=400)
    assert_failure(body, 400)
    asset = (await get_asset(alice, asset_id))["data"]
    assert (asset["rating"], asset["liked"]) == (3, True)


async def test_invalid_like_description_and_extra_fields_are_400(client, media):
    """liked must be a boolean; bodies carry no unknown fields; nothing changes on a 400."""
    alice = await register(client, "alice")
    asset_id = (await upload(alice, media, PHOTO))["asset_id"]
    await alice.call("PUT", f"/assets/{asset_id}/description", {"description": "kept"})
    before = (await get_asset(alice, asset_id))["data"]

    for path, payload in (
        ("/like", {"liked": "yes"}),
        ("/like", {"liked": 1}),
        ("/like", {}),
        ("/like", None),
        ("/like", {"liked": True, "rating": 5}),
        ("/rating", {"rating": 5, "liked": True}),
        ("/rating", {}),
        ("/rating-and-like", {"rating": 5}),
        ("/rating-and-like", {"liked": True}),
        ("/rating-and-like", {"rating": 5, "liked": True, "description": "x"}),
        ("/description", {"description": 42}),
        ("/description", {"description": "new", "liked": True}),
        ("/description", {"description": "x" * 10_001}),
        ("/description", ["kept"]),
    ):
        body = await alice.call("PUT", f"/assets/{asset_id}{path}", payload, expect=400)
        assert_failure(body, 400)
    assert (await get_asset(alice, asset_id))["data"] == before


async def test_rating_and_like_unknown_asset_is_404(client):
    """Changing an asset that does not exist is a 404, not a 500."""
    alice = await register(client, "alice")
    for path, payload in (("/rating", {"rating": 1}), ("/like", {"liked": True}),
                          ("/description", {"description": "x"}), ("", {"specific_metadata": {}})):
        for asset_id in ("0b9a3c4e-1111-4222-8333-944455556666", "nope"):
            body = await alice.call("PUT", f"/assets/{asset_id}{path}", payload, expect=404)
            assert_failure(body, 404)


# -- GET /assets/liked, /assets/rating/{r}, /assets/types ------------------------------------


async def test_liked_lists_only_the_users_liked_live_assets(client, media):
    """Liked: Alice's liked assets that are not deleted, none of Bob's."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    a1 = (await upload(alice, media, PHOTO))["asset_id"]
    a2 = (await upload(alice, media, AUDIO))["asset_id"]
    a3 = (await upload(alice, media, DOCUMENT))["asset_id"]
    await upload(alice, media, VIDEO)  # never liked
    b1 = (await upload(bob, media, PHOTO_2))["asset_id"]
    for asset_id in (a1, a2, a3):
        await alice.call("PUT", f"/assets/{asset_id}/like", {"liked": True})
    await bob.call("PUT", f"/assets/{b1}/like", {"liked": True})
    await alice.call("PUT", f"/assets/{a2}/like", {"liked": False})
    await alice.call("DELETE", f"/assets/{a3}")

    page = (await alice.call("GET", "/assets/liked"))["data"]
    assert [a["asset_id"] for a in page["assets"]] == [a1]
    assert (page["limit"], page["offset"]) == (20, 0)
    assert [a["asset_id"] for a in (await bob.call("GET", "/assets/liked"))["data"]["assets"]] == [b1]
    assert (await alice.call("GET", "/assets/liked?offset=1"))["data"]["assets"] == []


async def test_rating_lists_only_the_users_assets_with_that_rating(client, media):
    """rating/{r}: Alice's live assets rated exactly r."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    four = (await upload(alice, media, PHOTO))["asset_id"]
    four_deleted = (await upload(alice, media, AUDIO))["asset_id"]
    two = (await upload(alice, media, DOCUMENT))["asset_id"]
    unrated = (await upload(alice, media, VIDEO))["asset_id"]
    bobs = (await upload(bob, media, PHOTO_2))["asset_id"]
    await alice.call("PUT", f"/assets/{four}/rating", {"rating": 4})
    await alice.call("PUT", f"/assets/{four_deleted}/rating", {"rating": 4})
    await alice.call("PUT", f"/assets/{two}/rating-and-like", {"rating": 2, "liked": True})
    await bob.call("PUT", f"/assets/{bobs}/rating", {"rating": 4})
    await alice.call("DELETE", f"/assets/{four_deleted}")

    async def rated(user: User, r: int | str, expect: int = 200) -> list[str] | dict[str, Any]:
        body = await user.call("GET", f"/assets/rating/{r}", expect=expect)
        return [a["asset_id"] for a in body["data"]["assets"]] if expect == 200 else body

    assert await rated(alice, 4) == [four]
    assert await rated(alice, 2) == [two]
    assert await rated(alice, 0) == [unrated]
    assert await rated(alice, 5) == []
    assert await rated(bob, 4) == [bobs]
    for bad in ("6", "x", "-1", "4.5", "10"):
        assert_failure(await rated(alice, bad, expect=400), 400)


async def test_types_lists_the_four_asset_types(client):
    """/assets/types names exactly PHOTO, VIDEO, AUDIO and DOCUMENT."""
    alice = await register(client, "alice")
    types = (await alice.call("GET", "/assets/types"))["data"]["types"]
    assert sorted(types) == ["AUDIO", "DOCUMENT", "PHOTO", "VIDEO"]
    resp = await client.get(f"{API}/assets/types")
    assert resp.status == 401


# -- DELETE /assets/{id} ---------------------------------------------------------------------


async def test_delete_is_soft(client, services, media):
    """A deleted asset is marked and hidden from lists; its file stays; it can no longer change."""
    alice = await register(client, "alice")
    asset_id = (await upload(alice, media, PHOTO))["asset_id"]
    other = (await upload(alice, media, PHOTO_2))["asset_id"]
    await alice.call("PUT", f"/assets/{asset_id}/rating-and-like", {"rating": 5, "liked": True})

    body = await alice.call("DELETE", f"/assets/{asset_id}")
    assert body["code"] == 0 and body["message"]

    asset = (await get_asset(alice, asset_id))["data"]
    assert asset["is_deleted"] is True
    assert asset["deleted_at"]
    assert datetime.fromisoformat(asset["deleted_at"].replace("Z", "+00:00")) >= \
        datetime.fromisoformat(asset["upload_time"].replace("Z", "+00:00"))
    assert services.storage.path_of(asset["repository_id"], asset["storage_path"]).read_bytes() == \
        (media / PHOTO).read_bytes()

    assert await listed_ids(alice, "type=PHOTO") == [other]
    assert await listed_ids(alice, f"owner_id={alice.user_id}") == [other]
    assert (await alice.call("GET", "/assets/liked"))["data"]["assets"] == []
    assert (await alice.call("GET", "/assets/rating/5"))["data"]["assets"] == []

    for method, path, payload in (
        ("PUT", "/rating", {"rating": 1}),
        ("PUT", "/like", {"liked": False}),
        ("PUT", "/rating-and-like", {"rating": 1, "liked": False}),
        ("PUT", "/description", {"description": "too late"}),
        ("PUT", "", {"specific_metadata": {"camera_make": "Apple"}}),
        ("DELETE", "", None),
    ):
        body = await alice.call(method, f"/assets/{asset_id}{path}", payload, expect=409)
        assert_failure(body, 409)
    after = (await get_asset(alice, asset_id))["data"]
    assert (after["rating"], after["liked"], after["deleted_at"]) == (5, True, asset["deleted_at"])


async def test_delete_unknown_or_malformed_id_is_404(client):
    """Deleting what is not there is a 404."""
    alice = await register(client, "alice")
    for asset_id in ("0b9a3c4e-1111-4222-8333-944455556666", "not-a-uuid"):
        body = await alice.call("DELETE", f"/assets/{asset_id}", expect=404)
        assert_failure(body, 404)


# -- GET /assets/{id}/original ---------------------------------------------------------------


async def _original(client: Any, user: User, asset_id: str, **headers: str) -> aiohttp.ClientResponse:
    return await client.get(f"{API}/assets/{asset_id}/original", headers={**user.headers, **headers})


async def test_original_is_the_exact_bytes_with_cache_headers(client, media):
    """The original comes back byte for byte, typed, with the BLAKE3 hash as its ETag."""
    alice = await register(client, "alice")
    content = (media / PHOTO_2).read_bytes()
    asset_id = (await upload(alice, media, PHOTO_2))["asset_id"]
    resp = await _original(client, alice, asset_id)
    assert resp.status == 200
    assert await resp.read() == content
    assert resp.content_type == "image/jpeg"
    assert resp.headers["ETag"] == f'"{b3(content)}"'
    assert "max-age" in resp.headers["Cache-Control"]
    assert int(resp.headers["Content-Length"]) == len(content)

    pdf = (await upload(alice, media, DOCUMENT, filename="report.mp3"))["asset_id"]
    resp = await _original(client, alice, pdf)
    assert resp.content_type == "application/pdf"
    assert await resp.read() == (media / DOCUMENT).read_bytes()


async def test_original_if_none_match(client, media):
    """The client's cached copy is still good when its ETag matches: 304 with no body."""
    alice = await register(client, "alice")
    content = (media / PHOTO_2).read_bytes()
    asset_id = (await upload(alice, media, PHOTO_2))["asset_id"]
    etag = (await _original(client, alice, asset_id)).headers["ETag"]

    resp = await _original(client, alice, asset_id, **{"If-None-Match": etag})
    assert resp.status == 304
    assert await resp.read() == b""
    assert resp.headers["ETag"] == etag
    resp = await _original(client, alice, asset_id, **{"If-None-Match": f'"other", {etag}'})
    assert resp.status == 304
    resp = await _original(client, alice, asset_id, **{"If-None-Match": f'"{b3(b"stale")}"'})
    assert resp.status == 200
    assert await resp.read() == content


async def test_original_ranges(client, media):
    """Range gives 206 with Content-Range; a suffix range gives the tail; past the end is 416."""
    alice = await register(client, "alice")
    content = (media / PHOTO_2).read_bytes()
    size = len(content)
    asset_id = (await upload(alice, media, PHOTO_2))["asset_id"]

    resp = await _original(client, alice, asset_id, Range="bytes=0-99")
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 0-99/{size}"
    body = await resp.read()
    assert len(body) == 100 and body == content[:100]

    resp = await _original(client, alice, asset_id, Range="bytes=-10")
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes {size - 10}-{size - 1}/{size}"
    assert await resp.read() == content[-10:]

    resp = await _original(client, alice, asset_id, Range=f"bytes={size - 5}-")
    assert resp.status == 206
    assert await resp.read() == content[-5:]

    resp = await _original(client, alice, asset_id, Range=f"bytes={size}-")
    assert resp.status == 416
    assert resp.headers["Content-Range"] == f"bytes */{size}"
    assert_failure(await resp.json(), 416)
    resp = await _original(client, alice, asset_id, Range=f"bytes={size + 100}-{size + 200}")
    assert resp.status == 416


async def test_original_of_another_user_or_unknown_asset_is_404(client, media):
    """Bob's original is not there for Alice; nor is an asset that does not exist."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    bobs = (await upload(bob, media, PHOTO))["asset_id"]
    for asset_id in (bobs, "0b9a3c4e-1111-4222-8333-944455556666", "not-a-uuid"):
        resp = await _original(client, alice, asset_id)
        assert resp.status == 404
        assert_failure(await resp.json(), 404)
    resp = await client.get(f"{API}/assets/{bobs}/original")
    assert resp.status == 401
    assert (await _original(client, bob, bobs)).status == 200
