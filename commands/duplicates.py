"""Duplicate review commands: dismiss a group (never shown again), or resolve it (keep some,
trash the others, carrying their albums, the best rating and a like over to the kept ones)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from commands.retry import retry_on_conflict
from domain.album import Album
from domain.duplicates import DuplicateReview
from domain.errors import InvalidInput, NotFound
from domain.ids import album_id_to_uuid

if TYPE_CHECKING:
    from commands.application import Darkroom


class DuplicateCommands:
    def _review(self: Darkroom, user_id: int, group_id: UUID) -> DuplicateReview:
        try:
            review: DuplicateReview = self.repository.get(group_id)
        except AggregateNotFoundError:
            return DuplicateReview(id=group_id, owner_id=user_id)
        if not isinstance(review, DuplicateReview) or review.owner_id != user_id:
            raise NotFound(f"duplicate group {group_id} not found")
        return review

    def dismiss_duplicates(self: Darkroom, user_id: int, group_id: UUID, members: list[str]) -> int:
        """The photos of the group (as the caller found it in the read model) are not duplicates."""

        def attempt() -> int:
            review = self._review(user_id, group_id)
            review.dismiss(asset_ids=list(members))
            return self.save_and_position(review)

        return retry_on_conflict(attempt)

    def resolve_duplicates(self: Darkroom, user_id: int, group_id: UUID, members: list[str], keep: list[str],
                           albums_of: dict[str, list[int]]) -> int:
        """Keep `keep` (some of `members`, 400 otherwise); trash the others in the same save, after
        adding the kept ones to every album the others were in, and giving them the highest
        rating and a like if any member had one. `albums_of` (from the album read model) names
        each trashed member's albums; the albums themselves are reloaded here."""
        if not keep:
            raise InvalidInput("keep_asset_ids names no asset", "keep_asset_ids")
        if len(set(keep)) != len(keep):
            raise InvalidInput("keep_asset_ids names an asset twice", "keep_asset_ids")
        outside = [a for a in keep if a not in members]
        if outside:
            raise InvalidInput(f"asset {outside[0]} is not in duplicate group {group_id}", "keep_asset_ids")
        trash = [a for a in members if a not in keep]

        def attempt() -> int:
            now = self.now()
            assets = {a: self.get_asset_for(user_id, UUID(a)) for a in members}
            for asset in assets.values():
                asset.check_not_deleted()
            best = max(a.rating for a in assets.values())
            liked = any(a.liked for a in assets.values())
            albums: dict[int, Album] = {}

            def album(album_id: int) -> Album | None:
                if album_id not in albums:
                    try:
                        found = self.repository.get(album_id_to_uuid(album_id))
                    except AggregateNotFoundError:
                        return None
                    if found.is_deleted or found.user_id != user_id:
                        return None
                    albums[album_id] = found
                return albums[album_id]

            for gone in trash:  # the kept photos join the albums of the trashed ones
                for album_id in albums_of.get(gone, []):
                    target = album(album_id)
                    if target is None:
                        continue
                    for kept in keep:
                        if kept not in target.asset_ids:
                            target.add_asset(kept, None, at=now)
            for kept in keep:
                assets[kept].rate(max(best, assets[kept].rating))
                if liked:
                    assets[kept].like(True)
            for gone in trash:
                places = []
                for album_id in albums_of.get(gone, []):
                    target = album(album_id)
                    if target is not None and gone in target.asset_ids:
                        places.append({"album_id": album_id, "position": target.asset_ids.index(gone)})
                        target.remove_asset(gone, at=now)
                assets[gone].delete(now, places)
            review = self._review(user_id, group_id)
            review.resolve(kept=list(keep), trashed=trash)
            changed: list[Any] = [review, *assets.values(), *albums.values()]
            return self.save_and_position(*changed)

        return retry_on_conflict(attempt)
