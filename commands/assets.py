"""Asset commands: upload (from a staged file), rate, like, describe, update metadata, delete."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from commands.retry import once_or_conflict, retry_on_conflict
from domain.asset import Asset, check_vector, tasks_for
from domain.errors import NotFound
from domain.indexes import ContentIndex
from infra.geocoding import usable_position

if TYPE_CHECKING:
    from commands.application import Darkroom


@dataclass(frozen=True)
class NewUpload:
    """A staged, hashed, recognised file that is ready to become an asset."""

    owner_id: int
    original_filename: str
    file_size: int
    mime_type: str
    content_hash: str
    asset_type: str
    repository_id: str
    storage_path: str


@dataclass(frozen=True)
class UploadOutcome:
    asset_id: UUID
    duplicate: bool
    position: int
    task_id: int | None = None


class AssetCommands:
    def upload(self: Darkroom, new: NewUpload) -> UploadOutcome:
        """Create the asset, or answer with the owner's existing asset of the same content.

        The asset and its content-index entry are saved together: two concurrent uploads of the
        same content by one owner cannot both create an asset.
        """

        def attempt() -> UploadOutcome:
            index_id = ContentIndex.create_id(new.owner_id, new.content_hash)
            try:
                index: ContentIndex | None = self.repository.get(index_id)
            except AggregateNotFoundError:
                index = None
            if index is not None and index.asset_id is not None:  # None: its asset was purged
                existing: Asset = self.repository.get(index.asset_id)
                if not existing.is_deleted:
                    first = next(iter(existing.tasks.values()), {}).get("job_id")
                    # The head of the log, not 0: the same file sent at once by another client
                    # may still be on its way into the read models; the answer waits for it.
                    return UploadOutcome(existing.id, True, self.recorder.max_notification_id() or 0, first)
            asset = Asset(
                owner_id=new.owner_id, original_filename=new.original_filename,
                file_size=new.file_size, mime_type=new.mime_type, content_hash=new.content_hash,
                asset_type=new.asset_type, repository_id=new.repository_id,
                storage_path=new.storage_path, upload_time=self.now(),
            )
            if index is None:
                index = ContentIndex(
                    owner_id=new.owner_id, content_hash=new.content_hash, asset_id=asset.id
                )
            else:
                index.reassign(asset_id=asset.id)
            jobs = self._new_jobs(asset, tasks_for(new.asset_type, self.enrichment_tasks))
            position = self.save_and_position(asset, index, *jobs)
            return UploadOutcome(asset.id, False, position, jobs[0].job_id if jobs else None)

        return retry_on_conflict(attempt)

    def get_asset_for(self: Darkroom, user_id: int, asset_id: UUID) -> Asset:
        asset: Asset = self.load(asset_id, f"asset {asset_id}")
        if not isinstance(asset, Asset):
            raise NotFound(f"asset {asset_id} not found")
        asset.check_owner(user_id)
        return asset

    def _change_asset(self: Darkroom, user_id: int, asset_id: UUID, change: Any, commutative: bool) -> int:
        def attempt() -> int:
            asset = self.get_asset_for(user_id, asset_id)
            change(asset)
            return self.save_and_position(asset)

        return retry_on_conflict(attempt) if commutative else once_or_conflict(attempt)

    def rate(self: Darkroom, user_id: int, asset_id: UUID, rating: int) -> int:
        return self._change_asset(user_id, asset_id, lambda a: a.rate(rating), commutative=True)

    def like(self: Darkroom, user_id: int, asset_id: UUID, liked: bool) -> int:
        return self._change_asset(user_id, asset_id, lambda a: a.like(liked), commutative=True)

    def rate_and_like(self: Darkroom, user_id: int, asset_id: UUID, rating: int, liked: bool) -> int:
        def change(asset: Asset) -> None:
            asset.rate(rating)
            asset.like(liked)

        return self._change_asset(user_id, asset_id, change, commutative=True)

    def record_embedding(self: Darkroom, asset_id: UUID, model: str, vector: list[float]) -> int:
        """Store an image embedding for an asset (the CLIP processor's result; tests and imports
        call it directly). Not user-scoped: only processors and operators reach it."""
        vector = check_vector(vector)

        def attempt() -> int:
            asset: Asset = self.load(asset_id, f"asset {asset_id}")
            if not isinstance(asset, Asset):
                raise NotFound(f"asset {asset_id} not found")
            asset.record_embedding(model=model, vector=vector)
            return self.save_and_position(asset)

        return retry_on_conflict(attempt)

    def describe(self: Darkroom, user_id: int, asset_id: UUID, description: str | None) -> int:
        return self._change_asset(
            user_id, asset_id, lambda a: a.describe(description), commutative=False
        )

    def update_metadata(self: Darkroom, user_id: int, asset_id: UUID, changes: dict[str, Any]) -> int:
        def change(asset: Asset) -> None:
            asset.update_metadata(changes)
            if "gps_latitude" in changes or "gps_longitude" in changes:
                self.locate(asset)

        return self._change_asset(user_id, asset_id, change, commutative=False)

    def locate(self: Darkroom, asset: Asset) -> None:
        """Name the asset's place from its GPS position (offline reverse geocoding), as a
        `Located` event when position or place changed. Without a geocoder, the position only."""
        position = usable_position(*asset.gps_position())
        if position is None:
            asset.locate(None, None, None)
            return
        place = self.geocoder.place(*position) if self.geocoder is not None else None
        asset.locate(position[0], position[1], place)

    def delete_asset(self: Darkroom, user_id: int, asset_id: UUID, album_ids: Iterable[int] = ()) -> int:
        """Soft-delete, and take the asset out of the given albums in the same save, so album
        positions stay 0..n-1 over what users can see. The caller finds `album_ids` in the
        album read model; a retry after a conflict reloads everything."""
        album_ids = list(album_ids)

        def attempt() -> int:
            now = self.now()
            asset = self.get_asset_for(user_id, asset_id)
            asset.check_not_deleted()
            albums, places = [], []
            for album_id in album_ids:
                try:
                    album = self.get_album_for(user_id, album_id)
                except NotFound:
                    continue
                if str(asset_id) in album.asset_ids:
                    # Remembered on the asset: a restore puts it back at this position.
                    places.append({"album_id": album.album_id,
                                   "position": album.asset_ids.index(str(asset_id))})
                    album.remove_asset(str(asset_id), at=now)
                    albums.append(album)
            asset.delete(now, places)
            return self.save_and_position(asset, *albums)

        return retry_on_conflict(attempt)
