"""Erasing a person: the work behind `DELETE /admin/users/{id}?erase=true` (api.routes.users)."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from commands.erasure import Erasure
from infra.bootstrap import Services
from projections.registry import PROJECTIONS
from projections.runner import rebuild


def _owned(services: Services, user_id: int) -> tuple[list[UUID], list[int]]:
    """Every asset (deleted ones too: their files are still on disk) and album of the user."""
    assets = services.db.query("SELECT asset_id FROM catalog_assets WHERE owner_id = ?", (user_id,))
    albums = services.db.query("SELECT album_id FROM albums WHERE user_id = ?", (user_id,))
    return [UUID(r["asset_id"]) for r in assets], [int(r["album_id"]) for r in albums]


def _purge(services: Services, erasure: Erasure) -> int:
    removed = 0
    paths = [services.storage.path_of(repo, path) for repo, path in erasure.files if repo in services.storage.repositories]
    paths += [services.settings.data_dir / "derived" / path for path in erasure.derived]
    for path in paths:
        if ".." in Path(path).parts:
            continue
        try:
            Path(path).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def _scrub(services: Services) -> None:
    # Read models hold copies of personal fields opened before the key went: rebuilt aside from
    # the log, where those fields now read as erased (the live copies serve until the swap).
    for cls in PROJECTIONS.values():
        rebuild(services.app, services.db, cls)


def erase(services: Services, acting_user_id: int, user_id: int) -> dict[str, int]:
    asset_ids, album_ids = _owned(services, user_id)
    erasure = services.app.erase_user(acting_user_id, user_id, asset_ids, album_ids)
    services.wait_for(erasure.position)
    removed = _purge(services, erasure)
    _scrub(services)
    if services.search is not None:
        services.search.catch_up_quietly()  # the Elasticsearch mirror follows the rebuilt tables
    return {"user_id": user_id, "assets": erasure.assets, "albums": erasure.albums, "files_removed": removed}
