"""Write a new golden log: drive today's API (and the processors' completion commands) until
every event type of the domain is in the log, then save the stored events, the domain's event
types and versions, and the API's answers under `tests/golden/<date>-<name>/`.

    PYTHONPATH=. python scripts/make_golden_log.py [--name NAME]

Run it after a change adds event types (a merge that brings new aggregates): it refuses to
overwrite an existing golden log, since old logs are what future versions must keep reading.
The users' keys (outside the log, they seal personal fields) are saved beside it as
test data. Users act through the HTTP API in-process (aiohttp's test server); what workers report (metadata,
thumbnails, ML results, failures) goes through the same commands the workers call, with fixed
results, so the log does not depend on which media libraries or models are installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from aiohttp.test_utils import TestClient, TestServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.app import create_app  # noqa: E402
from commands.libraries import ChangedFile, NewFile  # noqa: E402
from domain.asset import OPTIONAL_TASKS  # noqa: E402
from domain.library import SCAN_QUEUE, library_file_id  # noqa: E402
from domain.versioning import event_classes, version_of  # noqa: E402
from infra.bootstrap import Services, bootstrap  # noqa: E402
from infra.settings import load_settings  # noqa: E402
from projections.replay import read_stored  # noqa: E402
from tests.golden_log import GOLDEN, answer, questions  # noqa: E402
from tests.helpers import User, register  # noqa: E402

MEDIA = ROOT / "tests" / "media"
RESULTS: dict[str, dict[str, Any]] = {
    "metadata_asset": {"width": 4032, "height": 3024, "duration": None, "taken_time": "2026-07-14T10:21:00",
                       "taken_time_local": "2026-07-14T10:21:00",
                       "specific_metadata": {"camera_make": "NIKON CORPORATION", "camera_model": "NIKON D750",
                                             "lens_model": "24-70mm f/2.8", "iso_speed": 200,
                                             "gps_latitude": 48.8584, "gps_longitude": 2.2945}},
    "thumbnail_asset": {"thumbnails": {"small": {"path": "derived/x/small.webp", "width": 256, "height": 192,
                                                 "mime_type": "image/webp"}}},
    "transcode_asset": {"web_video": {"path": "derived/x/web.mp4", "mime_type": "video/mp4", "width": 1280,
                                      "height": 720}},
    "process_clip": {"model": "golden-clip", "vector": [0.1, 0.2, 0.3, 0.4]},
    "process_species": {"model": "golden-species", "predictions": [
        {"label": "red fox", "scientific_name": "Vulpes vulpes", "score": 0.91, "taxonomy": {"class": "Mammalia"}}]},
    "process_ocr": {"model": "golden-ocr", "text": "HELLO", "lines": [
        {"text": "HELLO", "box": [0.1, 0.1, 0.3, 0.1], "confidence": 0.97}]},
    "process_face": {"model": "golden-faces", "faces": [
        {"box": [0.2, 0.2, 0.2, 0.3], "confidence": 0.99, "embedding": [0.5, 0.5, 0.5, 0.5]}]},
    "process_caption": {"model": "golden-caption", "caption": "a fox in the snow"},
    "process_labels": {"model": "golden-labels", "labels": [{"label": "fox", "score": 0.93},
                                                              {"label": "snow", "score": 0.71}]},
}
# The read models this scenario's answers cover beyond the first logs' (tests/golden_log.py).
FEATURES = ("asset_detail", "people", "trash", "duplicates", "places", "sharing", "libraries", "users")
SKIPPED = {"skipped": "no model configured (golden log)"}


def grey16_hex(pixel: Callable[[int, int], int]) -> str:
    """A fixed 16x16 grey fingerprint (what processors.fingerprint makes of a thumbnail)."""
    return bytes(pixel(r, c) for r in range(16) for c in range(16)).hex()


# Two unrelated pictures (correlation 0, and no rotation of one is the other): a horizontal
# gradient and a checkerboard of 4x4 blocks. Photos sharing one are near-duplicates.
GRADIENT = grey16_hex(lambda r, c: 8 + 15 * c)
CHECKERBOARD = grey16_hex(lambda r, c: 220 if (r // 4 + c // 4) % 2 else 30)


def run_job(services: Services, job_id: int, result: dict[str, Any] | None, error: str | None = None) -> None:
    ticket = services.app.start_job(job_id, "golden-worker")
    assert ticket is not None, f"job {job_id} could not start"
    if error is None:
        assert services.app.complete_job(job_id, ticket.attempt, result or {})
    else:
        services.app.fail_job(job_id, ticket.attempt, error)


def tasks_of(services: Services, asset_id: str) -> dict[str, dict[str, Any]]:
    return dict(services.app.repository.get(UUID(asset_id)).tasks)


def finish_tasks(services: Services, asset_id: str, **results: dict[str, Any] | None) -> None:
    """Run every queued task of the asset: `results[queue]` when given (None: skipped, as with
    no model), otherwise the fixed result of its queue (ML tasks without one are skipped)."""
    for queue, job in tasks_of(services, asset_id).items():
        result = results[queue] if queue in results else RESULTS.get(queue) if queue not in OPTIONAL_TASKS else None
        run_job(services, job["job_id"], SKIPPED if result is None else result)


def catch_up(services: Services) -> None:
    """The read models follow what the workers' commands wrote (HTTP writes wait by themselves)."""
    for runner in services.runners.values():
        runner.catch_up()


def fingerprinted(grey16: str) -> dict[str, Any]:
    return {**RESULTS["thumbnail_asset"], "fingerprint": {"algorithm": "grey16-v1", "grey16": grey16}}


async def drive_library_features(services: Services, alice: User, photo: bytes, a1: str) -> list[str]:
    """Duplicates (one group dismissed, one resolved), trash (restore, empty), stacks, people
    (faces named, merged, moved, hidden), all as alice. Answers alice's new asset ids."""
    async def upload(tag: str, name: str) -> str:
        return (await alice.upload_bytes(photo + tag.encode(), name))["data"]["asset_id"]

    owls = [await upload(f"golden-owl-{i}", f"owl-{i}.jpg") for i in range(2)]
    hares = [await upload(f"golden-hare-{i}", f"hare-{i}.jpg") for i in range(2)]
    owl_face = {"model": "golden-faces", "faces": [
        {"box": [0.4, 0.3, 0.2, 0.2], "confidence": 0.95, "embedding": [0.9, -0.3, 0.1, -0.2]}]}
    finish_tasks(services, owls[0], thumbnail_asset=fingerprinted(GRADIENT), process_face=owl_face)
    finish_tasks(services, owls[1], thumbnail_asset=fingerprinted(GRADIENT))
    for hare in hares:
        finish_tasks(services, hare, thumbnail_asset=fingerprinted(CHECKERBOARD))
    catch_up(services)

    # Duplicates: the owls are not duplicates after all; of the hares, the first is kept.
    groups = (await alice.call("GET", "/duplicates"))["data"]["groups"]
    group_of = {a["asset_id"]: g["group_id"] for g in groups for a in g["assets"]}
    assert group_of.get(owls[0]) == group_of.get(owls[1]) and group_of.get(hares[0]) == group_of.get(hares[1]) \
        and len(groups) == 2, groups
    await alice.call("POST", f"/duplicates/{group_of[owls[0]]}/dismiss", json={})
    await alice.call("POST", f"/duplicates/{group_of[hares[0]]}/resolve", json={"keep_asset_ids": [hares[0]]})

    # Trash: the trashed hare comes back; a blurry photo is deleted and purged for good.
    await alice.call("POST", "/trash/restore", json={"asset_ids": [hares[1]]})
    blurry = await upload("golden-blurry", "blurry.jpg")
    await alice.call("DELETE", f"/assets/{blurry}", expect=None)
    await alice.call("POST", "/trash/empty", json={"asset_ids": [blurry]})

    # Stacks: one made, its primary changed, taken apart; another stays.
    stack = (await alice.call("POST", "/stacks", json={"asset_ids": owls, "primary_asset_id": owls[0]},
                              expect=201))["data"]["stack_id"]
    await alice.call("PUT", f"/stacks/{stack}", json={"primary_asset_id": owls[1]})
    await alice.call("DELETE", f"/stacks/{stack}", expect=None)
    await alice.call("POST", "/stacks", json={"asset_ids": hares, "primary_asset_id": hares[0]}, expect=201)

    # People: a1's fox and owl-0's face are two people; named, merged, then the owl's face moved
    # to a new person, who is hidden.
    people = (await alice.call("GET", "/people"))["data"]["people"]
    person_of = {p["cover_face_id"].partition(":")[0]: p["person_id"] for p in people}
    assert len(people) == 2 and {a1, owls[0]} <= set(person_of), people
    await alice.call("PUT", f"/people/{person_of[a1]}", json={"name": "Vixen"})
    await alice.call("POST", f"/people/{person_of[a1]}/merge", json={"person_ids": [person_of[owls[0]]]})
    moved = (await alice.call("PUT", f"/faces/{owls[0]}:0/person", json={"new_person": True}))["data"]
    await alice.call("PUT", f"/people/{moved['person_id']}", json={"hidden": True})
    return [*owls, *hares, blurry]


async def drive_sharing_and_users(client: TestClient, alice: User, bob: User, a1: str, album_id: int) -> None:
    """An account made by the admin, changed, deactivated and back, its password changed; an
    album shared (a member added, their role changed, another removed); public links."""
    dave = (await alice.call("POST", "/admin/users", json={
        "username": "dave", "email": "dave@example.org", "password": "correct horse battery",
        "quota_bytes": 50_000_000}, expect=201))["data"]["user_id"]
    await alice.call("PUT", f"/admin/users/{dave}", json={"quota_bytes": 100_000_000})
    await alice.call("PUT", f"/admin/users/{dave}", json={"is_admin": True})
    await alice.call("PUT", f"/admin/users/{dave}", json={"is_active": False})
    await alice.call("PUT", f"/admin/users/{dave}", json={"is_active": True, "is_admin": False})
    login = await client.post("/api/v1/auth/login", json={"username": "dave", "password": "correct horse battery"})
    dave_user = User(client, (await login.json())["data"])
    await dave_user.call("PUT", "/auth/password", json={"current_password": "correct horse battery",
                                                         "new_password": "battery staple horse"})

    await alice.call("POST", f"/albums/{album_id}/members", json={"username": "bob", "role": "viewer"}, expect=201)
    await alice.call("PUT", f"/albums/{album_id}/members/{bob.user_id}", json={"role": "editor"})
    await alice.call("POST", f"/albums/{album_id}/members", json={"username": "dave", "role": "viewer"}, expect=201)
    await alice.call("DELETE", f"/albums/{album_id}/members/{dave}", expect=None)
    await alice.call("POST", "/shared-links", json={"album_id": album_id, "allow_download": False}, expect=201)
    link = (await alice.call("POST", "/shared-links", json={"asset_ids": [a1]}, expect=201))["data"]["link_id"]
    await alice.call("DELETE", f"/shared-links/{link}", expect=None)


async def drive_libraries(services: Services, alice: User, root: Path) -> None:
    """Two external libraries of alice's: the first scanned three times with fixed findings (two
    files indexed; one changed while the other went offline; that one back), the second indexed
    then deleted. The scanner's findings go through the commands it calls (processors.library_scan)."""
    async def library(name: str) -> tuple[int, int]:
        (root / name).mkdir(parents=True)
        created = (await alice.call("POST", "/admin/libraries", json={
            "name": name, "owner_id": alice.user_id, "path": str(root / name)}, expect=201))["data"]
        return created["library_id"], services.app.load_library(created["library_id"]).tasks[SCAN_QUEUE]["job_id"]

    def scan(job_id: int, found: Callable[[Any], None], counts: dict[str, int]) -> None:
        ticket = services.app.start_library_scan(job_id, "golden-worker")
        assert ticket is not None, f"scan job {job_id} could not start"
        found(ticket)
        services.app.record_scan_progress(ticket, {"seen": 0, "indexed": 0, "changed": 0, "offline": 0,
                                                   "returned": 0, "skipped": 0, **counts}, finished=True)

    def new(path: str, tag: str) -> NewFile:
        return NewFile(path, 2048, 1_780_000_000_000_000_000, tag * 64, "image/jpeg", "PHOTO")

    family, job = await library("family")
    heron, swan = (str(library_file_id(family, p)) for p in ("2025/heron.jpg", "2025/swan.jpg"))
    scan(job, lambda t: services.app.index_library_files(t, [new("2025/heron.jpg", "a"), new("2025/swan.jpg", "b")]),
         {"seen": 2, "indexed": 2})

    def changes(ticket: Any) -> None:
        services.app.change_library_files([ChangedFile(heron, 3072, 1_780_000_100_000_000_000, "c" * 64, "image/jpeg")])
        services.app.set_library_files_presence([swan], offline=True)
    job = (await alice.call("POST", f"/admin/libraries/{family}/scan", json={}, expect=None))["data"]["job_id"]
    scan(job, changes, {"seen": 1, "changed": 1, "offline": 1})
    job = (await alice.call("POST", f"/admin/libraries/{family}/scan", json={}, expect=None))["data"]["job_id"]
    scan(job, lambda t: services.app.set_library_files_presence([swan], offline=False), {"seen": 2, "returned": 1})

    old, job = await library("old")
    scan(job, lambda t: services.app.index_library_files(t, [new("scan.jpg", "d")]), {"seen": 1, "indexed": 1})
    catch_up(services)  # the route lists the library's files from the read model
    await alice.call("DELETE", f"/admin/libraries/{old}", expect=None)


async def drive(services: Services, client: TestClient, library_root: Path) -> tuple[list[dict[str, Any]], dict[str, list[str]], dict[str, list[int]]]:
    services.app.enrichment_tasks = frozenset(OPTIONAL_TASKS)  # every ML queue: their events too
    alice = await register(client, "alice")  # the first user: admin
    bob = await register(client, "bob")
    # Logins, a refresh, a logout, and a spent refresh token presented again (revokes them all).
    login = await client.post("/api/v1/auth/login", json={"username": "bob", "password": "correct horse battery"})
    bob_session = (await login.json())["data"]
    refreshed = await client.post("/api/v1/auth/refresh", json={"refreshToken": bob_session["refreshToken"]})
    assert refreshed.status == 200
    reuse = await client.post("/api/v1/auth/refresh", json={"refreshToken": bob_session["refreshToken"]})
    assert reuse.status == 401
    await alice.call("POST", "/auth/logout", json={"refreshToken": alice.refresh_token})

    photo = (MEDIA / "photo" / "apple_iphone_xr_1x1px_gps.jpg").read_bytes()
    video = (MEDIA / "video" / "h264_aac.mkv").read_bytes()
    a1 = (await alice.upload_bytes(photo + b"golden-1", "fox.jpg"))["data"]["asset_id"]
    a2 = (await alice.upload_bytes(photo + b"golden-2", "snow.jpg"))["data"]["asset_id"]
    a3 = (await alice.upload_bytes(video, "clip.mkv"))["data"]["asset_id"]
    b1 = (await bob.upload_bytes(photo + b"golden-bob", "bob.jpg"))["data"]["asset_id"]
    await alice.call("PUT", f"/assets/{a1}/rating", json={"rating": 5})
    await alice.call("PUT", f"/assets/{a1}/like", json={"liked": True})
    await alice.call("PUT", f"/assets/{a2}/description", json={"description": "first snow"})
    await alice.call("PUT", f"/assets/{a2}", json={"specific_metadata": {"camera_make": "Canon", "iso_speed": 400}})
    await bob.call("PUT", f"/assets/{b1}/rating-and-like", json={"rating": 3, "liked": True})

    # Workers' reports: every queue completes for a1; a2's thumbnail fails until discarded, its
    # ML tasks are skipped (no model); the video gets a web version; bob's metadata is reprocessed.
    for queue, job in tasks_of(services, a1).items():
        run_job(services, job["job_id"], RESULTS[queue])
    for queue, job in tasks_of(services, a2).items():
        if queue == "thumbnail_asset":
            run_job(services, job["job_id"], None, error="vips: not a JPEG")
            for _ in range(services.app.job_policy.max_attempts - 1):
                ticket = None
                for _ in range(50):
                    j = services.app.load_job(job["job_id"])
                    if j.state != "retryable":
                        break
                    if j.scheduled_at <= services.app.now():
                        ticket = services.app.start_job(job["job_id"], "golden-worker")
                        break
                    await asyncio.sleep(0.05)  # the backoff (settings make it short)
                if ticket is not None:
                    services.app.fail_job(job["job_id"], ticket.attempt, "vips: not a JPEG")
        elif queue in OPTIONAL_TASKS:
            run_job(services, job["job_id"], {"skipped": "no model configured (golden log)"})
        else:
            run_job(services, job["job_id"], RESULTS[queue])
    for queue, job in tasks_of(services, a3).items():
        run_job(services, job["job_id"], RESULTS.get(queue, {"skipped": "n/a"}) if queue != "transcode_asset"
                else RESULTS["transcode_asset"])
    for queue, job in tasks_of(services, b1).items():
        if queue == "transcode_asset":
            continue
        if queue == "metadata_asset":
            run_job(services, job["job_id"], RESULTS[queue])
        else:
            run_job(services, job["job_id"], {"skipped": "no model configured (golden log)"}
                    if queue in OPTIONAL_TASKS else RESULTS[queue])
    # A reprocess of a running job cancels it; a transcode that is not needed is skipped.
    await bob.call("POST", f"/assets/{b1}/reprocess", json={"tasks": ["metadata_asset"]})
    job = tasks_of(services, b1)["metadata_asset"]
    services.app.start_job(job["job_id"], "golden-worker")
    await bob.call("POST", f"/assets/{b1}/reprocess", json={"tasks": ["metadata_asset"]})
    job = tasks_of(services, b1)["metadata_asset"]  # this run finds damage a decoder reports
    run_job(services, job["job_id"], {**RESULTS["metadata_asset"], "problems": ["truncated file: preview only"]})

    # Albums: create, update, add, move, remove, delete.
    album = (await alice.call("POST", "/albums", json={"album_name": "Winter", "description": "cold"}, expect=201))["data"]
    album_id = album["album_id"]
    await alice.call("POST", f"/albums/{album_id}/assets/{a1}", json={}, expect=None)
    await alice.call("POST", f"/albums/{album_id}/assets/{a2}", json={}, expect=None)
    await alice.call("POST", f"/albums/{album_id}/assets/{a3}", json={"position": 0}, expect=None)
    await alice.call("PUT", f"/albums/{album_id}/assets/{a2}/position", json={"position": 0})
    await alice.call("DELETE", f"/albums/{album_id}/assets/{a3}", expect=None)
    await alice.call("PUT", f"/albums/{album_id}", json={"album_name": "Winter 2026", "cover_asset_id": a1})
    spare = (await alice.call("POST", "/albums", json={"album_name": "Spare"}, expect=201))["data"]["album_id"]
    await alice.call("DELETE", f"/albums/{spare}", expect=None)
    bob_album = (await bob.call("POST", "/albums", json={"album_name": "Bob's"}, expect=201))["data"]["album_id"]
    await bob.call("POST", f"/albums/{bob_album}/assets/{b1}", json={}, expect=None)

    # A deletion, then the same content uploaded again: the content index is reassigned.
    await alice.call("DELETE", f"/assets/{a2}", expect=None)
    a4 = (await alice.upload_bytes(photo + b"golden-2", "snow-again.jpg"))["data"]["asset_id"]

    alice_more = await drive_library_features(services, alice, photo, a1)
    await drive_sharing_and_users(client, alice, bob, a1, album_id)
    await drive_libraries(services, alice, library_root)

    # A person erased: their account, asset and album, their key destroyed.
    carol = await register(client, "carol")
    c1 = (await carol.upload_bytes(photo + b"golden-carol", "carol-at-home.jpg"))["data"]["asset_id"]
    await carol.call("PUT", f"/assets/{c1}/description", json={"description": "carol's kitchen"})
    await carol.call("POST", "/albums", json={"album_name": "Carol's"}, expect=201)
    await alice.call("DELETE", f"/admin/users/{carol.user_id}?erase=true")

    users = [{"username": "alice", "user_id": alice.user_id, "is_admin": True},
             {"username": "bob", "user_id": bob.user_id, "is_admin": False}]
    return users, {"alice": [a1, a2, a3, a4, *alice_more], "bob": [b1]}, {"alice": [album_id, spare], "bob": [bob_album]}


def stored_events(services: Services) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    position = 0
    while True:
        rows = read_stored(services.app, position, 1000)
        if not rows:
            return out
        for r in rows:
            state = r.state if isinstance(r.state, bytes) else bytes(r.state)
            out.append({"position": r.id, "originator_id": str(UUID(str(r.originator_id))),
                        "originator_version": r.originator_version, "topic": r.topic,
                        "state": state.decode("utf-8")})
            position = r.id


async def main_async(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(environ={}, data_dir=str(Path(tmp) / "data"), run_workers=False,
                                 password_memory_kib=1024, password_time_cost=1, jwt_secret="golden-log-" + "x" * 32,
                                 job_backoff_base_seconds=0.05,
                                 library_roots=str(Path(tmp) / "libraries"))
        services = bootstrap(settings)
        try:
            client = TestClient(TestServer(create_app(services)))
            await client.start_server()
            try:
                users, assets, albums = await drive(services, client, Path(tmp) / "libraries")
                for runner in services.runners.values():
                    runner.catch_up()
                events = stored_events(services)
                keys = {"keys": {str(r["user_id"]): r["data_key"] for r in services.db.query(
                            "SELECT user_id, data_key FROM personal_keys ORDER BY user_id")},
                        "erased": [r["user_id"] for r in services.db.query(
                            "SELECT user_id FROM personal_keys_erased ORDER BY user_id")]}
                answers = await answer(client, services, users, questions(users, assets, albums, FEATURES))
            finally:
                await client.close()
        finally:
            services.close()
    written = {e["topic"].partition(":")[2] for e in events}
    domain = {name: version_of(cls) for name, cls in event_classes().items()}
    missing = sorted(set(domain) - written)
    if missing:
        raise SystemExit(f"the scenario wrote no {', '.join(missing)}: extend drive() in {__file__}")
    target.mkdir(parents=True)
    with open(target / "events.jsonl", "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n")
    (target / "keys.json").write_text(json.dumps(keys, indent=1, sort_keys=True) + "\n")
    (target / "manifest.json").write_text(json.dumps(
        {"written": date.today().isoformat(),
         "written_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "event_types": domain, "events": len(events),
         "users": users, "assets": assets, "albums": albums,
         "features": list(FEATURES)}, indent=1, sort_keys=True) + "\n")
    (target / "answers.json").write_text(json.dumps(answers, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"wrote {len(events)} events of {len(written)} types and {len(answers)} answers to {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="log", help="appended to the date in the folder's name")
    args = parser.parse_args()
    target = GOLDEN / f"{date.today().isoformat()}-{args.name}"
    if target.exists():
        raise SystemExit(f"{target} exists: golden logs are never rewritten; pass another --name")
    asyncio.run(main_async(target))


if __name__ == "__main__":
    main()
