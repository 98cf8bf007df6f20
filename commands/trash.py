"""Trash commands: restore from the trash (back into the albums it left), purge, and record that a
purged asset's files left the disk."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from commands.retry import retry_on_conflict
from domain.asset import Asset
from domain.errors import Conflict, NotFound
from domain.ids import album_id_to_uuid
from domain.indexes import ContentIndex

if TYPE_CHECKING:
    from commands.application import Darkroom


@dataclass(frozen=True)
class PurgedFiles:
    """What a purge leaves to do on disk, named by its `Asset.Purged` event."""

    asset_id: str
    owner_id: int
    repository_id: str
    storage_path: str
    content_hash: str
    file_size: int


class TrashCommands:
    def check_trashed(self: Darkroom, user_id: int, asset_ids: Iterable[UUID]) -> list[UUID]:
        """The ids, each one of the user's assets in the trash: 404 for an unknown or another
        user's asset, 409 for one that is not in the trash. Checked before anything changes."""
        out = []
        for asset_id in asset_ids:
            asset = self.get_asset_for(user_id, asset_id)
            if not asset.is_deleted:
                raise Conflict(f"asset {asset_id} is not in the trash")
            out.append(asset_id)
        return out

    def restore_asset(self: Darkroom, user_id: int, asset_id: UUID) -> int:
        """Take one asset out of the trash and put it back into the albums it left, at its old
        position when that still fits (appended otherwise); a deleted album is skipped."""

        def attempt() -> int:
            now = self.now()
            asset = self.get_asset_for(user_id, asset_id)
            places = asset.restore(now)
            albums = []
            for place in sorted(places, key=lambda p: p["album_id"]):
                try:
                    album = self.repository.get(album_id_to_uuid(int(place["album_id"])))
                except AggregateNotFoundError:
                    continue
                if album.is_deleted or album.user_id != user_id or str(asset_id) in album.asset_ids:
                    continue
                position = min(int(place["position"]), len(album.asset_ids))
                album.add_asset(str(asset_id), position, at=now)
                albums.append(album)
            return self.save_and_position(asset, *albums)

        return retry_on_conflict(attempt)

    def purge_asset(self: Darkroom, user_id: int | None, asset_id: UUID) -> tuple[PurgedFiles, int]:
        """Delete a trashed asset for good (the event only: the caller then removes the files,
        see `processors.purge`). `user_id` None: the automatic purge, for any owner.

        When the owner's content index still names this asset it is released in the same save,
        so an upload of the same content racing the purge conflicts and retries."""

        def attempt() -> tuple[PurgedFiles, int]:
            if user_id is None:
                asset: Asset = self.load(asset_id, f"asset {asset_id}")
                if not isinstance(asset, Asset):
                    raise NotFound(f"asset {asset_id} not found")
            else:
                asset = self.get_asset_for(user_id, asset_id)
            asset.purge(self.now())
            changed: list[object] = [asset]
            if asset.stack_id is not None:  # a purged asset takes its stack apart
                stack = self.repository.get(asset.stack_id)
                if not stack.is_deleted:
                    stack.unstack(self.now())
                    changed.append(stack)
                    for member_id in stack.asset_ids:
                        member = asset if member_id == str(asset.id) else self.repository.get(UUID(member_id))
                        member.leave_stack(stack.id)
                        if member is not asset:
                            changed.append(member)
            try:
                index = self.repository.get(ContentIndex.create_id(asset.owner_id, asset.content_hash))
            except AggregateNotFoundError:
                index = None
            if index is not None and index.asset_id == asset.id:
                index.release()
                changed.append(index)
            position = self.save_and_position(*changed)
            return PurgedFiles(str(asset.id), asset.owner_id, asset.repository_id, asset.storage_path,
                               asset.content_hash, asset.file_size), position

        return retry_on_conflict(attempt)

    def content_holder(self: Darkroom, owner_id: int, content_hash: str) -> UUID | None:
        """The asset the owner's content index names for this content now (None: none)."""
        try:
            index = self.repository.get(ContentIndex.create_id(owner_id, content_hash))
        except AggregateNotFoundError:
            return None
        return index.asset_id

    def record_files_removed(self: Darkroom, asset_id: UUID, bytes_freed: int, original_removed: bool) -> int:
        """The purged asset's files are gone (idempotent: a second report changes nothing)."""

        def attempt() -> int:
            asset: Asset = self.load(asset_id, f"asset {asset_id}")
            if asset.files_removed:
                return 0
            asset.record_files_removed(bytes_freed=bytes_freed, original_removed=original_removed)
            return self.save_and_position(asset)

        return retry_on_conflict(attempt)
