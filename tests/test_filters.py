"""Filters, facets and filename search over the catalog (POST /assets/filter, GET
/assets/filter-options, POST /assets/search), on SQLite and PostgreSQL.

Scenario data goes in through the application's commands (upload, then the metadata job's
start/complete as a worker would), and is read back over HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import random
from datetime import date, datetime, time, timezone
from typing import Any
from uuid import UUID

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from api.app import create_app
from domain.camera import lens_key, normalise_make
from infra.bootstrap import Services
from infra.storage import DEFAULT_REPOSITORY_ID
from projections.facets import FacetsProjection
from projections.queries import date_bound, parse_glob
from projections.runner import rebuild
from tests.helpers import User, register
from tests.scenario import fake_upload

MIME = {
    ".jpg": ("image/jpeg", "PHOTO"), ".png": ("image/png", "PHOTO"),
    ".nef": ("image/x-nikon-nef", "PHOTO"), ".cr2": ("image/x-canon-cr2", "PHOTO"),
    ".dng": ("image/x-adobe-dng", "PHOTO"), ".mp4": ("video/mp4", "VIDEO"),
    ".mp3": ("audio/mpeg", "AUDIO"), ".pdf": ("application/pdf", "DOCUMENT"),
}
_counter = iter(range(10**6))


def add_asset(services: Services, owner_id: int, filename: str, *, make: str | None = None,
              lens: str | None = None, taken: str | None = None, extract: bool = True) -> str:
    """Upload through the command, then record extracted metadata through the metadata job."""
    ext = "." + filename.rsplit(".", 1)[-1].lower()
    mime, asset_type = MIME[ext]
    new = dataclasses.replace(fake_upload(owner_id, next(_counter)), original_filename=filename,
                              mime_type=mime, asset_type=asset_type)
    outcome = services.app.upload(new)
    if extract:
        ticket = services.app.start_job(outcome.task_id, "test-worker")
        assert ticket is not None and ticket.queue == "metadata_asset"
        metadata = {"camera_make": make, "lens_model": lens, "camera_model": None,
                    "is_raw": mime.startswith("image/x-")}
        assert services.app.complete_job(outcome.task_id, ticket.attempt, {
            "width": 100, "height": 80, "duration": None, "taken_time": taken,
            "taken_time_local": taken[:19] if taken else None, "specific_metadata": metadata,
        })
    return str(outcome.asset_id)


def settle(services: Services) -> None:
    # wait_for answers False after the 5 s read wait; on two busy cores a big library takes longer.
    assert services.wait_for(services.app.recorder.max_notification_id() or 0, timeout=300)


async def filter_ids(user: User, flt: dict[str, Any] | None = None, **page: Any) -> list[str]:
    body = {"filter": flt, **page} if flt is not None else page
    data = (await user.call("POST", "/assets/filter", body))["data"]
    return [a["asset_id"] for a in data["assets"]]


async def options(user: User) -> dict[str, dict[Any, int]]:
    data = (await user.call("GET", "/assets/filter-options"))["data"]
    return {k: {item["value"]: item["count"] for item in v} for k, v in data.items()}


# Alice's library: (key, filename, make, lens, taken)
LIBRARY = [
    ("nikon1", "IMG_0001.JPG", "NIKON CORPORATION", "AF-S DX Zoom-Nikkor 18-70mm f/3.5-4.5G IF-ED", "2020-05-01T10:00:00"),
    ("nikon2", "img_0002.jpg", "Nikon", "AF Nikkor 50mm f/1.8D", "2020-05-01T23:59:59"),
    ("nef", "DSC_0003.NEF", "NIKON CORPORATION", "AF Nikkor 50mm f/1.8D", "2020-05-02T00:00:00"),
    ("percent", "100%_done.png", "Canon", "EF50mm f/1.8 STM", "2019-12-31T23:00:00-02:00"),
    ("cr2", "under_score.CR2", "CANON", "ef50mm  f/1.8 STM ", "2021-07-04T12:00:00"),
    ("clip", "clip[1].mp4", None, None, "2018-03-03T08:00:00"),
    ("song", "song.mp3", None, None, None),
    ("report", "Report (final).PDF", None, None, None),
    ("olympus", "OLD.JPG", "OLYMPUS IMAGING CORP.", "OLYMPUS M.17mm F1.8", "2012-08-08T08:08:08"),
]


@pytest.fixture
async def library(client: Any, services: Services) -> tuple[User, User, dict[str, str]]:
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    ids = {key: add_asset(services, alice.user_id, name, make=make, lens=lens, taken=taken)
           for key, name, make, lens, taken in LIBRARY}
    ids["bob"] = add_asset(services, bob.user_id, "IMG_0001.JPG", make="NIKON CORPORATION",
                           lens="AF Nikkor 50mm f/1.8D", taken="2020-05-01T10:00:00")
    settle(services)
    return alice, bob, ids


def named(ids: dict[str, str], *keys: str) -> set[str]:
    return {ids[k] for k in keys}


ALICE_ALL = [k for k, *_ in LIBRARY]


# -- every field alone and combined ----------------------------------------------------------


async def test_each_field_alone(library):
    alice, _, ids = library
    await alice.call("PUT", f"/assets/{ids['nikon1']}/rating", {"rating": 5})
    await alice.call("PUT", f"/assets/{ids['nef']}/rating", {"rating": 5})
    await alice.call("PUT", f"/assets/{ids['song']}/rating", {"rating": 2})
    await alice.call("PUT", f"/assets/{ids['clip']}/like", {"liked": True})
    await alice.call("PUT", f"/assets/{ids['nikon2']}/like", {"liked": True})

    assert set(await filter_ids(alice, {})) == named(ids, *ALICE_ALL)
    assert set(await filter_ids(alice)) == named(ids, *ALICE_ALL)  # no filter at all
    assert set(await filter_ids(alice, {"rating": 5})) == named(ids, "nikon1", "nef")
    assert set(await filter_ids(alice, {"rating": 0})) == named(
        ids, "nikon2", "percent", "cr2", "clip", "report", "olympus")
    assert set(await filter_ids(alice, {"liked": True})) == named(ids, "clip", "nikon2")
    assert len(await filter_ids(alice, {"liked": False})) == len(ALICE_ALL) - 2
    assert set(await filter_ids(alice, {"type": "VIDEO"})) == named(ids, "clip")
    assert set(await filter_ids(alice, {"type": "audio"})) == named(ids, "song")
    assert set(await filter_ids(alice, {"type": "DOCUMENT"})) == named(ids, "report")
    assert len(await filter_ids(alice, {"type": "PHOTO"})) == 6
    assert set(await filter_ids(alice, {"raw": True})) == named(ids, "nef", "cr2")
    assert len(await filter_ids(alice, {"raw": False})) == len(ALICE_ALL) - 2
    assert set(await filter_ids(alice, {"repository_id": DEFAULT_REPOSITORY_ID})) == named(ids, *ALICE_ALL)
    assert await filter_ids(alice, {"repository_id": "somewhere-else"}) == []
    assert set(await filter_ids(alice, {"owner_id": alice.user_id})) == named(ids, *ALICE_ALL)
    assert set(await filter_ids(alice, {"camera_make": "nikon"})) == named(ids, "nikon1", "nikon2", "nef")
    assert set(await filter_ids(alice, {"lens": "AF Nikkor 50mm f/1.8D"})) == named(ids, "nikon2", "nef")
    assert set(await filter_ids(alice, {"filename": {"mode": "endswith", "value": ".jpg"}})) == named(
        ids, "nikon1", "nikon2", "olympus")
    assert set(await filter_ids(alice, {"date": {"from": "2021-01-01"}})) == named(ids, "cr2")
    # Null means "not given".
    assert set(await filter_ids(alice, {"rating": None, "camera_make": None})) == named(ids, *ALICE_ALL)


async def test_fields_combine_with_and(library):
    alice, _, ids = library
    await alice.call("PUT", f"/assets/{ids['nef']}/rating-and-like", {"rating": 4, "liked": True})
    await alice.call("PUT", f"/assets/{ids['nikon2']}/rating-and-like", {"rating": 4, "liked": False})
    assert set(await filter_ids(alice, {"camera_make": "Nikon", "rating": 4})) == named(ids, "nef", "nikon2")
    assert set(await filter_ids(alice, {"camera_make": "Nikon", "rating": 4, "liked": True})) == named(ids, "nef")
    assert set(await filter_ids(alice, {"camera_make": "Nikon", "raw": False})) == named(ids, "nikon1", "nikon2")
    assert set(await filter_ids(alice, {
        "type": "PHOTO", "lens": "af nikkor 50MM f/1.8d", "date": {"from": "2020-05-01", "to": "2020-05-01"},
    })) == named(ids, "nikon2")
    assert set(await filter_ids(alice, {
        "filename": {"mode": "matches", "value": "*.[cn][re][2f]"}, "camera_make": "canon",
    })) == named(ids, "cr2")
    assert await filter_ids(alice, {"camera_make": "Canon", "type": "VIDEO"}) == []


# -- filename modes --------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "value", "expected"), [
    ("contains", "img_", {"nikon1", "nikon2"}),
    ("contains", "IMG_000", {"nikon1", "nikon2"}),
    ("contains", "%", {"percent"}),
    ("contains", "_", {"nikon1", "nikon2", "nef", "percent", "cr2"}),
    ("contains", "[1]", {"clip"}),
    ("contains", "(final)", {"report"}),
    ("contains", ".", set(ALICE_ALL)),
    ("contains", "", set(ALICE_ALL)),
    ("contains", "nothing-like-this", set()),
    ("startswith", "dsc", {"nef"}),
    ("startswith", "100%", {"percent"}),
    ("startswith", "_", set()),
    ("startswith", "%", set()),
    ("endswith", ".JPG", {"nikon1", "nikon2", "olympus"}),
    ("endswith", "_done.png", {"percent"}),
    ("endswith", "%.png", set()),
    ("matches", "IMG_*.JPG", {"nikon1", "nikon2"}),
    ("matches", "img_000?.jpg", {"nikon1", "nikon2"}),
    ("matches", "*", set(ALICE_ALL)),
    ("matches", "img", set()),  # a glob matches the whole name
    ("matches", "img_000[12].jpg", {"nikon1", "nikon2"}),
    ("matches", "img_000[!1].jpg", {"nikon2"}),
    ("matches", "img_000[^1].jpg", {"nikon2"}),
    ("matches", "[a-d]*", {"nef", "clip"}),
    ("matches", "[!a-z]*", {"percent"}),
    ("matches", "*[0-9].[a-z][a-z][a-z]", {"nikon1", "nikon2", "nef"}),
    ("matches", "*[0-9]?.[a-z][a-z][0-9]", {"clip"}),
    ("matches", "clip[1].mp4", set()),  # [1] is a class: it matches "clip1.mp4"
    ("matches", "clip[[]1].mp4", {"clip"}),
    ("matches", "100[%]_done.png", {"percent"}),
    ("matches", "100%_done.png", {"percent"}),
    ("matches", "100_?done.png", set()),  # "_" is a literal in a glob, not one character
    ("matches", "under_score.cr2", {"cr2"}),
    ("matches", "under[_]score.*", {"cr2"}),
    ("matches", "report ([f]inal).pdf", {"report"}),  # regex specials in a class-bearing glob
    ("matches", "report (final).pd?", {"report"}),
    ("matches", "*.[!j]*", {"nef", "percent", "cr2", "clip", "song", "report"}),
    ("matches", "[z-a]*", set()),  # an empty range holds nothing
    ("matches", "????.mp3", {"song"}),
    ("matches", "[s]ong.mp3[", set()),
])
async def test_filename_modes(library, mode, value, expected):
    alice, bob, ids = library
    got = set(await filter_ids(alice, {"filename": {"mode": mode, "value": value}}))
    assert got == named(ids, *expected), (mode, value)


async def test_filename_glob_agrees_with_fnmatch_on_awkward_names(client, services):
    """Names full of characters that LIKE, GLOB or regular expressions treat specially."""
    user = await register(client, "awkward")
    names = ["a%b.jpg", "a_b.jpg", "a\\b.jpg", "a*b.jpg", "a?b.jpg", "a[b].jpg", "a]b.jpg",
             "a^b.jpg", "a-b.jpg", "a.b.jpg", "a$b.jpg", "a(b).jpg", "a{2}.jpg", "a|b.jpg",
             "a+b.jpg", "ÄÖÜ.jpg", "äöü.JPG", "a'b.jpg"]
    ids = {add_asset(services, user.user_id, n, extract=False): n for n in names}
    settle(services)
    patterns = ["a[%]b.jpg", "a[_]b.jpg", "a[\\]b.jpg", "a[*]b.jpg", "a[?]b.jpg", "a[[]b].jpg",
                "a[]]b.jpg", "a[]^]b.jpg", "a[^^]b.jpg", "a[-]b.jpg", "a[a-]b.jpg", "a[!a-z]b.jpg",
                "a[.]b.jpg", "a[$|+]b.jpg", "a([b]).jpg", "a{[2]}.jpg", "[ä]öü.jpg", "*[ü].jpg",
                "a[]-^]b.jpg", "a[\\-^]b.jpg", "a?b.jpg", "a*.jpg", "a\\b.jpg", "a'[b].jpg"]
    for pattern in patterns:
        negation_free = pattern.replace("[^^]", "[!^]")
        expected = {i for i, n in ids.items() if fnmatch.fnmatchcase(n.lower(), negation_free.lower())}
        got = set(await filter_ids(user, {"filename": {"mode": "matches", "value": pattern}}, limit=100))
        assert got == expected, pattern
    for mode in ("contains", "startswith", "endswith"):
        for value in ("%", "_", "\\", "a%", "%b.jpg", "a_b", "ä", "Ä", "'", "*", "[b]"):
            test = {"contains": lambda n, v: v in n, "startswith": str.startswith,
                    "endswith": str.endswith}[mode]
            expected = {i for i, n in ids.items() if test(n.lower(), value.lower())}
            got = set(await filter_ids(user, {"filename": {"mode": mode, "value": value}}, limit=100))
            assert got == expected, (mode, value)


# -- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("date_filter", "expected"), [
    ({"from": "2020-05-01", "to": "2020-05-01"}, {"nikon1", "nikon2"}),  # the whole day, both ends
    ({"from": "2020-05-02"}, {"nef", "cr2"}),
    ({"to": "2020-05-01T10:00:00"}, {"nikon1", "percent", "clip", "olympus"}),  # inclusive
    ({"to": "2020-05-01T09:59:59.999999"}, {"percent", "clip", "olympus"}),
    ({"from": "2020-05-01T23:59:59", "to": "2020-05-02T00:00:00"}, {"nikon2", "nef"}),
    ({"from": "2020-05-01T23:59:59.000001"}, {"nef", "cr2"}),
    ({"from": "2020-05-02T01:00:00+02:00"}, {"nikon2", "nef", "cr2"}),  # 2020-05-01T23:00Z
    ({"from": "2020-05-01T22:00:00Z", "to": "2020-05-01T23:59:59Z"}, {"nikon2"}),
    ({"from": "2020-01-01", "to": "2020-01-01"}, {"percent"}),  # 23:00 at -02:00 is 01:00 UTC
    ({"from": "2019-12-31", "to": "2019-12-31"}, set()),
    ({"from": "2020-01-01", "to": "2020-12-31"}, {"nikon1", "nikon2", "nef", "percent"}),
    ({"from": "1900-01-01"}, {"nikon1", "nikon2", "nef", "percent", "cr2", "clip", "olympus"}),  # never the untimed
    ({"to": "2000-01-01"}, set()),
    ({}, set(ALICE_ALL)),
])
async def test_date_ranges_at_the_edges(library, date_filter, expected):
    alice, _, ids = library
    assert set(await filter_ids(alice, {"date": date_filter})) == named(ids, *expected), date_filter


# -- camera makes, lenses and facets ---------------------------------------------------------


async def test_camera_make_is_matched_normalised(library):
    alice, _, ids = library
    nikons = named(ids, "nikon1", "nikon2", "nef")
    for spelling in ("Nikon", "nikon", "NIKON CORPORATION", "Nikon Corp.", " nikon "):
        assert set(await filter_ids(alice, {"camera_make": spelling})) == nikons, spelling
    for spelling in ("Canon", "CANON", "Canon Inc."):
        assert set(await filter_ids(alice, {"camera_make": spelling})) == named(ids, "percent", "cr2")
    assert set(await filter_ids(alice, {"camera_make": "olympus corporation"})) == named(ids, "olympus")
    assert await filter_ids(alice, {"camera_make": "Sony"}) == []
    assert await filter_ids(alice, {"camera_make": "Nik"}) == []  # not a substring match
    asset = (await alice.call("GET", f"/assets/{ids['nikon1']}"))["data"]
    assert asset["specific_metadata"]["camera_make"] == "NIKON CORPORATION"  # shown as recorded


async def test_lens_is_the_whole_name_case_insensitively(library):
    alice, _, ids = library
    assert set(await filter_ids(alice, {"lens": "EF50mm f/1.8 STM"})) == named(ids, "percent", "cr2")
    assert set(await filter_ids(alice, {"lens": "ef50mm f/1.8 stm"})) == named(ids, "percent", "cr2")
    assert set(await filter_ids(alice, {"lens": "AF Nikkor 50mm f/1.8D"})) == named(ids, "nikon2", "nef")
    assert await filter_ids(alice, {"lens": "Nikkor"}) == []
    assert await filter_ids(alice, {"lens": "AF Nikkor 50mm"}) == []


def test_make_normaliser():
    cases = {
        "NIKON CORPORATION": "Nikon", "Nikon": "Nikon", "Canon": "Canon", "CANON": "Canon",
        "OLYMPUS IMAGING CORP.": "Olympus", "OLYMPUS CORPORATION": "Olympus",
        "OLYMPUS OPTICAL CO.,LTD": "Olympus", "SAMSUNG": "Samsung", "samsung": "Samsung",
        "EASTMAN KODAK COMPANY": "Kodak", "FUJIFILM": "Fujifilm", "Panasonic": "Panasonic",
        "PENTAX Corporation": "Pentax", "PENTAX": "Pentax", "SONY": "Sony", "Sony": "Sony",
        "Apple": "Apple", "HTC": "HTC", "motorola": "Motorola", "Motorola": "Motorola",
        "NOKIA": "Nokia", "Nokia": "Nokia", "CASIO COMPUTER CO.,LTD.": "Casio",
        "CASIO COMPUTER CO.,LTD": "Casio", "Phase One": "Phase One", "Leica Camera AG": "Leica",
        "RICOH IMAGING COMPANY, LTD.": "Ricoh", "GoPro": "GoPro", "LGE": "LG",
        "Acme Widgets": "Acme Widgets", "ACME WIDGETS": "Acme Widgets", "  ": None, "": None,
    }
    for raw, want in cases.items():
        assert normalise_make(raw) == want, raw
    assert normalise_make(None) is None
    assert lens_key("  EF50mm   f/1.8 STM ") == "ef50mm f/1.8 stm"


@given(st.text(alphabet="abcdefgxyz ABCDEFGXYZ.,-&/", max_size=30))
@hypothesis_settings(max_examples=200, deadline=None)
def test_make_normaliser_is_idempotent_and_ignores_case(raw):
    once = normalise_make(raw)
    assert normalise_make(once) == once
    assert normalise_make(raw.upper()) == once == normalise_make(raw.lower())


async def test_facets_are_exact_under_edits_and_delete(library, services):
    alice, bob, ids = library
    facets = await options(alice)
    assert facets["camera_makes"] == {"Nikon": 3, "Canon": 2, "Olympus": 1}
    assert facets["lenses"] == {
        "AF-S DX Zoom-Nikkor 18-70mm f/3.5-4.5G IF-ED": 1, "AF Nikkor 50mm f/1.8D": 2,
        "EF50mm f/1.8 STM": 2, "OLYMPUS M.17mm F1.8": 1,
    }
    assert facets["years"] == {2020: 4, 2021: 1, 2018: 1, 2012: 1}
    data = (await alice.call("GET", "/assets/filter-options"))["data"]
    assert [m["value"] for m in data["camera_makes"]] == ["Nikon", "Canon", "Olympus"]  # by count
    assert [y["value"] for y in data["years"]] == [2021, 2020, 2018, 2012]  # newest first

    # Ratings and likes do not move facets.
    await alice.call("PUT", f"/assets/{ids['nikon1']}/rating-and-like", {"rating": 3, "liked": True})
    assert await options(alice) == facets

    # A user's edit replaces the extracted make and lens.
    await alice.call("PUT", f"/assets/{ids['nikon1']}",
                     {"specific_metadata": {"camera_make": "FUJIFILM", "lens_model": "XF35mmF1.4 R"}})
    edited = await options(alice)
    assert edited["camera_makes"] == {"Nikon": 2, "Canon": 2, "Olympus": 1, "Fujifilm": 1}
    assert edited["lenses"]["XF35mmF1.4 R"] == 1
    assert "AF-S DX Zoom-Nikkor 18-70mm f/3.5-4.5G IF-ED" not in edited["lenses"]
    assert set(await filter_ids(alice, {"camera_make": "fujifilm"})) == named(ids, "nikon1")
    assert set(await filter_ids(alice, {"camera_make": "nikon"})) == named(ids, "nikon2", "nef")

    # An edit of another field leaves the facets alone; an edit to no make removes it.
    await alice.call("PUT", f"/assets/{ids['nef']}", {"specific_metadata": {"iso_speed": 800}})
    assert (await options(alice))["camera_makes"]["Nikon"] == 2
    await alice.call("PUT", f"/assets/{ids['nef']}", {"specific_metadata": {"camera_make": None}})
    assert (await options(alice))["camera_makes"]["Nikon"] == 1
    assert (await options(alice))["lenses"]["AF Nikkor 50mm f/1.8D"] == 2  # its lens is kept

    # A deleted asset leaves every count.
    await alice.call("DELETE", f"/assets/{ids['olympus']}")
    await alice.call("DELETE", f"/assets/{ids['cr2']}")
    after = await options(alice)
    assert after["camera_makes"] == {"Nikon": 1, "Canon": 1, "Fujifilm": 1}
    assert after["lenses"] == {"XF35mmF1.4 R": 1, "AF Nikkor 50mm f/1.8D": 2, "EF50mm f/1.8 STM": 1}
    assert after["years"] == {2020: 4, 2018: 1}
    assert ids["olympus"] not in await filter_ids(alice, {})

    # Per owner: Bob sees only his own.
    assert await options(bob) == {"camera_makes": {"Nikon": 1}, "lenses": {"AF Nikkor 50mm f/1.8D": 1},
                                  "years": {2020: 1}}

    # The facets rebuilt from the log equal the ones followed live.
    before = services.db.query("SELECT * FROM facet_values ORDER BY asset_id")
    catalog_before = services.db.query("SELECT * FROM catalog_assets ORDER BY asset_id")
    rebuild(services.app, services.db, FacetsProjection, batch_size=7)
    assert services.db.query("SELECT * FROM facet_values ORDER BY asset_id") == before
    assert services.db.query("SELECT * FROM catalog_assets ORDER BY asset_id") == catalog_before
    assert await options(alice) == after


async def test_facets_follow_a_new_extraction_but_keep_user_edits(client, services):
    user = await register(client, "reprocessor")
    asset_id = add_asset(services, user.user_id, "a.jpg", make="SONY", lens="FE 50mm", taken="2019-01-01T00:00:00")
    other = add_asset(services, user.user_id, "b.jpg", make="SONY", lens="FE 85mm", taken="2019-06-01T00:00:00")
    settle(services)
    await user.call("PUT", f"/assets/{asset_id}", {"specific_metadata": {"lens_model": "My Lens"}})
    queued = (await user.call("POST", f"/assets/{other}/reprocess",
                              {"tasks": ["metadata_asset"]}))["data"]
    assert queued["retry_tasks"] == ["metadata_asset"]
    job_id = services.app.repository.get(UUID(other)).tasks["metadata_asset"]["job_id"]
    ticket = services.app.start_job(job_id, "w")
    services.app.complete_job(job_id, ticket.attempt, {
        "width": 1, "height": 1, "duration": None, "taken_time": "2022-02-02T02:02:02",
        "taken_time_local": "2022-02-02T02:02:02",
        "specific_metadata": {"camera_make": "Canon", "lens_model": "EF 85mm"}})
    settle(services)
    facets = await options(user)
    assert facets == {"camera_makes": {"Sony": 1, "Canon": 1}, "lenses": {"My Lens": 1, "EF 85mm": 1},
                      "years": {2019: 1, 2022: 1}}


# -- paging, isolation -----------------------------------------------------------------------


async def test_paging_with_total(library):
    alice, _, ids = library
    full = (await alice.call("POST", "/assets/filter", {"filter": {}, "limit": 100}))["data"]
    assert full["total"] == len(ALICE_ALL) and len(full["assets"]) == len(ALICE_ALL)
    order = [a["asset_id"] for a in full["assets"]]
    # Newest taken first, untimed assets by upload time.
    timed = [a for a in full["assets"] if a["taken_time"]]
    keys = [a["asset_id"] for a in timed]
    assert keys[:3] == [ids["cr2"], ids["nef"], ids["nikon2"]]

    pages: list[str] = []
    for offset in range(0, 10, 4):
        page = (await alice.call("POST", "/assets/filter", {"limit": 4, "offset": offset}))["data"]
        assert page["total"] == len(ALICE_ALL) and page["limit"] == 4 and page["offset"] == offset
        pages += [a["asset_id"] for a in page["assets"]]
    assert pages == order
    beyond = (await alice.call("POST", "/assets/filter", {"offset": 50}))["data"]
    assert beyond == {"assets": [], "limit": 20, "offset": 50, "total": len(ALICE_ALL)}
    clamped = (await alice.call("POST", "/assets/filter", {"limit": 1000}))["data"]
    assert clamped["limit"] == 100
    default = (await alice.call("POST", "/assets/filter", {}))["data"]
    assert default["limit"] == 20 and default["offset"] == 0
    narrowed = (await alice.call("POST", "/assets/filter", {"filter": {"camera_make": "nikon"}, "limit": 2}))["data"]
    assert narrowed["total"] == 3 and len(narrowed["assets"]) == 2


async def test_users_only_ever_see_their_own(library):
    alice, bob, ids = library
    assert await filter_ids(bob, {}) == [ids["bob"]]
    assert await filter_ids(bob, {"owner_id": alice.user_id}) == []
    none = (await bob.call("POST", "/assets/filter", {"filter": {"owner_id": alice.user_id}}))["data"]
    assert none["total"] == 0
    assert await filter_ids(alice, {"owner_id": bob.user_id}) == []
    assert ids["bob"] not in await filter_ids(alice, {"camera_make": "nikon"})
    assert (await bob.call("POST", "/assets/search", {"query": "IMG", "search_type": "filename"}))["data"]["total"] == 1
    resp = await alice.client.post("/api/v1/assets/filter", json={})
    assert resp.status == 401


# -- filename search -------------------------------------------------------------------------


async def test_filename_search(library):
    alice, _, ids = library

    async def search(query: str, **extra: Any) -> dict[str, Any]:
        return (await alice.call("POST", "/assets/search", {"query": query, "search_type": "filename", **extra}))["data"]

    found = await search("img")
    assert [a["asset_id"] for a in found["assets"]] == [ids["nikon2"], ids["nikon1"]]  # newest first
    assert found["total"] == 2 and found["limit"] == 20 and found["offset"] == 0
    assert (await search("IMG_0001"))["total"] == 1
    assert {a["asset_id"] for a in (await search("%"))["assets"]} == named(ids, "percent")
    assert {a["asset_id"] for a in (await search("_"))["assets"]} == named(
        ids, "nikon1", "nikon2", "nef", "percent", "cr2")
    assert (await search("*"))["total"] == 0  # a substring, not a glob
    assert {a["asset_id"] for a in (await search("[1]"))["assets"]} == named(ids, "clip")
    assert {a["asset_id"] for a in (await search("g", filter={"type": "PHOTO"}))["assets"]} == named(
        ids, "nikon1", "nikon2", "percent", "olympus")
    assert {a["asset_id"] for a in (await search(".", filter={"raw": True, "rating": 0}))["assets"]} == named(
        ids, "nef", "cr2")
    assert {a["asset_id"] for a in (await search("0", filter={
        "filename": {"mode": "startswith", "value": "img"}}))["assets"]} == named(ids, "nikon1", "nikon2")
    paged = await search("_", limit=2, offset=2)
    assert paged["total"] == 5 and len(paged["assets"]) == 2
    await alice.call("DELETE", f"/assets/{ids['nikon1']}")
    assert (await search("img"))["total"] == 1


async def test_semantic_search_needs_an_embedder(library):
    alice, _, _ = library
    body = await alice.call("POST", "/assets/search", {"query": "a dog on a beach", "search_type": "semantic"},
                            expect=503)
    assert body["code"] == 503 and "embedder" in body["message"] and "data" not in body


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    ({"filter": {"filename": {"mode": "regex", "value": "x"}}}, "filter.filename.mode"),
    ({"filter": {"filename": {"mode": "contains"}}}, "filter.filename.value"),
    ({"filter": {"filename": {"mode": "contains", "value": 5}}}, "filter.filename.value"),
    ({"filter": {"filename": "IMG"}}, "filter.filename"),
    ({"filter": {"date": {"from": "2020-13-01"}}}, "filter.date.from"),
    ({"filter": {"date": {"to": "yesterday"}}}, "filter.date.to"),
    ({"filter": {"date": {"from": "2020-05-02", "to": "2020-05-01"}}}, "filter.date"),
    ({"filter": {"date": {"since": "2020-05-01"}}}, "filter.date.since"),
    ({"filter": {"date": {"from": 2020}}}, "filter.date.from"),
    ({"filter": {"rating": 9}}, "filter.rating"),
    ({"filter": {"rating": -1}}, "filter.rating"),
    ({"filter": {"rating": "5"}}, "filter.rating"),
    ({"filter": {"rating": 2.5}}, "filter.rating"),
    ({"filter": {"liked": "true"}}, "filter.liked"),
    ({"filter": {"raw": 1}}, "filter.raw"),
    ({"filter": {"type": "IMAGE"}}, "filter.type"),
    ({"filter": {"owner_id": "1"}}, "filter.owner_id"),
    ({"filter": {"camera_make": ["Nikon"]}}, "filter.camera_make"),
    ({"filter": {"camera_make": ""}}, "filter.camera_make"),
    ({"filter": {"colour": "red"}}, "filter.colour"),
    ({"filter": []}, "filter"),
    ({"filters": {}}, "filters"),
    ({"filter": {"camera_make": "Nik\x00on"}}, "filter.camera_make"),
    ({"filter": {"lens": "\ud800"}}, "filter.lens"),
    ({"filter": {"filename": {"mode": "contains", "value": "a\x00"}}}, "filter.filename.value"),
    ({"filter": {"repository_id": "x" * 201}}, "filter.repository_id"),
    ({"filter": {"date": {"from": "2020-05-01\x00"}}}, "filter.date.from"),
    ({"limit": 0}, "limit"),
    ({"limit": -5}, "limit"),
    ({"limit": "10"}, "limit"),
    ({"offset": -1}, "offset"),
    ({"offset": 10**30}, "offset"),
])
async def test_bad_filters_are_400_naming_the_field(library, body, field):
    alice, _, _ = library
    answer = await alice.call("POST", "/assets/filter", body, expect=400)
    assert answer["code"] == 400 and f"'{field}'" in answer["message"], answer
    search = await alice.call("POST", "/assets/search", {"query": "x", "search_type": "filename", **body},
                              expect=400)
    assert f"'{field}'" in search["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"search_type": "filename"}, "query"),
    ({"query": "", "search_type": "filename"}, "query"),
    ({"query": "x"}, "search_type"),
    ({"query": "x", "search_type": "fuzzy"}, "search_type"),
    ({"query": 5, "search_type": "filename"}, "query"),
    ({"query": "img\x00", "search_type": "filename"}, "query"),
    ({"query": "\udfff", "search_type": "filename"}, "query"),
])
async def test_bad_searches_are_400(library, body, field):
    alice, _, _ = library
    answer = await alice.call("POST", "/assets/search", body, expect=400)
    assert f"'{field}'" in answer["message"], answer


async def test_bad_json_is_400(library):
    alice, _, _ = library
    resp = await alice.client.post("/api/v1/assets/filter", data=b"{not json", headers=alice.headers)
    assert resp.status == 400


# -- property: the endpoint agrees with a plain-Python filter --------------------------------

NAMES = ["IMG_0001.JPG", "img_0002.jpg", "DSC_0003.NEF", "100%_done.png", "a_b.cr2", "clip[1].mp4",
         "song.mp3", "Report (final).PDF", "IMG_1234.dng", "x^y.jpg", "holiday-2020.JPG", "a.b.c.png",
         "ÄRGER.jpg", "star*.jpg", "q?.pdf", "back\\slash.jpg", "IMG_0005.JPG", "dsc_0006.nef"]
MAKES = [("NIKON CORPORATION", "Nikon"), ("Nikon", "Nikon"), ("Canon", "Canon"), ("CANON", "Canon"),
         ("OLYMPUS IMAGING CORP.", "Olympus"), ("SONY", "Sony"), (None, None)]
LENSES = ["AF Nikkor 50mm f/1.8D", "af nikkor 50mm F/1.8d", "EF50mm f/1.8 STM", "E PZ 16-50mm", None]
TIMES = ["2020-05-01T10:00:00", "2020-05-01T23:59:59", "2020-05-02T00:00:00", "2019-12-31T23:00:00-02:00",
         "2021-07-04T12:00:00+05:30", "2018-03-03T08:00:00", None]


def reference_instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def reference_bound(value: str, end: bool) -> datetime:
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime.combine(day, time.max if end else time.min, timezone.utc)
    return reference_instant(value)  # type: ignore[return-value]


def reference(assets: list[dict[str, Any]], owner_id: int, flt: dict[str, Any]) -> list[dict[str, Any]]:
    """A plain-Python filter over what the scenario put in (not over what the server stored)."""
    if flt.get("owner_id") not in (None, owner_id):
        return []
    out = []
    for a in assets:
        if a["deleted"]:
            continue
        if "type" in flt and a["type"] != flt["type"]:
            continue
        if "raw" in flt and a["raw"] != flt["raw"]:
            continue
        if "rating" in flt and a["rating"] != flt["rating"]:
            continue
        if "liked" in flt and a["liked"] != flt["liked"]:
            continue
        if "camera_make" in flt and a["make"] != {"nikon": "Nikon", "NIKON CORPORATION": "Nikon",
                                                   "canon": "Canon", "Olympus": "Olympus",
                                                   "Sony": "Sony", "Pentax": "Pentax"}[flt["camera_make"]]:
            continue
        if "lens" in flt and (a["lens"] is None or a["lens"].lower() != flt["lens"].lower()):
            continue
        if "filename" in flt:
            mode, value = flt["filename"]["mode"], flt["filename"]["value"].lower()
            name = a["filename"].lower()
            ok = {"contains": value in name, "startswith": name.startswith(value),
                  "endswith": name.endswith(value)}.get(mode)
            if mode == "matches":
                ok = fnmatch.fnmatchcase(name, value)
            if not ok:
                continue
        if flt.get("date"):  # an empty range constrains nothing
            taken = reference_instant(a["taken"])
            if taken is None:
                continue
            if "from" in flt["date"] and taken < reference_bound(flt["date"]["from"], False):
                continue
            if "to" in flt["date"] and taken > reference_bound(flt["date"]["to"], True):
                continue
        out.append(a)
    return out


glob_text = st.text(alphabet="img_0*?[]!-a.jpgn%", max_size=8)
date_values = st.sampled_from(["2018-03-03", "2019-12-31", "2020-01-01", "2020-05-01", "2020-05-02",
                               "2020-05-01T10:00:00", "2020-05-01T23:59:59Z", "2020-05-02T01:00:00+02:00",
                               "2021-07-04T06:30:00Z", "2021-07-04T06:29:59Z", "2022-01-01"])
FIELD_STRATEGIES = {
    "type": st.sampled_from(["PHOTO", "VIDEO", "AUDIO", "DOCUMENT"]),
    "raw": st.booleans(),
    "rating": st.integers(0, 5),
    "liked": st.booleans(),
    "camera_make": st.sampled_from(["nikon", "NIKON CORPORATION", "canon", "Olympus", "Sony", "Pentax"]),
    "lens": st.sampled_from([lens for lens in LENSES if lens] + ["EF50MM F/1.8 STM", "Nikkor"]),
    "filename": st.fixed_dictionaries({
        "mode": st.sampled_from(["contains", "startswith", "endswith", "matches"]),
        "value": glob_text,
    }),
    "date": st.fixed_dictionaries({}, optional={"from": date_values, "to": date_values}),
    "owner_id": st.sampled_from(["self", "other"]),
}
# A few fields at a time, so that most filters select something and AND is still exercised.
filters = st.lists(st.sampled_from(sorted(FIELD_STRATEGIES)), max_size=3, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries({k: FIELD_STRATEGIES[k] for k in keys})
)


def build_property_library(services: Services, owner_id: int, other_id: int) -> list[dict[str, Any]]:
    rng = random.Random(20240501)
    assets = []
    for n, filename in enumerate(NAMES):
        raw_make, make = rng.choice(MAKES)
        lens = rng.choice(LENSES)
        taken = rng.choice(TIMES)
        ext = "." + filename.rsplit(".", 1)[-1].lower()
        mime, asset_type = MIME[ext]
        asset_id = add_asset(services, owner_id, filename, make=raw_make, lens=lens, taken=taken)
        rating, liked = rng.randint(0, 5), rng.random() < 0.4
        services.app.rate_and_like(owner_id, UUID(asset_id), rating, liked)
        deleted = rng.random() < 0.15
        if deleted:
            services.app.delete_asset(owner_id, UUID(asset_id))
        assets.append({"id": asset_id, "filename": filename, "type": asset_type,
                       "raw": mime.startswith("image/x-"), "make": make, "lens": lens, "taken": taken,
                       "rating": rating, "liked": liked, "deleted": deleted})
    add_asset(services, other_id, "IMG_0001.JPG", make="NIKON CORPORATION", taken=TIMES[0])
    settle(services)
    return assets


def test_filter_endpoint_agrees_with_a_reference_filter(services):
    runner = asyncio.Runner()  # one event loop for the server and every example's requests

    async def start() -> TestClient:
        client = TestClient(TestServer(create_app(services, start_projections=False)))
        await client.start_server()
        return client

    client = runner.run(start())
    try:
        owner = runner.run(register(client, "prop"))
        other = runner.run(register(client, "other"))
        assets = build_property_library(services, owner.user_id, other.user_id)
        # Newest taken first; an untimed asset sorts by its upload time (after every taken time
        # here, since the scenario's times are all in the past).
        listed = runner.run(owner.call("POST", "/assets/filter", {"limit": 100}))["data"]["assets"]
        position = {a["asset_id"]: i for i, a in enumerate(listed)}

        @given(filters)
        @hypothesis_settings(max_examples=40, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture])
        def check(flt: dict[str, Any]) -> None:
            if "owner_id" in flt:
                flt["owner_id"] = owner.user_id if flt["owner_id"] == "self" else other.user_id
            date_range = flt.get("date", {})
            if "from" in date_range and "to" in date_range and (
                reference_bound(date_range["from"], False) > reference_bound(date_range["to"], True)
            ):
                body = runner.run(owner.call("POST", "/assets/filter", {"filter": flt}, expect=400))
                assert "'filter.date'" in body["message"]
                return
            body = runner.run(owner.call("POST", "/assets/filter", {"filter": flt, "limit": 7}))["data"]
            expected = sorted((a["id"] for a in reference(assets, owner.user_id, flt)), key=position.__getitem__)
            assert body["total"] == len(expected), flt
            assert [a["asset_id"] for a in body["assets"]] == expected[:7], flt
            if body["total"] > 7:
                rest = runner.run(owner.call("POST", "/assets/filter",
                                             {"filter": flt, "limit": 100, "offset": 7}))["data"]
                assert [a["asset_id"] for a in rest["assets"]] == expected[7:], flt

        check()
    finally:
        runner.run(client.close())
        runner.close()


def test_glob_parser_marks_empty_classes():
    assert parse_glob("[z-a]") == [("never",)]
    assert parse_glob("[!z-a]") == [("any",)]
    assert parse_glob("a[") == [("lit", "a"), ("lit", "[")]
    assert date_bound("2020-05-01", end=True) == "2020-05-01T23:59:59.999999Z"
    assert date_bound("2020-05-01T02:00:00+02:00", end=False) == "2020-05-01T00:00:00.000000Z"
