"""Erasing a person: close the account, delete their assets and albums, destroy their key.

The events stay (history is never rewritten); what made them personal was sealed with the
user's key (infra.personal_data), and that key is destroyed here, so every reader — aggregates,
read models rebuilt from the log, exports, the admin stream, the Kafka topic's sealed copies —
sees those fields as erased from now on. The caller purges the files and rebuilds the read
models (which still hold opened copies) aside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from commands.retry import retry_on_conflict
from domain.asset import Asset
from domain.errors import Conflict, NotFound
from domain.user import User

if TYPE_CHECKING:
    from commands.application import Darkroom


@dataclass(frozen=True)
class Erasure:
    """What an erasure did: the files the caller must remove, and the position of its events."""

    user_id: int
    assets: int
    albums: int
    files: list[tuple[str, str]]  # (repository id, path) of originals; derived files by asset id
    derived: list[str]  # paths under the data dir's derived/
    position: int


class ErasureCommands:
    def erase_user(self: Darkroom, acting_user_id: int, user_id: int, asset_ids: list[UUID],
                   album_ids: list[int]) -> Erasure:
        """Erase `user_id` (found by the caller's read models: every asset and album they own)."""
        if user_id == acting_user_id:
            raise Conflict("an admin cannot erase their own account", "id")

        def attempt() -> Erasure:
            user: User = self.load(User.create_id(user_id), f"user {user_id}")
            now = self.now()
            changed: list[Any] = []
            files: list[tuple[str, str]] = []
            derived: list[str] = []
            for asset_id in asset_ids:
                asset = self.load(asset_id, f"asset {asset_id}")
                if not isinstance(asset, Asset) or asset.owner_id != user_id:
                    continue
                files.append((asset.repository_id, asset.storage_path))
                derived += [info["path"] for info in asset.thumbnails.values() if "path" in info]
                derived += [info["path"] for info in asset.web.values() if isinstance(info, dict) and "path" in info]
                if not asset.is_deleted:
                    asset.delete(now)
                    changed.append(asset)
            albums = 0
            for album_id in album_ids:
                try:
                    album = self.get_album_for(user_id, album_id)
                except NotFound:
                    continue
                album.delete(at=now)
                changed.append(album)
                albums += 1
            if getattr(user, "erased_at", None) is None:
                user.erase(at=now)
                changed.append(user)
            position = self.save_and_position(*changed)
            return Erasure(user_id, len(files), albums, files, derived, position)

        erasure = retry_on_conflict(attempt)
        keys = getattr(self.mapper, "keys", None)
        if keys is not None:
            keys.destroy(user_id)
        self._forget(user_id, [User.create_id(user_id), *asset_ids])
        return erasure

    def _forget(self: Darkroom, user_id: int, aggregate_ids: list[Any]) -> None:
        """Drop what still holds the person's data opened: cached aggregates and the user's
        snapshots (a snapshot is a copy of the aggregate's state, not part of the log)."""
        cache = getattr(self.repository, "cache", None)
        if cache is not None:
            for aggregate_id in aggregate_ids:
                cache.get(aggregate_id, evict=True)
        delete_snapshots(self, User.create_id(user_id))


def delete_snapshots(app: Any, aggregate_id: UUID) -> None:
    """Remove every snapshot of one aggregate (SQLite or PostgreSQL snapshot store)."""
    if app.snapshots is None:
        return
    recorder = app.snapshots.recorder
    table = recorder.events_table_name
    datastore = recorder.datastore
    if hasattr(datastore, "schema"):  # PostgreSQL
        from psycopg.sql import SQL, Identifier

        with datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("DELETE FROM {}.{} WHERE originator_id = %s").format(
                Identifier(datastore.schema), Identifier(table)), (aggregate_id,))
            conn.commit()
    else:
        with datastore.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {table} WHERE originator_id = ?", (aggregate_id.hex,))
