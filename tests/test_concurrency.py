"""Invariants under parallel requests (ARCHITECTURE invariants 2 and 7).

Requests are fired with asyncio.gather over one test client; the server runs each command on an
executor thread, so the commands really race on the event store. Afterwards the aggregate (the
event stream, read through `services.app`) and the read models seen over HTTP must agree.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import threading
from typing import Any
from uuid import UUID

import pytest

from domain.ids import album_id_to_uuid
from tests.helpers import API, User, photos, register
from tests.scenario import fake_upload





async def members(user: User, album_id: int) -> list[str]:
    """Asset ids of an album in order, after checking that positions are exactly 0..n-1."""
    assets = (await user.call("GET", f"/albums/{album_id}/assets"))["data"]["assets"]
    assert [a["position"] for a in assets] == list(range(len(assets))), assets
    return [a["asset_id"] for a in assets]


def events_of(services: Any, aggregate_id: UUID, kind: str) -> list[Any]:
    """The aggregate's recorded events of one type (e.g. 'Asset.RatingChanged'), oldest first."""
    return [e for e in services.app.repository.event_store.get(aggregate_id)
            if type(e).__qualname__ == kind]


def assert_ok_or_conflict(responses: list[dict[str, Any]]) -> None:
    """Every answer is a 200, or a 409 with the envelope; never a 500 or anything else."""
    for r in responses:
        assert r["_status"] in (200, 409), r
        assert r["code"] == (0 if r["_status"] == 200 else 409), r


# -- albums ----------------------------------------------------------------------------------


async def test_parallel_adds_of_different_assets_all_land_densely(client, services, media):
    """16 parallel adds (both routes) all answer 200 and end as positions 0..15, each once."""
    alice = await register(client, "alice")
    assets = await photos(alice, media, 16)
    aid = (await alice.call("POST", "/albums", {"album_name": "race"}, expect=201))["data"]["album_id"]

    def add(i: int, asset: str) -> Any:
        path = f"/albums/{aid}/assets/{asset}" if i % 2 else f"/assets/{asset}/albums/{aid}"
        return alice.call("POST", path, expect=None)

    answers = await asyncio.gather(*(add(i, a) for i, a in enumerate(assets)))
    assert [r["_status"] for r in answers] == [200] * 16, answers

    order = await members(alice, aid)
    assert sorted(order) == sorted(assets)
    assert services.app.repository.get(album_id_to_uuid(aid)).asset_ids == order
    assert (await alice.call("GET", f"/albums/{aid}"))["data"]["asset_count"] == 16
    for asset in assets[:3]:
        albums = (await alice.call("GET", f"/assets/{asset}/albums"))["data"]["albums"]
        assert [a["album_id"] for a in albums] == [aid]


async def test_parallel_adds_of_the_same_asset_land_once(client, services, media):
    """8 parallel adds of one asset: exactly one 200, the others 409, one member."""
    alice = await register(client, "alice")
    [asset] = await photos(alice, media, 1)
    aid = (await alice.call("POST", "/albums", {"album_name": "race"}, expect=201))["data"]["album_id"]
    answers = await asyncio.gather(
        *(alice.call("POST", f"/albums/{aid}/assets/{asset}", expect=None) for _ in range(8))
    )
    assert_ok_or_conflict(answers)
    assert sorted(r["_status"] for r in answers) == [200] + [409] * 7, answers
    assert await members(alice, aid) == [asset]
    assert services.app.repository.get(album_id_to_uuid(aid)).asset_ids == [asset]


async def test_parallel_moves_and_removes_keep_a_permutation(client, services, media):
    """Racing moves (200 or 409) and removes (200) leave a dense order equal to the aggregate's."""
    alice = await register(client, "alice")
    assets = await photos(alice, media, 10)
    aid = (await alice.call("POST", "/albums", {"album_name": "shuffle"}, expect=201))["data"]["album_id"]
    for a in assets:
        await alice.call("POST", f"/albums/{aid}/assets/{a}")

    rng = random.Random(7)
    movers, removed = assets[:6], assets[8:]
    moves = [alice.call("PUT", f"/albums/{aid}/assets/{a}/position",
                        {"position": rng.randrange(0, 8)}, expect=None) for a in movers]
    removes = [alice.call("DELETE", f"/albums/{aid}/assets/{a}", expect=None) for a in removed]
    answers = await asyncio.gather(*moves, *removes)
    # A move decided on a longer album may name a position that no longer exists after a remove:
    # that is a 400 for the loser, never a 500.
    for r in answers[:len(moves)]:
        assert r["_status"] in (200, 400, 409), r
    assert [r["_status"] for r in answers[len(moves):]] == [200] * len(removes), answers

    order = await members(alice, aid)
    assert sorted(order) == sorted(assets[:8])
    assert services.app.repository.get(album_id_to_uuid(aid)).asset_ids == order
    assert (await alice.call("GET", f"/albums/{aid}"))["data"]["asset_count"] == 8


async def test_parallel_album_creation_gives_distinct_consecutive_ids(client):
    """10 parallel creates (two users) get ids exactly 1..10."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    answers = await asyncio.gather(*(
        (alice if i % 2 else bob).call("POST", "/albums", {"album_name": f"a{i}"}, expect=None)
        for i in range(10)
    ))
    assert [r["_status"] for r in answers] == [201] * 10, answers
    assert sorted(r["data"]["album_id"] for r in answers) == list(range(1, 11))
    assert (await alice.call("GET", "/albums"))["data"]["total"] == 5
    assert (await bob.call("GET", "/albums"))["data"]["total"] == 5


# -- rating and like -------------------------------------------------------------------------


async def test_parallel_ratings_end_on_the_last_recorded_rating(client, services, media):
    """24 racing rating changes: no 500; the final rating is one that was sent, equals the last
    RatingChanged event, and the catalog agrees with the aggregate."""
    alice = await register(client, "alice")
    [asset] = await photos(alice, media, 1)
    rng = random.Random(2024)
    ratings = [rng.randint(0, 5) for _ in range(24)]
    answers = await asyncio.gather(*(
        alice.call("PUT", f"/assets/{asset}/rating", {"rating": r}, expect=None) for r in ratings
    ))
    assert_ok_or_conflict(answers)
    for r in answers:
        if r["_status"] == 200:
            assert 0 <= r["data"]["rating"] <= 5 and r["data"]["asset_id"] == asset

    aggregate = services.app.repository.get(UUID(asset))
    assert aggregate.rating in ratings
    changes = events_of(services, UUID(asset), "Asset.RatingChanged")
    assert changes, "at least one rating differed from the initial 0"
    assert changes[-1].rating == aggregate.rating
    # No change was recorded that nobody sent, and consecutive events really change something.
    assert all(e.rating in ratings for e in changes)
    assert all(a.rating != b.rating for a, b in zip(changes, changes[1:]))

    shown = (await alice.call("GET", f"/assets/{asset}"))["data"]
    assert shown["rating"] == aggregate.rating
    assert services.catalog.get(alice.user_id, asset)["rating"] == aggregate.rating
    by_rating = (await alice.call("GET", f"/assets/rating/{aggregate.rating}"))["data"]["assets"]
    assert [a["asset_id"] for a in by_rating] == [asset]


async def test_parallel_likes_and_unlikes_end_consistent(client, services, media):
    """Racing likes/unlikes on two assets: aggregate, last LikeChanged event, catalog and the
    liked listing all agree."""
    alice = await register(client, "alice")
    assets = await photos(alice, media, 2)
    rng = random.Random(99)
    calls = []
    for asset in assets:
        for _ in range(12):
            calls.append(alice.call("PUT", f"/assets/{asset}/like", {"liked": rng.random() < 0.5},
                                    expect=None))
    rng.shuffle(calls)
    answers = await asyncio.gather(*calls)
    assert_ok_or_conflict(answers)

    liked_now = {a["asset_id"] for a in (await alice.call("GET", "/assets/liked"))["data"]["assets"]}
    for asset in assets:
        aggregate = services.app.repository.get(UUID(asset))
        changes = events_of(services, UUID(asset), "Asset.LikeChanged")
        assert aggregate.liked == (changes[-1].liked if changes else False)
        assert all(a.liked != b.liked for a, b in zip(changes, changes[1:]))
        assert (await alice.call("GET", f"/assets/{asset}"))["data"]["liked"] is aggregate.liked
        assert bool(services.catalog.get(alice.user_id, asset)["liked"]) is aggregate.liked
        assert (asset in liked_now) is aggregate.liked


async def test_parallel_rating_and_like_changes_together(client, services, media):
    """Mixed rating, like and rating-and-like requests on one asset: catalog equals aggregate."""
    alice = await register(client, "alice")
    [asset] = await photos(alice, media, 1)
    rng = random.Random(5)
    calls = []
    for i in range(18):
        rating, liked = rng.randint(0, 5), rng.random() < 0.5
        if i % 3 == 0:
            calls.append(alice.call("PUT", f"/assets/{asset}/rating", {"rating": rating}, expect=None))
        elif i % 3 == 1:
            calls.append(alice.call("PUT", f"/assets/{asset}/like", {"liked": liked}, expect=None))
        else:
            calls.append(alice.call("PUT", f"/assets/{asset}/rating-and-like",
                                    {"rating": rating, "liked": liked}, expect=None))
    assert_ok_or_conflict(await asyncio.gather(*calls))
    aggregate = services.app.repository.get(UUID(asset))
    shown = (await alice.call("GET", f"/assets/{asset}"))["data"]
    assert (shown["rating"], shown["liked"]) == (aggregate.rating, aggregate.liked)


# -- registration ----------------------------------------------------------------------------


async def test_parallel_registrations_get_distinct_ids(client):
    """8 parallel registrations with distinct names all succeed with user ids 1..8, and each
    token belongs to its own user."""
    users = await asyncio.gather(*(register(client, f"user{i}") for i in range(8)))
    assert sorted(u.user_id for u in users) == list(range(1, 9))
    for u in users:
        me = await u.call("GET", "/auth/me")
        assert (me["data"]["user_id"], me["data"]["username"]) == (u.user_id, u.username)


async def _register_raw(client: Any, username: str, email: str, password: str) -> dict[str, Any]:
    resp = await client.post(f"{API}/auth/register",
                             json={"username": username, "email": email, "password": password})
    body = await resp.json()
    body["_status"] = resp.status
    return body


async def test_parallel_registrations_of_one_username_let_exactly_one_win(client):
    """4 racing registrations of the same name: one 201, three 409, and only the winner's
    password logs in."""
    passwords = [f"secret number {i}" for i in range(4)]
    answers = await asyncio.gather(*(
        _register_raw(client, "carol", f"carol{i}@example.org", passwords[i]) for i in range(4)
    ))
    statuses = sorted(r["_status"] for r in answers)
    assert statuses == [201, 409, 409, 409], answers
    assert all(r["code"] == 409 for r in answers if r["_status"] == 409)
    [winner] = [i for i, r in enumerate(answers) if r["_status"] == 201]
    assert answers[winner]["data"]["user"]["user_id"] == 1
    assert answers[winner]["data"]["user"]["email"] == f"carol{winner}@example.org"

    for i, password in enumerate(passwords):
        resp = await client.post(f"{API}/auth/login", json={"username": "carol", "password": password})
        assert resp.status == (200 if i == winner else 401), (i, await resp.json())

    # The losers' emails were not claimed: they can register under other names.
    loser = next(i for i in range(4) if i != winner)
    again = await _register_raw(client, "carol2", f"carol{loser}@example.org", "another password")
    assert again["_status"] == 201, again
    assert again["data"]["user"]["user_id"] == 2


async def test_parallel_registrations_of_one_email_let_exactly_one_win(client):
    """4 racing registrations with one email and different names: one 201, three 409."""
    answers = await asyncio.gather(*(
        _register_raw(client, f"dave{i}", "dave@example.org", "correct horse battery")
        for i in range(4)
    ))
    assert sorted(r["_status"] for r in answers) == [201, 409, 409, 409], answers
    [won] = [r for r in answers if r["_status"] == 201]
    assert won["data"]["user"]["user_id"] == 1


# -- the event log ---------------------------------------------------------------------------


def test_an_event_waits_for_an_open_insert_so_log_order_is_commit_order(services, backend):
    """PostgreSQL: while another transaction holds the events table's insert lock with an event
    not yet committed, a command's insert waits, then lands after it. Were it to land first, a
    projection tailing the log would pass the open event's lower notification id and miss it."""
    if backend != "postgres":
        pytest.skip("SQLite serialises writers on its database lock")
    app = services.app
    owner = app.register("u", "u@example.org", "x").user.user_id
    first, second = (app.upload(fake_upload(owner, n)).asset_id for n in range(2))
    other = app.repository.get(first)
    other.rate(5)
    stored = app.mapper.to_stored_event(other.collect_events()[0])
    recorder = app.recorder
    head = recorder.max_notification_id()
    event = recorder.construct_pg_stored_event(stored.originator_id, stored.originator_version,
                                               stored.topic, stored.state)
    with recorder.datastore.get_connection() as conn, conn.transaction():
        # The same insert the recorder makes, in a transaction left open until the block ends.
        open_id = conn.execute(recorder._insert_call, ([event],)).fetchone()["id"]
        done: list[int] = []
        command = threading.Thread(target=lambda: done.append(app.rate(owner, second, 3)))
        command.start()
        command.join(timeout=1.0)
        assert command.is_alive() and not done, "the command's insert did not wait for the lock"
        assert recorder.max_notification_id() == head
    command.join(timeout=10)
    assert done and done[0] > open_id > head
    assert app.repository.get(second).rating == 3 and app.repository.get(first).rating == 5


def _bootstrap_once(settings: Any, failures: Any) -> None:
    from infra.bootstrap import bootstrap

    try:
        bootstrap(settings).close()
    except Exception as exc:  # reported to the test, which names it
        failures.put(f"{type(exc).__name__}: {exc}")


def test_processes_starting_together_on_an_empty_schema_all_come_up(settings, backend):
    """`serve` and its workers started at once on a fresh database: each creates the event store
    and the read models' tables; none may die on another's CREATE TABLE/TYPE/FUNCTION."""
    if backend != "postgres":
        pytest.skip("SQLite serialises schema changes on its database lock")
    context = multiprocessing.get_context("spawn")
    failures = context.Queue()
    starters = [context.Process(target=_bootstrap_once, args=(settings, failures)) for _ in range(4)]
    for p in starters:
        p.start()
    for p in starters:
        p.join(timeout=120)
    errors = []
    while not failures.empty():
        errors.append(failures.get())
    assert errors == [] and [p.exitcode for p in starters] == [0] * 4, errors
