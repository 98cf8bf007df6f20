"""Album commands: create, update, delete, and add, remove or move an asset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID


from commands.retry import once_or_conflict, retry_on_conflict
from domain.album import Album, check_album_description, check_album_name
from domain.errors import Conflict, InvalidInput, NotFound
from domain.ids import album_id_to_uuid

if TYPE_CHECKING:
    from commands.application import Darkroom


class AlbumCommands:
    def _check_cover(self: Darkroom, user_id: int, cover_asset_id: Any) -> str | None:
        if cover_asset_id is None:
            return None
        try:
            asset = self.get_asset_for(user_id, UUID(str(cover_asset_id)))
            asset.check_not_deleted()
        except (ValueError, NotFound, Conflict):
            raise InvalidInput(
                f"cover_asset_id {cover_asset_id} is not one of your (undeleted) assets",
                "cover_asset_id",
            ) from None
        return str(asset.id)

    def create_album(
        self: Darkroom, user_id: int, album_name: str, description: str | None,
        cover_asset_id: str | None,
    ) -> tuple[int, int]:
        """Create an album; returns (album_id, position)."""
        album_name = check_album_name(album_name)
        check_album_description(description)
        cover = self._check_cover(user_id, cover_asset_id)

        def attempt() -> tuple[int, int]:
            albums = self._sequence("albums")
            album_id = albums.next_value()
            album = Album(
                album_id=album_id, user_id=user_id, album_name=album_name,
                description=description, cover_asset_id=cover, created_at=self.now(),
            )
            return album_id, self.save_and_position(albums, album)

        return retry_on_conflict(attempt)

    def get_album_for(self: Darkroom, user_id: int, album_id: int) -> Album:
        album = self.load(album_id_to_uuid(album_id), f"album {album_id}")
        album.check_visible_to(user_id)
        return album

    def update_album(self: Darkroom, user_id: int, album_id: int, changes: dict[str, Any]) -> int:
        if "cover_asset_id" in changes:
            changes["cover_asset_id"] = self._check_cover(user_id, changes["cover_asset_id"])

        def attempt() -> int:
            album = self.get_album_for(user_id, album_id)
            album.update(at=self.now(), changes=dict(changes))
            return self.save_and_position(album)

        return once_or_conflict(attempt)

    def delete_album(self: Darkroom, user_id: int, album_id: int) -> int:
        def attempt() -> int:
            album = self.get_album_for(user_id, album_id)
            album.delete(at=self.now())
            return self.save_and_position(album)

        return retry_on_conflict(attempt)

    def add_to_album(
        self: Darkroom, user_id: int, album_id: int, asset_id: UUID, position: int | None = None
    ) -> int:
        """Put one of the user's assets into one of their albums (appended when no position).

        Appends commute, so a lost race is retried on the new state: parallel adds all land.
        """
        asset = self.get_asset_for(user_id, asset_id)
        asset.check_not_deleted()

        def attempt() -> int:
            album = self.album_for_contribution(user_id, album_id)  # owner, or an editor
            album.add_asset(str(asset_id), position, at=self.now())
            return self.save_and_position(album)

        return retry_on_conflict(attempt) if position is None else once_or_conflict(attempt)

    def remove_from_album(self: Darkroom, user_id: int, album_id: int, asset_id: UUID) -> int:
        def attempt() -> int:
            album = self.album_for_contribution(user_id, album_id, removing=asset_id)
            album.remove_asset(str(asset_id), at=self.now())
            return self.save_and_position(album)

        return retry_on_conflict(attempt)

    def move_in_album(
        self: Darkroom, user_id: int, album_id: int, asset_id: UUID, position: Any
    ) -> int:
        def attempt() -> int:
            album = self.get_album_for(user_id, album_id)
            album.move_asset(str(asset_id), position, at=self.now())
            return self.save_and_position(album)

        return once_or_conflict(attempt)
