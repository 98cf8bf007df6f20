"""The `Album` aggregate: a user's ordered collection of assets."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidInput, NotFound
from domain.ids import album_id_to_uuid
from domain.text import check_text

MAX_ALBUM_NAME_LENGTH = 255
MAX_ALBUM_DESCRIPTION_LENGTH = 10_000


def check_album_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("album_name must be a non-empty string", "album_name")
    return check_text(name, "album_name", MAX_ALBUM_NAME_LENGTH, name=True).strip()


def check_album_description(description: Any) -> str | None:
    if description is not None:
        check_text(description, "description", MAX_ALBUM_DESCRIPTION_LENGTH)
    return description


class Album(Aggregate):
    """An album. Its integer `album_id` is allocated from a Sequence and is part of the creation
    event, so a rebuild gives the same ids. `asset_ids` is the order: positions are 0..n-1."""

    @staticmethod
    def create_id(album_id: int) -> UUID:
        return album_id_to_uuid(album_id)

    @event("Created")
    def __init__(
        self,
        album_id: int,
        user_id: int,
        album_name: str,
        description: str | None,
        cover_asset_id: str | None,
        created_at: datetime,
    ) -> None:
        self.album_id = album_id
        self.user_id = user_id
        self.album_name = album_name
        self.description = description
        self.cover_asset_id = cover_asset_id
        self.created_at = created_at
        self.updated_at = created_at
        self.asset_ids: list[str] = []
        self.is_deleted = False

    # -- rules ---------------------------------------------------------------------------------

    def check_visible_to(self, user_id: int) -> None:
        if self.user_id != user_id or self.is_deleted:
            raise NotFound(f"album {self.album_id} not found")

    def check_position(self, position: Any, upper: int) -> int:
        if isinstance(position, bool) or not isinstance(position, int):
            raise InvalidInput("position must be an integer", "position")
        if not 0 <= position <= upper:
            raise InvalidInput(f"position must be between 0 and {upper}", "position")
        return position

    # -- commands ------------------------------------------------------------------------------

    def update(
        self, at: datetime, changes: dict[str, Any]
    ) -> None:
        if "album_name" in changes:
            changes["album_name"] = check_album_name(changes["album_name"])
        if "description" in changes:
            check_album_description(changes["description"])
        changes = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if changes:
            self._update(at=at, changes=changes)

    @event("Updated")
    def _update(self, at: datetime, changes: dict[str, Any]) -> None:
        """Name, description or cover changed (only the fields in `changes`)."""
        for key, value in changes.items():
            setattr(self, key, value)
        self.updated_at = at

    def delete(self, at: datetime) -> None:
        self._delete(at=at)

    @event("Deleted")
    def _delete(self, at: datetime) -> None:
        """The album is gone; its assets are untouched."""
        self.is_deleted = True
        self.updated_at = at

    def add_asset(self, asset_id: str, position: int | None, at: datetime) -> int:
        if asset_id in self.asset_ids:
            raise Conflict(f"asset {asset_id} is already in album {self.album_id}")
        if position is None:
            position = len(self.asset_ids)
        position = self.check_position(position, len(self.asset_ids))
        self._add_asset(asset_id=asset_id, position=position, at=at)
        return position

    @event("AssetAdded")
    def _add_asset(self, asset_id: str, position: int, at: datetime) -> None:
        """An asset was put into the album at `position`; later ones shift up by one."""
        self.asset_ids.insert(position, asset_id)
        self.updated_at = at

    def remove_asset(self, asset_id: str, at: datetime) -> None:
        if asset_id not in self.asset_ids:
            raise NotFound(f"asset {asset_id} is not in album {self.album_id}")
        self._remove_asset(asset_id=asset_id, at=at)

    @event("AssetRemoved")
    def _remove_asset(self, asset_id: str, at: datetime) -> None:
        """An asset left the album; later ones shift down by one."""
        self.asset_ids.remove(asset_id)
        self.updated_at = at

    def move_asset(self, asset_id: str, position: Any, at: datetime) -> None:
        if asset_id not in self.asset_ids:
            raise NotFound(f"asset {asset_id} is not in album {self.album_id}")
        position = self.check_position(position, len(self.asset_ids) - 1)
        if self.asset_ids.index(asset_id) != position:
            self._move_asset(asset_id=asset_id, position=position, at=at)

    @event("AssetMoved")
    def _move_asset(self, asset_id: str, position: int, at: datetime) -> None:
        """An asset moved to `position`; the others shift so positions stay 0..n-1."""
        self.asset_ids.remove(asset_id)
        self.asset_ids.insert(position, asset_id)
        self.updated_at = at
