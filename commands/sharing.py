"""Sharing commands: album members with roles, and public links.

The rule for who may change an album lives here: the owner may do anything; an editor may add
their own assets and remove assets they own; a viewer may only look. A non-member gets 404, as
for any album that is not theirs.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from commands.retry import retry_on_conflict
from domain.album import Album
from domain.asset import Asset
from domain.errors import Forbidden, InvalidInput, NotFound
from domain.ids import album_id_to_uuid, username_key
from domain.share import MAX_LINK_ASSETS, AlbumSharing, SharedLink, check_role

if TYPE_CHECKING:
    from commands.application import Darkroom


class SharingCommands:
    # -- who may do what with an album -----------------------------------------------------------

    def _sharing(self: Darkroom, album_id: int) -> AlbumSharing | None:
        try:
            return self.repository.get(AlbumSharing.create_id(album_id))  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            return None

    def role_in_album(self: Darkroom, user_id: int, album_id: int) -> str:
        """"owner", "editor" or "viewer"; NotFound when the user may not see the album."""
        album: Album = self.load(album_id_to_uuid(album_id), f"album {album_id}")
        if album.is_deleted:
            raise NotFound(f"album {album_id} not found")
        if album.user_id == user_id:
            return "owner"
        sharing = self._sharing(album_id)
        role = sharing.role_of(user_id) if sharing is not None else None
        if role is None:
            raise NotFound(f"album {album_id} not found")
        return role

    def album_for_contribution(self: Darkroom, user_id: int, album_id: int,
                               removing: UUID | None = None) -> Album:
        """The album, loaded for adding (or, with `removing`, removing) an asset by this user:
        its owner, or an editor (who removes only assets they own). A viewer gets 403."""
        role = self.role_in_album(user_id, album_id)
        album: Album = self.load(album_id_to_uuid(album_id), f"album {album_id}")
        if role == "owner":
            return album
        if role != "editor":
            raise Forbidden(f"you are a viewer of album {album_id}: only its owner and editors change it")
        if removing is not None:
            try:
                asset = self.repository.get(removing)
            except AggregateNotFoundError:
                asset = None
            if not isinstance(asset, Asset) or asset.owner_id != user_id:
                if str(removing) not in album.asset_ids:
                    raise NotFound(f"asset {removing} is not in album {album_id}")
                raise Forbidden("an editor removes only the assets they own; ask the album's owner")
        return album

    # -- members ---------------------------------------------------------------------------------

    def user_id_of(self: Darkroom, username: Any) -> int:
        if not isinstance(username, str) or not username.strip():
            raise InvalidInput("username must be a non-empty string", "username")
        try:
            claim = self.repository.get(username_key(username))
        except AggregateNotFoundError:
            raise NotFound(f"user {username!r} not found") from None
        return int(claim.user_id)

    def _owned_album(self: Darkroom, owner_id: int, album_id: int) -> Album:
        """The album when `owner_id` owns it; a member gets 403 (they see it, but managing it is
        the owner's), anyone else 404."""
        if self.role_in_album(owner_id, album_id) != "owner":
            raise Forbidden(f"only the owner of album {album_id} manages its sharing")
        album: Album = self.load(album_id_to_uuid(album_id), f"album {album_id}")
        return album

    def add_album_member(self: Darkroom, owner_id: int, album_id: int, username: str, role: str) -> tuple[int, int]:
        """Share an album with a user in a role; returns (member's user id, position)."""
        role = check_role(role)
        member_id = self.user_id_of(username)

        def attempt() -> tuple[int, int]:
            self._owned_album(owner_id, album_id)
            sharing = self._sharing(album_id) or AlbumSharing(album_id=album_id, owner_id=owner_id)
            sharing.add_member(member_id, role, by=owner_id, at=self.now())
            return member_id, self.save_and_position(sharing)

        return retry_on_conflict(attempt)

    def change_album_member_role(self: Darkroom, owner_id: int, album_id: int, member_id: int, role: str) -> int:
        role = check_role(role)

        def attempt() -> int:
            self._owned_album(owner_id, album_id)
            sharing = self._sharing(album_id)
            if sharing is None:
                raise NotFound(f"user {member_id} is not a member of album {album_id}")
            sharing.change_role(member_id, role, by=owner_id, at=self.now())
            return self.save_and_position(sharing)

        return retry_on_conflict(attempt)

    def remove_album_member(self: Darkroom, user_id: int, album_id: int, member_id: int) -> int:
        """The owner removes a member, or a member leaves (removes themselves)."""

        def attempt() -> int:
            if user_id != member_id:
                self._owned_album(user_id, album_id)
            else:
                self.role_in_album(user_id, album_id)
            sharing = self._sharing(album_id)
            if sharing is None:
                raise NotFound(f"user {member_id} is not a member of album {album_id}")
            sharing.remove_member(member_id, by=user_id, at=self.now())
            return self.save_and_position(sharing)

        return retry_on_conflict(attempt)

    # -- public links ----------------------------------------------------------------------------

    def create_shared_link(
        self: Darkroom, owner_id: int, album_id: int | None, asset_ids: list[str] | None,
        key_hash: str, password_hash: str | None, expires_at: datetime | None, allow_download: bool,
    ) -> tuple[int, int]:
        """A public link to one of the owner's albums or to some of their assets; returns
        (link_id, position). The caller made the key and gives only its hash."""
        if (album_id is None) == (not asset_ids):
            raise InvalidInput("give either album_id or a non-empty asset_ids", "album_id")
        now = self.now()
        if expires_at is not None and expires_at <= now:
            raise InvalidInput("expires_at must be in the future", "expires_at")
        checked: list[str] = []
        if album_id is not None:
            self._owned_album(owner_id, album_id)
        else:
            assert asset_ids is not None
            if len(asset_ids) > MAX_LINK_ASSETS:
                raise InvalidInput(f"at most {MAX_LINK_ASSETS} assets per link", "asset_ids")
            for raw in asset_ids:
                try:
                    asset_id = UUID(str(raw))
                except ValueError:
                    raise InvalidInput(f"asset id {raw!r} is not a UUID", "asset_ids") from None
                try:
                    asset = self.get_asset_for(owner_id, asset_id)
                except NotFound:  # another user's asset is not found either
                    raise NotFound(f"asset {raw} not found among your assets") from None
                if asset.is_deleted:
                    raise InvalidInput(f"asset {raw} is deleted", "asset_ids")
                if str(asset.id) not in checked:
                    checked.append(str(asset.id))

        def attempt() -> tuple[int, int]:
            links = self._sequence("shared_links")
            link_id = links.next_value()
            link = SharedLink(
                link_id=link_id, owner_id=owner_id, album_id=album_id, asset_ids=checked,
                key_hash=key_hash, password_hash=password_hash, expires_at=expires_at,
                allow_download=allow_download, created_at=now,
            )
            return link_id, self.save_and_position(links, link)

        return retry_on_conflict(attempt)

    def shared_link(self: Darkroom, link_id: int) -> SharedLink:
        """The link aggregate itself: the public routes check revocation and expiry on it, so a
        revoked key stops working at once, whatever a read model's lag."""
        link: SharedLink = self.load(SharedLink.create_id(link_id), f"shared link {link_id}")
        return link

    def revoke_shared_link(self: Darkroom, owner_id: int, link_id: int) -> int:
        def attempt() -> int:
            link = self.shared_link(link_id)
            link.check_owned_by(owner_id)
            link.revoke(by=owner_id, at=self.now())
            return self.save_and_position(link)

        return retry_on_conflict(attempt)
