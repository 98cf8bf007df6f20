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
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

from aiohttp.test_utils import TestClient, TestServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.app import create_app  # noqa: E402
from domain.asset import OPTIONAL_TASKS  # noqa: E402
from domain.versioning import event_classes, version_of  # noqa: E402
from infra.bootstrap import Services, bootstrap  # noqa: E402
from infra.settings import load_settings  # noqa: E402
from projections.replay import read_stored  # noqa: E402
from tests.golden_log import GOLDEN, answer, questions  # noqa: E402
from tests.helpers import register  # noqa: E402

MEDIA = ROOT / "tests" / "media"
RESULTS: dict[str, dict[str, Any]] = {
    "metadata_asset": {"width": 4032, "height": 3024, "duration": None, "taken_time": "2026-07-14T10:21:00",
                       "taken_time_local": "2026-07-14T10:21:00",
                       "specific_metadata": {"camera_make": "NIKON CORPORATION", "camera_model": "NIKON D750",
                                             "lens_model": "24-70mm f/2.8", "iso_speed": 200}},
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
}


def run_job(services: Services, job_id: int, result: dict[str, Any] | None, error: str | None = None) -> None:
    ticket = services.app.start_job(job_id, "golden-worker")
    assert ticket is not None, f"job {job_id} could not start"
    if error is None:
        assert services.app.complete_job(job_id, ticket.attempt, result or {})
    else:
        services.app.fail_job(job_id, ticket.attempt, error)


def tasks_of(services: Services, asset_id: str) -> dict[str, dict[str, Any]]:
    return dict(services.app.repository.get(UUID(asset_id)).tasks)


async def drive(services: Services, client: TestClient) -> tuple[list[dict[str, Any]], dict[str, list[str]], dict[str, list[int]]]:
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
    job = tasks_of(services, b1)["metadata_asset"]
    run_job(services, job["job_id"], RESULTS["metadata_asset"])

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

    # A person erased: their account, asset and album, their key destroyed.
    carol = await register(client, "carol")
    c1 = (await carol.upload_bytes(photo + b"golden-carol", "carol-at-home.jpg"))["data"]["asset_id"]
    await carol.call("PUT", f"/assets/{c1}/description", json={"description": "carol's kitchen"})
    await carol.call("POST", "/albums", json={"album_name": "Carol's"}, expect=201)
    await alice.call("DELETE", f"/admin/users/{carol.user_id}?erase=true")

    users = [{"username": "alice", "user_id": alice.user_id, "is_admin": True},
             {"username": "bob", "user_id": bob.user_id, "is_admin": False}]
    return users, {"alice": [a1, a2, a3, a4], "bob": [b1]}, {"alice": [album_id, spare], "bob": [bob_album]}


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
                                 job_backoff_base_seconds=0.05)
        services = bootstrap(settings)
        try:
            client = TestClient(TestServer(create_app(services)))
            await client.start_server()
            try:
                users, assets, albums = await drive(services, client)
                for runner in services.runners.values():
                    runner.catch_up()
                events = stored_events(services)
                keys = {"keys": {str(r["user_id"]): r["data_key"] for r in services.db.query(
                            "SELECT user_id, data_key FROM personal_keys ORDER BY user_id")},
                        "erased": [r["user_id"] for r in services.db.query(
                            "SELECT user_id FROM personal_keys_erased ORDER BY user_id")]}
                answers = await answer(client, services, users, questions(users, assets, albums))
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
        {"written": date.today().isoformat(), "event_types": domain, "events": len(events),
         "users": users, "assets": assets, "albums": albums}, indent=1, sort_keys=True) + "\n")
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
