"""Trash over HTTP on both backends: list, restore (albums and positions back), empty (files gone,
404 everywhere, search and facets no longer count), the automatic purge, a purge killed half-way,
and the read models rebuilding to the same answers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from processors.purge import Purger, TrashSweeper
from processors.worker import derived_dir_for
from projections.registry import PROJECTIONS
from projections.runner import rebuild
from tests.helpers import jpeg, photos, register
from tests.scenario import settle_jobs

REPO = Path(__file__).resolve().parents[1]
PHOTO = "photo/sony_dsc-hx5v_gps.jpg"
GONE = "0b9a3c4e-1111-4222-8333-944455556666"


async def _album(user: Any, name: str, ids: list[str]) -> int:
    album_id = (await user.call("POST", "/albums", {"album_name": name}, expect=201))["data"]["album_id"]
    for asset_id in ids:
        await user.call("POST", f"/albums/{album_id}/assets/{asset_id}", {})
    return album_id


async def _members(user: Any, album_id: int) -> list[str]:
    return [a["asset_id"] for a in (await user.call("GET", f"/albums/{album_id}/assets"))["data"]["assets"]]


async def _trash(user: Any) -> list[str]:
    data = (await user.call("GET", "/trash"))["data"]
    assert data["total"] == len(data["assets"])
    return [a["asset_id"] for a in data["assets"]]


async def test_restore_puts_assets_back_into_their_albums_at_their_positions(client):
    """Given assets in albums, when trashed and restored, they are listed again and back in each
    album they left at their old position (appended when it no longer fits; a deleted album is
    skipped)."""
    alice = await register(client, "alice")
    p = await photos(alice, Path(__file__).parent / "media", 5)
    a = await _album(alice, "A", p[:4])          # p1 at position 1
    b = await _album(alice, "B", [p[3], p[1]])   # p1 at position 1
    c = await _album(alice, "C", [p[1]])         # deleted while p1 is in the trash
    d = await _album(alice, "D", [p[0], p[2], p[1]])  # shrinks: position 2 no longer fits

    await alice.call("DELETE", f"/assets/{p[1]}")
    await alice.call("DELETE", f"/assets/{p[4]}")
    assert await _trash(alice) == [p[4], p[1]]  # most recently deleted first
    assert await _members(alice, a) == [p[0], p[2], p[3]]
    await alice.call("DELETE", f"/albums/{c}")
    await alice.call("DELETE", f"/albums/{d}/assets/{p[2]}")

    restored = (await alice.call("POST", "/trash/restore", {"asset_ids": [p[1]]}))["data"]
    assert restored == {"restored": 1, "asset_ids": [p[1]]}
    assert await _members(alice, a) == p[:4]
    assert await _members(alice, b) == [p[3], p[1]]
    assert await _members(alice, d) == [p[0], p[1]]
    detail = (await alice.call("GET", f"/assets/{p[1]}"))["data"]
    assert detail["is_deleted"] is False and detail["deleted_at"] is None
    assert {x["album_id"] for x in detail["albums"]} == {a, b, d}
    assert await _trash(alice) == [p[4]]

    # No body: the whole trash.
    assert (await alice.call("POST", "/trash/restore"))["data"]["restored"] == 1
    assert await _trash(alice) == []
    listed = (await alice.call("GET", "/assets?type=PHOTO&limit=100"))["data"]["assets"]
    assert sorted(x["asset_id"] for x in listed) == sorted(p)


async def test_restore_and_empty_refuse_bad_input_and_change_nothing(client):
    """Not in the trash: 409; unknown or another user's: 404; malformed: 400; and then nothing of
    the batch happened."""
    alice, bob = await register(client, "alice"), await register(client, "bob")
    kept, trashed = await photos(alice, Path(__file__).parent / "media", 2)
    (bobs,) = await photos(bob, Path(__file__).parent / "media", 1)
    await alice.call("DELETE", f"/assets/{trashed}")
    await bob.call("DELETE", f"/assets/{bobs}")
    for path in ("/trash/restore", "/trash/empty"):
        await alice.call("POST", path, {"asset_ids": [trashed, kept]}, expect=409)
        await alice.call("POST", path, {"asset_ids": [trashed, GONE]}, expect=404)
        await alice.call("POST", path, {"asset_ids": [trashed, bobs]}, expect=404)
        for body in ({"asset_ids": ["not-a-uuid"]}, {"asset_ids": []}, {"asset_ids": [trashed, trashed]},
                     {"asset_ids": trashed}, {"asset_ids": [1]}, {"asset_ids": [trashed], "all": True}):
            await alice.call("POST", path, body, expect=400)
        assert await _trash(alice) == [trashed]
    assert await _trash(bob) == [bobs]
    # Emptying alice's whole trash never touches bob's.
    assert (await alice.call("POST", "/trash/empty"))["data"]["purged"] == 1
    assert await _trash(bob) == [bobs]
    await alice.call("GET", f"/assets/{kept}")
    await alice.call("GET", "/trash?limit=0", expect=400)


async def test_empty_removes_files_and_the_asset_answers_404_everywhere(client, services, media):
    """Given a processed photo (thumbnails on disk), when its trash is emptied, the original and
    the derived files leave the disk, every route answers 404, and search, facets and stats no
    longer count it."""
    services.start_processing()
    alice = await register(client, "alice")
    asset_id = (await alice.upload(media / PHOTO))["data"]["asset_id"]
    other = (await alice.upload(media / "photo/nikon_d5000.jpg"))["data"]["asset_id"]
    settle_jobs(services)
    detail = (await alice.call("GET", f"/assets/{asset_id}"))["data"]
    original = services.storage.path_of(detail["repository_id"], detail["storage_path"])
    derived = derived_dir_for(services.settings.data_dir / "derived", asset_id)
    assert original.exists() and any(derived.iterdir())
    album = await _album(alice, "A", [asset_id, other])
    facets = (await alice.call("GET", "/assets/filter-options"))["data"]
    assert {m["value"] for m in facets["camera_makes"]} == {"Sony", "Nikon"}

    await alice.call("DELETE", f"/assets/{asset_id}")
    size = original.stat().st_size + sum(f.stat().st_size for f in derived.rglob("*") if f.is_file())
    emptied = (await alice.call("POST", "/trash/empty", {"asset_ids": [asset_id]}))["data"]
    assert emptied == {"purged": 1, "bytes_freed": size, "asset_ids": [asset_id]}
    assert not original.exists() and not derived.exists()

    for method, path, body in (
        ("GET", "", None), ("GET", "/original", None), ("GET", "/thumbnail", None), ("GET", "/albums", None),
        ("PUT", "/rating", {"rating": 3}), ("PUT", "/like", {"liked": True}), ("DELETE", "", None),
        ("POST", "/reprocess", {}),
    ):
        resp = await client.request(method, f"/api/v1/assets/{asset_id}{path}", json=body, headers=alice.headers)
        assert resp.status == 404, (method, path, resp.status)
    await alice.call("POST", f"/albums/{album}/assets/{asset_id}", {}, expect=404)
    await alice.call("POST", "/trash/restore", {"asset_ids": [asset_id]}, expect=404)
    await alice.call("POST", "/trash/empty", {"asset_ids": [asset_id]}, expect=404)
    assert await _members(alice, album) == [other]
    assert await _trash(alice) == []
    found = (await alice.call("POST", "/assets/search", {"query": "sony", "search_type": "filename"}))["data"]
    assert found["total"] == 0
    filtered = (await alice.call("POST", "/assets/filter", {"filter": {}, "limit": 100}))["data"]
    assert [a["asset_id"] for a in filtered["assets"]] == [other] and filtered["total"] == 1
    facets = (await alice.call("GET", "/assets/filter-options"))["data"]
    assert {m["value"] for m in facets["camera_makes"]} == {"Nikon"}
    hours = (await alice.call("GET", "/stats/time-distribution?type=monthly"))["data"]["data"]
    assert sum(b["count"] for b in hours) == 1
    # The same content uploaded again is a new asset with its file back on disk.
    again = (await alice.upload(media / PHOTO))["data"]
    assert again["status"] == "queued" and again["asset_id"] != asset_id
    assert original.exists()


async def test_a_file_another_asset_references_stays(client, services, media):
    """Trash a photo, upload the same content again (a new asset on the same file), empty the
    trash: the file stays for the new asset; trash and empty that one too: now it goes."""
    alice = await register(client, "alice")
    first = (await alice.upload_bytes(jpeg(media, "x"), "x.jpg"))["data"]["asset_id"]
    await alice.call("DELETE", f"/assets/{first}")
    second = (await alice.upload_bytes(jpeg(media, "x"), "x.jpg"))["data"]["asset_id"]
    assert second != first
    detail = (await alice.call("GET", f"/assets/{second}"))["data"]
    path = services.storage.path_of(detail["repository_id"], detail["storage_path"])
    emptied = (await alice.call("POST", "/trash/empty"))["data"]
    assert emptied["purged"] == 1 and emptied["bytes_freed"] == 0
    resp = await client.get(f"/api/v1/assets/{second}/original", headers=alice.headers)
    assert resp.status == 200 and await resp.read() == jpeg(media, "x")

    await alice.call("DELETE", f"/assets/{second}")
    assert (await alice.call("POST", "/trash/empty"))["data"]["bytes_freed"] == len(jpeg(media, "x"))
    assert not path.exists()


async def test_expired_trash_is_purged_automatically(client, services, media):
    """Assets deleted `trash_days` ago or more are purged by the sweeper; newer ones stay."""
    alice = await register(client, "alice")
    old, fresh = await photos(alice, media, 2)
    await alice.call("DELETE", f"/assets/{old}")
    await alice.call("DELETE", f"/assets/{fresh}")
    purger = Purger(services)
    assert purger.purge_expired(datetime.now(timezone.utc) + timedelta(days=29)) == 0
    assert await _trash(alice) == [fresh, old]
    services.settings.trash_days = 0.0
    assert TrashSweeper(services).sweep() == (0, 2)
    assert await _trash(alice) == []
    await alice.call("GET", f"/assets/{old}", expect=404)


_CRASH = """
import os, sys, uuid
sys.path.insert(0, {repo!r})
from infra.bootstrap import bootstrap
from infra.settings import load_settings
services = bootstrap(load_settings(environ=dict({env!r})))
services.app.purge_asset({user_id}, uuid.UUID({asset_id!r}))  # step 1: the event
os.kill(os.getpid(), 9)  # killed before step 2: the files are still on disk
"""


async def test_a_purge_killed_between_its_steps_is_finished_after_restart(client, services, media):
    """Kill the process after the purge's event and before the files go: nothing points at a
    missing file (the asset is 404), and the sweeper of the next start removes the files."""
    alice = await register(client, "alice")
    (asset_id,) = await photos(alice, media, 1)
    detail = (await alice.call("GET", f"/assets/{asset_id}"))["data"]
    path = services.storage.path_of(detail["repository_id"], detail["storage_path"])
    await alice.call("DELETE", f"/assets/{asset_id}")
    s = services.settings
    env = {"DARKROOM_DATA_DIR": str(s.data_dir), "DARKROOM_DATABASE_URL": s.database_url,
           "DARKROOM_DATABASE_SCHEMA": s.database_schema, "DARKROOM_JWT_SECRET": s.jwt_secret}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(_CRASH).format(
        repo=str(REPO), env=env, user_id=alice.user_id, asset_id=asset_id)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == -9, proc.stderr[-2000:]

    for runner in services.runners.values():
        runner.catch_up()
    await alice.call("GET", f"/assets/{asset_id}", expect=404)
    assert path.exists()  # an owner-less file, known to the purge ledger
    assert [r["asset_id"] for r in Purger(services).ledger.pending()] == [asset_id]

    assert TrashSweeper(services).sweep() == (1, 0)  # what a (re)start runs first
    assert not path.exists()
    assert Purger(services).ledger.pending() == []


async def test_trash_read_models_rebuild_to_the_same_rows(client, services, media):
    """Trash, restore and purge, then rebuild every read model: the same rows."""
    alice = await register(client, "alice")
    p = await photos(alice, media, 4)
    album = await _album(alice, "A", p)
    for asset_id in p[:3]:
        await alice.call("DELETE", f"/assets/{asset_id}")
    await alice.call("POST", "/trash/restore", {"asset_ids": [p[0]]})
    await alice.call("POST", "/trash/empty", {"asset_ids": [p[1]]})
    tables = ("catalog_assets", "album_assets", "purged_assets", "facet_values", "search_documents")

    def rows() -> dict[str, list[dict[str, Any]]]:
        out = {}
        for table in tables:
            found = services.db.query(f"SELECT * FROM {table}")
            out[table] = sorted((tuple(sorted((k, v) for k, v in r.items() if k != "seq")) for r in found), key=repr)
        return out

    live = rows()
    for cls in PROJECTIONS.values():
        rebuild(services.app, services.db, cls)
    assert rows() == live
    assert await _members(alice, album) == [p[0], p[3]]
    assert await _trash(alice) == [p[2]]


ES_URL = os.environ.get("DARKROOM_ELASTICSEARCH_URL", "")


@pytest.mark.skipif(not ES_URL, reason="DARKROOM_ELASTICSEARCH_URL is not set")
async def test_trash_restore_and_purge_on_elasticsearch(tmp_path: Path, aiohttp_client: Any, media: Path) -> None:
    """Filters answered by Elasticsearch follow the trash: out when trashed, back when
    restored, out for good when purged."""
    import uuid

    from api.app import create_app
    from infra.bootstrap import bootstrap
    from tests.conftest import make_settings

    services = bootstrap(make_settings(tmp_path, "sqlite", None, elasticsearch_url=ES_URL,
                                       elasticsearch_prefix="test-" + uuid.uuid4().hex[:12]))
    try:
        client = await aiohttp_client(create_app(services, start_projections=False))
        alice = await register(client, "alice")
        a, b = await photos(alice, media, 2)

        async def found() -> set[str]:
            assert services.search._use_elastic()  # the answer comes from Elasticsearch
            data = (await alice.call("POST", "/assets/filter", {"filter": {"type": "PHOTO"}}))["data"]
            return {x["asset_id"] for x in data["assets"]} if data["total"] == len(data["assets"]) else set()

        assert await found() == {a, b}
        await alice.call("DELETE", f"/assets/{a}")
        assert await found() == {b}
        await alice.call("POST", "/trash/restore", {"asset_ids": [a]})
        assert await found() == {a, b}
        await alice.call("DELETE", f"/assets/{a}")
        await alice.call("POST", "/trash/empty")
        assert await found() == {b}
        search = (await alice.call("POST", "/assets/search", {"query": "p0", "search_type": "filename"}))["data"]
        assert search["total"] == 0
    finally:
        if services.search.elastic is not None:
            from elasticsearch import Elasticsearch

            with Elasticsearch(ES_URL) as es:
                es.options(ignore_status=404).indices.delete(index=f"{services.search.elastic.alias}-*")
        services.close()


async def test_an_upload_puts_back_its_file_when_a_purge_elsewhere_removed_it(client, services, media):
    """Another process purging an asset with the same file may remove it between this upload
    keeping the file and recording its asset: the upload checks and puts the file back."""
    alice = await register(client, "alice")
    first = (await alice.upload_bytes(jpeg(media, "race"), "race.jpg"))["data"]["asset_id"]
    detail = (await alice.call("GET", f"/assets/{first}"))["data"]
    path = services.storage.path_of(detail["repository_id"], detail["storage_path"])
    await alice.call("DELETE", f"/assets/{first}")
    record = services.app.upload

    def upload_while_purged_elsewhere(new: Any) -> Any:
        outcome = record(new)
        path.unlink()  # what a purge in another process did meanwhile
        return outcome

    services.app.upload = upload_while_purged_elsewhere
    try:
        second = (await alice.upload_bytes(jpeg(media, "race"), "race.jpg"))["data"]["asset_id"]
    finally:
        del services.app.upload
    resp = await client.get(f"/api/v1/assets/{second}/original", headers=alice.headers)
    assert resp.status == 200 and await resp.read() == jpeg(media, "race")
    assert not list(services.storage.staging.iterdir())  # the retained staged copy is gone


async def test_a_purge_killed_after_moving_the_file_aside_is_finished_either_way(client, services, media):
    """A purge moves the original to a tombstone before its last look. Killed there, the sweeper
    puts the file back when another asset references it, and removes it otherwise."""
    alice = await register(client, "alice")
    first = (await alice.upload_bytes(jpeg(media, "t"), "t.jpg"))["data"]["asset_id"]
    detail = (await alice.call("GET", f"/assets/{first}"))["data"]
    path = services.storage.path_of(detail["repository_id"], detail["storage_path"])
    tomb = services.storage.tombstone(detail["repository_id"], detail["storage_path"])
    await alice.call("DELETE", f"/assets/{first}")
    second = (await alice.upload_bytes(jpeg(media, "t"), "t.jpg"))["data"]["asset_id"]  # same file
    services.app.purge_asset(alice.user_id, UUID(first))
    path.replace(tomb)  # the moment of the kill
    assert TrashSweeper(services).sweep() == (1, 0)
    assert path.read_bytes() == jpeg(media, "t") and not tomb.exists()

    await alice.call("DELETE", f"/assets/{second}")
    services.app.purge_asset(alice.user_id, UUID(second))
    path.replace(tomb)
    assert TrashSweeper(services).sweep() == (1, 0)
    assert not path.exists() and not tomb.exists()
