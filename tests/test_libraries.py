"""External libraries through HTTP on both backends: corpus files copied into a temporary root
are indexed in place (no copy: the server reads the very inode), a changed file is reprocessed,
a removed one goes offline and returns, paths outside the roots and symlink escapes are refused,
nothing on disk is ever written or deleted, the watcher picks up a new file within seconds, and
a rebuild keeps the libraries and their files.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

from infra.settings import Settings
from projections.registry import PROJECTIONS
from projections.runner import rebuild
from tests.conftest import make_settings
from tests.helpers import API, User, jpeg, register

PHOTOS = ("apple_iphone_xr_1x1px_gps.jpg", "kodak_dx4330.jpg")


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    root = tmp_path / "roots" / "nas"
    root.mkdir(parents=True)
    return root


@pytest.fixture
def settings(tmp_path: Path, backend: str, pg_schema: str | None, roots: Path) -> Settings:
    return make_settings(tmp_path, backend, pg_schema, run_workers=True, library_roots=str(roots))


def fill(folder: Path, media: Path) -> dict[str, bytes]:
    """Corpus files in a small tree, plus what a real folder also holds; returns relative path ->
    bytes of every file put there."""
    (folder / "2019" / "trip").mkdir(parents=True)
    (folder / "@eaDir").mkdir()
    shutil.copy(media / "photo" / PHOTOS[0], folder / "2019" / PHOTOS[0])
    shutil.copy(media / "photo" / PHOTOS[1], folder / "2019" / "trip" / PHOTOS[1])
    shutil.copy(media / "audio" / "chirp_id3_all_fields.mp3", folder / "song ünïcode.mp3")
    (folder / "notes.txt").write_text("not media")
    (folder / "@eaDir" / "thumb.jpg").write_bytes(jpeg(media, "synology thumbnail"))
    return snapshot(folder)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


async def wait_scan(admin: User, library_id: int, after_job: int = 0, timeout: float = 60) -> dict[str, Any]:
    """The library once a scan newer than `after_job` has finished and its assets are processed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        library = (await admin.call("GET", f"/admin/libraries/{library_id}"))["data"]
        scan = library["scan"] or {}
        if scan.get("state") == "completed" and scan.get("job_id", 0) > after_job:
            stats = (await admin.call("GET", "/admin/river/stats"))["data"]
            health = (await admin.call("GET", "/health", expect=None))["data"]
            caught_up = all(p.get("lag", 1) == 0 for p in health["projections"].values())
            if stats["available"] + stats["scheduled"] + stats["running"] + stats["retryable"] == 0 and caught_up:
                return (await admin.call("GET", f"/admin/libraries/{library_id}"))["data"]
        await asyncio.sleep(0.2)
    raise AssertionError(f"scan did not finish: {library}")


async def library_assets(user: User) -> dict[str, dict[str, Any]]:
    """The user's assets by storage path."""
    assets = (await user.call("GET", "/assets?types=PHOTO,AUDIO,VIDEO,DOCUMENT&limit=100"))["data"]["assets"]
    return {a["storage_path"]: a for a in assets}


async def setup(client: Any, roots: Path, media: Path, **extra: Any) -> tuple[User, User, Path, int, dict[str, bytes]]:
    admin, alice = await register(client, "admin"), await register(client, "alice")
    folder = roots / "family"
    folder.mkdir()
    files = fill(folder, media)
    created = await admin.call("POST", "/admin/libraries", {
        "name": "Family", "owner_id": alice.user_id, "path": str(folder),
        "exclusion_patterns": ["**/@eaDir/**"], **extra}, expect=201)
    library = created["data"]
    assert library["path"] == str(folder.resolve()) and library["owner_id"] == alice.user_id
    await wait_scan(admin, library["library_id"])
    return admin, alice, folder, library["library_id"], files


async def test_a_scan_indexes_in_place_without_copying(client, services, roots, media):
    admin, alice, folder, library_id, files = await setup(client, roots, media)
    library = (await admin.call("GET", f"/admin/libraries/{library_id}"))["data"]
    assert library["asset_count"] == 3 and library["offline_count"] == 0 and library["last_scan_at"]
    assert library["scan"]["seen"] == 4 and library["scan"]["indexed"] == 3  # notes.txt seen, not media
    assets = await library_assets(alice)
    assert sorted(assets) == ["2019/apple_iphone_xr_1x1px_gps.jpg", "2019/trip/kodak_dx4330.jpg", "song ünïcode.mp3"]
    for relative, asset in assets.items():
        on_disk = folder / relative
        assert asset["repository_id"] == f"library:{library_id}" and asset["owner_id"] == alice.user_id
        assert asset["hash"] == blake3(on_disk.read_bytes()).hexdigest()
        assert asset["status"]["state"] == "complete", asset
        detail = (await alice.call("GET", f"/assets/{asset['asset_id']}"))["data"]
        assert detail["library_id"] == library_id and detail["is_offline"] is False
        resp = await client.get(f"{API}/assets/{asset['asset_id']}/original", headers=alice.headers)
        assert resp.status == 200 and await resp.read() == on_disk.read_bytes()
        # In place: the path the server reads is the library's file itself (same inode).
        served = services.storage.path_of(asset["repository_id"], asset["storage_path"])
        assert os.stat(served).st_ino == os.stat(on_disk).st_ino
    photo = assets["2019/trip/kodak_dx4330.jpg"]["asset_id"]
    assert (await client.get(f"{API}/assets/{photo}/thumbnail", headers=alice.headers)).status == 200
    # No byte copied: the data dir holds no original, only derived files.
    data_dir = services.settings.data_dir
    digests = {hashlib.sha256(b).hexdigest() for b in files.values()}
    for path in data_dir.rglob("*"):
        if path.is_file() and path.stat().st_size in {len(b) for b in files.values()}:
            assert hashlib.sha256(path.read_bytes()).hexdigest() not in digests, path
    # Jobs: the scan is a job like the others.
    jobs = (await admin.call("GET", "/admin/river/jobs?queue=scan_library"))["data"]["jobs"]
    assert [j["state"] for j in jobs] == ["completed"]
    # A rescan of an unchanged library changes nothing; nothing on disk was touched.
    before = (await admin.call("GET", "/admin/events?limit=1000"))["data"]["next_after"]
    job = (await admin.call("POST", f"/admin/libraries/{library_id}/scan"))["data"]["job_id"]
    library = await wait_scan(admin, library_id, after_job=jobs[0]["id"])
    assert library["scan"]["job_id"] == job and library["scan"]["indexed"] == 0 and library["scan"]["changed"] == 0
    events = (await admin.call("GET", f"/admin/events?after={before}&limit=1000"))["data"]["events"]
    assert {e["type"] for e in events} <= {"Job.Enqueued", "Job.Started", "Job.Completed",
                                           "Library.ScanStateChanged", "Library.ScanProgressed",
                                           "Sequence.Allocated"}, {e["type"] for e in events}
    assert snapshot(folder) == files


async def test_changed_files_reprocess_and_vanished_ones_go_offline_and_return(client, roots, media):
    admin, alice, folder, library_id, files = await setup(client, roots, media)
    assets = await library_assets(alice)
    first = assets["2019/apple_iphone_xr_1x1px_gps.jpg"]
    second = assets["2019/trip/kodak_dx4330.jpg"]
    await alice.call("PUT", f"/assets/{first['asset_id']}/rating", {"rating": 4})

    # Changed content: a new hash, processed again, same asset (the rating stays).
    changed = jpeg(media, "edited in place")
    (folder / first["storage_path"]).write_bytes(changed)
    os.utime(folder / first["storage_path"], ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    # Touched only: a new time, the same bytes: noted, not reprocessed.
    touched = folder / second["storage_path"]
    os.utime(touched, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    # Vanished.
    song = assets["song ünïcode.mp3"]
    moved_aside = folder.parent / "aside.mp3"
    os.rename(folder / song["storage_path"], moved_aside)

    job = (await admin.call("POST", f"/admin/libraries/{library_id}/scan"))["data"]["job_id"]
    library = await wait_scan(admin, library_id, after_job=job - 1)
    assert library["scan"]["changed"] == 2 and library["scan"]["offline"] == 1
    assert library["asset_count"] == 3 and library["offline_count"] == 1
    now = (await alice.call("GET", f"/assets/{first['asset_id']}"))["data"]
    assert now["hash"] == blake3(changed).hexdigest() and now["file_size"] == len(changed)
    assert now["rating"] == 4 and now["status"]["state"] == "complete"
    assert now["status"]["tasks"]["metadata_asset"] == "completed"
    resp = await client.get(f"{API}/assets/{first['asset_id']}/original", headers=alice.headers)
    assert await resp.read() == changed and resp.headers["ETag"] == f'"{blake3(changed).hexdigest()}"'
    kept = (await alice.call("GET", f"/assets/{second['asset_id']}"))["data"]
    assert kept["hash"] == second["hash"] and kept["status"] == second["status"]
    offline = (await alice.call("GET", f"/assets/{song['asset_id']}"))["data"]
    assert offline["is_offline"] is True
    assert (await client.get(f"{API}/assets/{song['asset_id']}/original", headers=alice.headers)).status == 404

    # Back again: online, the same asset.
    os.rename(moved_aside, folder / song["storage_path"])
    job = (await admin.call("POST", f"/admin/libraries/{library_id}/scan"))["data"]["job_id"]
    library = await wait_scan(admin, library_id, after_job=job - 1)
    assert library["scan"]["returned"] == 1 and library["offline_count"] == 0
    assert (await alice.call("GET", f"/assets/{song['asset_id']}"))["data"]["is_offline"] is False
    assert (await client.get(f"{API}/assets/{song['asset_id']}/original", headers=alice.headers)).status == 200
    files[first["storage_path"]] = changed
    assert snapshot(folder) == files  # Darkroom wrote and deleted nothing there


async def test_paths_outside_the_roots_and_symlink_escapes_are_refused(client, roots, media, tmp_path):
    admin, alice = await register(client, "admin"), await register(client, "alice")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.jpg"
    secret.write_bytes(jpeg(media, "secret"))
    (roots / "escape").symlink_to(outside, target_is_directory=True)
    (roots / "plain.jpg").write_bytes(jpeg(media, "plain"))
    folder = roots / "lib"
    folder.mkdir()
    shutil.copy(media / "photo" / PHOTOS[0], folder / "inside.jpg")
    (folder / "link-out.jpg").symlink_to(secret)  # a file link leaving the library
    (folder / "dir-out").symlink_to(outside, target_is_directory=True)  # a folder link leaving it
    (folder / "link-in.jpg").symlink_to(folder / "inside.jpg")  # a link within: followed
    (folder / "a..b.jpg").write_bytes(jpeg(media, "dots"))
    os.mkdir(folder / "deep")
    (folder / "deep" / "..hidden.jpg").write_bytes(jpeg(media, "dotdot"))
    Path(os.fsdecode(os.fsencode(str(folder)) + b"/bad-\xff.jpg")).write_bytes(jpeg(media, "undecodable name"))

    def body(path: str, **extra: Any) -> dict[str, Any]:
        return {"name": "x", "owner_id": alice.user_id, "path": path, **extra}

    for path in (str(outside), str(roots / "escape"), str(roots / "escape" / ".."), f"{folder}/../../outside",
                 "relative/path", str(roots / "missing"), str(roots / "plain.jpg"), "/", "/etc", ""):
        resp = await admin.call("POST", "/admin/libraries", body(path), expect=None)
        assert resp["_status"] == 400 and "path" in resp["error"], (path, resp)
    for bad, status in ((body(str(folder), owner_id=999), 400), (body(str(folder), extra=1), 400),
                        (body(str(folder), exclusion_patterns="**"), 400), (body(str(folder), watch="yes"), 400),
                        (body(str(folder), name=""), 400), ({"path": str(folder)}, 400)):
        assert (await admin.call("POST", "/admin/libraries", bad, expect=None))["_status"] == status, bad
    assert (await alice.call("POST", "/admin/libraries", body(str(folder)), expect=None))["_status"] == 403
    assert (await alice.call("GET", "/admin/libraries", expect=None))["_status"] == 403
    assert (await admin.call("GET", "/admin/libraries"))["data"]["total"] == 0  # nothing was created

    library_id = (await admin.call("POST", "/admin/libraries", body(str(folder)), expect=201))["data"]["library_id"]
    for path in (str(folder), str(folder / "deep"), str(roots)):  # the same, inside, around: 409
        assert (await admin.call("POST", "/admin/libraries", body(path), expect=None))["_status"] == 409, path
    library = await wait_scan(admin, library_id)
    names = sorted(await library_assets(alice))
    assert names == ["a..b.jpg", "deep/..hidden.jpg", "inside.jpg", "link-in.jpg"], names
    assert library["scan"]["skipped"] >= 3  # the two links out and the undecodable name
    for bad in ("0", "x", "-3"):
        assert (await admin.call("POST", f"/admin/libraries/{bad}/scan", expect=None))["_status"] == 400
        assert (await admin.call("DELETE", f"/admin/libraries/{bad}", expect=None))["_status"] == 400
    assert (await admin.call("POST", "/admin/libraries/99/scan", expect=None))["_status"] == 404
    assert (await admin.call("GET", "/admin/libraries/99", expect=None))["_status"] == 404
    assert (await alice.call("POST", f"/admin/libraries/{library_id}/scan", expect=None))["_status"] == 403

    # A file swapped for a link out after indexing is not served.
    inside_asset = (await library_assets(alice))["a..b.jpg"]["asset_id"]
    os.remove(folder / "a..b.jpg")
    (folder / "a..b.jpg").symlink_to(secret)
    resp = await client.get(f"{API}/assets/{inside_asset}/original", headers=alice.headers)
    assert resp.status == 404 and await resp.read() != secret.read_bytes()


async def test_deleting_a_library_leaves_the_files(client, services, roots, media):
    admin, alice, folder, library_id, files = await setup(client, roots, media)
    assets = await library_assets(alice)
    await admin.call("DELETE", f"/admin/libraries/{library_id}")
    assert await library_assets(alice) == {}
    assert (await admin.call("GET", "/admin/libraries"))["data"]["total"] == 0
    assert (await admin.call("GET", f"/admin/libraries/{library_id}", expect=404))["code"] == 404
    assert snapshot(folder) == files
    assert not services.storage.writes_to(next(iter(assets.values()))["repository_id"])
    # The folder can be registered again.
    again = (await admin.call("POST", "/admin/libraries", {"name": "Again", "owner_id": alice.user_id,
                                                            "path": str(folder)}, expect=201))["data"]
    await wait_scan(admin, again["library_id"])
    assert len(await library_assets(alice)) == 4  # without exclusions the @eaDir thumbnail counts


async def test_the_watcher_indexes_a_new_file_within_seconds(client, roots, media):
    admin, alice, folder, library_id, _ = await setup(client, roots, media, watch=True)
    await asyncio.sleep(1.0)  # the watcher re-reads its libraries every few seconds
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        (folder / "2019" / "trip" / "probe.jpg").write_bytes(jpeg(media, f"probe {time.monotonic()}"))
        await asyncio.sleep(0.5)
        if "2019/trip/probe.jpg" in await library_assets(alice):
            break
    (folder / "2019" / "trip" / "probe.jpg").unlink()
    started = time.monotonic()
    new = folder / "2019" / "trip" / "new.jpg"
    new.write_bytes(jpeg(media, "arrived"))
    while time.monotonic() - started < 15:
        if "2019/trip/new.jpg" in await library_assets(alice):
            break
        await asyncio.sleep(0.1)
    latency = time.monotonic() - started
    state = ((await admin.call("GET", f"/admin/libraries/{library_id}"))["data"],
             (await admin.call("GET", "/admin/river/jobs?queue=scan_library"))["data"]["jobs"])
    assert "2019/trip/new.jpg" in await library_assets(alice), f"the watcher did not index the new file: {state}"
    assert latency < 10, latency
    # And a removal goes offline the same way.
    asset = (await library_assets(alice))["2019/trip/new.jpg"]["asset_id"]
    new.unlink()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if (await alice.call("GET", f"/assets/{asset}"))["data"]["is_offline"]:
            break
        await asyncio.sleep(0.2)
    assert (await alice.call("GET", f"/assets/{asset}"))["data"]["is_offline"] is True, \
        (await admin.call("GET", "/admin/river/jobs?queue=scan_library"))["data"]["jobs"]


async def test_rebuild_keeps_libraries_and_their_files(client, services, roots, media):
    admin, _, folder, library_id, _ = await setup(client, roots, media)
    os.remove(folder / "2019" / PHOTOS[0])
    (folder / "2019" / "trip" / PHOTOS[1]).write_bytes(jpeg(media, "rewritten"))  # new content
    job = (await admin.call("POST", f"/admin/libraries/{library_id}/scan"))["data"]["job_id"]
    await wait_scan(admin, library_id, after_job=job - 1)
    tables = ("libraries", "library_files", "catalog_assets")
    live = [services.db.query(f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables]
    assert blake3(jpeg(media, "rewritten")).hexdigest() in {r["hash"] for r in live[2]}
    for name in ("libraries", "catalog"):
        rebuild(services.app, services.db, PROJECTIONS[name], batch_size=7)
    assert [services.db.query(f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables] == live
    assert (await admin.call("GET", f"/admin/libraries/{library_id}"))["data"]["offline_count"] == 1


def _library_of_photos(services, roots, media, name: str, count: int) -> tuple[int, int]:
    """alice's library `name`: a folder of `count` distinct JPEGs p0.jpg, p1.jpg..."""
    folder = roots / name
    folder.mkdir()
    for i in range(count):
        (folder / f"p{i}.jpg").write_bytes(jpeg(media, f"{name} {i}"))
    app = services.app
    owner = app.register("alice", "alice@example.org", services.passwords.hash("a long password")).user.user_id
    library_id, _ = app.create_library(owner, name, owner, folder.resolve(), [], False)
    return owner, library_id


def test_a_scan_that_dies_resumes_where_it_was(services, roots, media, monkeypatch):
    """Given a scan that fails after its first committed batch, its retry indexes the rest, and
    no file twice; the counts of the library show the progress of each attempt."""
    from processors import library_scan

    app = services.app
    _, library_id = _library_of_photos(services, roots, media, "many", 7)
    monkeypatch.setattr(library_scan, "BATCH", 3)
    calls = []
    original = type(app).index_library_files

    def dies_on_the_second_batch(self, ticket, files):  # type: ignore[no-untyped-def]
        calls.append(len(files))
        if len(calls) == 2:
            raise OSError("the disk went away")
        return original(self, ticket, files)

    monkeypatch.setattr(type(app), "index_library_files", dies_on_the_second_batch)

    def catch_up() -> None:
        for runner in services.runners.values():
            runner.catch_up()

    job_id, _ = app.queue_library_scan(library_id)
    catch_up()
    assert library_scan.run_scan(services, job_id, "test") == "retryable"
    catch_up()
    assert len(services.db.query("SELECT * FROM library_files WHERE library_id = ?", (library_id,))) == 3
    job = app.load_job(job_id)
    assert job.state == "retryable" and "the disk went away" in job.errors[-1]["error"]
    # The retry (as the relay would deliver it once due) walks past what is committed.
    monkeypatch.setattr(type(app), "now", lambda self: datetime.now(UTC) + timedelta(hours=1))
    assert library_scan.run_scan(services, job_id, "test") == "completed"
    catch_up()
    rows = services.db.query("SELECT relative_path FROM library_files WHERE library_id = ? ORDER BY relative_path",
                             (library_id,))
    assert [r["relative_path"] for r in rows] == [f"p{i}.jpg" for i in range(7)]
    assert calls[2:] == [3, 1]  # the retry indexed only the four that were missing
    scan = json.loads(services.db.query_one("SELECT scan FROM libraries WHERE library_id = ?", (library_id,))["scan"])
    assert scan["indexed"] == 4 and scan["finished"] is True and scan["state"] == "completed"


def test_a_long_scan_continues_in_a_new_job_instead_of_timing_out(services, roots, media, monkeypatch):
    """A scan past half the job timeout stops at a batch boundary, completes, and queues its
    continuation; it marks nothing offline, and the continuation finishes the walk."""
    from processors import library_scan

    app = services.app
    _, library_id = _library_of_photos(services, roots, media, "big", 5)
    monkeypatch.setattr(library_scan, "BATCH", 2)
    monkeypatch.setattr(services.settings, "job_timeout_seconds", 0.0)  # out of time at the first batch

    def catch_up() -> None:
        for runner in services.runners.values():
            runner.catch_up()

    job_id, _ = app.queue_library_scan(library_id)
    catch_up()
    assert library_scan.run_scan(services, job_id, "test") == "completed"
    catch_up()
    follow_up = app.load_library(library_id).tasks["scan_library"]["job_id"]
    assert follow_up != job_id and app.load_job(follow_up).state == "available"
    assert len(services.db.query("SELECT * FROM library_files WHERE library_id = ?", (library_id,))) == 2
    monkeypatch.setattr(services.settings, "job_timeout_seconds", 300.0)
    assert library_scan.run_scan(services, follow_up, "test") == "completed"
    catch_up()
    rows = services.db.query("SELECT is_offline FROM library_files WHERE library_id = ?", (library_id,))
    assert len(rows) == 5 and not any(r["is_offline"] for r in rows)


async def test_emptying_the_trash_of_library_assets_deletes_no_library_file(client, roots, media):
    """The API contract: emptying the trash removes a library asset from the catalog and deletes
    only its derived files; the file is the user's and stays."""
    admin, alice, folder, library_id, files = await setup(client, roots, media)
    assets = await library_assets(alice)
    photo = assets["2019/trip/kodak_dx4330.jpg"]["asset_id"]
    await alice.call("DELETE", f"/assets/{photo}")
    emptied = (await alice.call("POST", "/trash/empty", {"asset_ids": [photo]}))["data"]
    assert emptied["purged"] == 1
    await alice.call("GET", f"/assets/{photo}", expect=404)
    assert snapshot(folder) == files
