"""Build a busy event log straight through the application's commands (no HTTP)."""

from __future__ import annotations

import random
import time
from typing import Any
from uuid import UUID

from blake3 import blake3

from commands.assets import NewUpload
from infra.bootstrap import Services
from infra.storage import DEFAULT_REPOSITORY_ID


def fake_upload(owner_id: int, n: int) -> NewUpload:
    digest = blake3(f"{owner_id}:{n}".encode()).hexdigest()
    return NewUpload(
        owner_id=owner_id, original_filename=f"IMG_{n:04d}.JPG", file_size=1000 + n,
        mime_type="image/jpeg", content_hash=digest, asset_type="PHOTO",
        repository_id=DEFAULT_REPOSITORY_ID, storage_path=f"originals/{owner_id}/{digest}.jpg",
    )


def busy_library(services: Services, users: int = 2, assets_per_user: int = 20, seed: int = 7) -> dict[int, list[UUID]]:
    """Users with assets, ratings, likes, descriptions, deletions and albums with moves."""
    rng = random.Random(seed)
    app = services.app
    owned: dict[int, list[UUID]] = {}
    for u in range(users):
        session = app.register(f"user{u}", f"user{u}@example.org", "not-a-real-hash")
        user_id = session.user.user_id
        ids = [app.upload(fake_upload(user_id, n)).asset_id for n in range(assets_per_user)]
        owned[user_id] = ids
        for asset_id in ids:
            app.rate(user_id, asset_id, rng.randint(0, 5))
            if rng.random() < 0.4:
                app.like(user_id, asset_id, True)
            if rng.random() < 0.2:
                app.describe(user_id, asset_id, f"about {asset_id}")
            if rng.random() < 0.2:
                app.update_metadata(user_id, asset_id, {"camera_make": "Canon", "iso_speed": 200})
        album_id, _ = app.create_album(user_id, f"album of {u}", None, str(ids[0]))
        for asset_id in ids[: assets_per_user // 2]:
            app.add_to_album(user_id, album_id, asset_id)
        app.move_in_album(user_id, album_id, ids[0], assets_per_user // 2 - 1)
        app.remove_from_album(user_id, album_id, ids[1])
        app.update_album(user_id, album_id, {"album_name": f"renamed {u}"})
        spare, _ = app.create_album(user_id, "to delete", "gone soon", None)
        app.add_to_album(user_id, spare, ids[2])
        app.delete_album(user_id, spare)
        for asset_id in ids[-2:]:
            app.delete_asset(user_id, asset_id)
    return owned


def snapshot(services: Services) -> dict[str, list[dict[str, object]]]:
    """Every read-model row, in a stable order."""
    return {
        "catalog_assets": services.db.query("SELECT * FROM catalog_assets ORDER BY asset_id"),
        "albums": services.db.query("SELECT * FROM albums ORDER BY album_id"),
        "album_assets": services.db.query("SELECT * FROM album_assets ORDER BY album_id, asset_id"),
    }


FINAL_JOB_STATES = ("completed", "discarded", "cancelled")


def settle_jobs(services: Services, timeout: float = 60.0, every: float = 0.05) -> list[dict[str, Any]]:
    """Wait until every job is final (catching the read models up as it goes); return them all."""
    deadline = time.monotonic() + timeout
    jobs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        for runner in services.runners.values():
            runner.catch_up()
        jobs, _, _ = services.jobs.page(state=None, queue=None, kind=None, since=None, before=None,
                                        limit=1000, include_count=False)
        if jobs and all(j["state"] in FINAL_JOB_STATES for j in jobs):
            return jobs
        time.sleep(every)
    raise AssertionError(f"jobs not final after {timeout}s: "
                         f"{[(j['id'], j['queue'], j['state'], j['errors']) for j in jobs]}")

