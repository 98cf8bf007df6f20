"""Sharing: who else may see an album (members with roles), and public links.

`AlbumSharing` is one aggregate per album (its id derives from the album id), apart from the
`Album` aggregate so that album edits and membership changes never conflict with each other.
`SharedLink` is one public link: only a hash of its key is ever recorded, never the key itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidInput, NotFound
from domain.ids import NAMESPACE

ROLES = ("viewer", "editor")
MAX_LINK_ASSETS = 1000


def check_role(role: Any) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {role!r}", "role")
    return str(role)


def album_sharing_id(album_id: int) -> UUID:
    return uuid5(NAMESPACE, f"album-sharing:{album_id}")


def shared_link_id_to_uuid(link_id: int) -> UUID:
    return uuid5(NAMESPACE, f"shared-link:{link_id}")


class AlbumSharing(Aggregate):
    """The members of one album and their roles. The album's owner is never a member."""

    @staticmethod
    def create_id(album_id: int) -> UUID:
        return album_sharing_id(album_id)

    @event("Started")
    def __init__(self, album_id: int, owner_id: int) -> None:
        """Sharing of an album began (the first member is added in the same save)."""
        self.album_id = album_id
        self.owner_id = owner_id
        self.members: dict[int, str] = {}

    def role_of(self, user_id: int) -> str | None:
        return self.members.get(user_id)

    def add_member(self, user_id: int, role: str, by: int, at: datetime) -> None:
        role = check_role(role)
        if user_id == self.owner_id:
            raise InvalidInput("the album's owner cannot be a member of it", "username")
        if user_id in self.members:
            raise Conflict(f"user {user_id} is already a member of album {self.album_id}", "username")
        self._add_member(user_id=user_id, role=role, by=by, at=at)

    @event("MemberAdded")
    def _add_member(self, user_id: int, role: str, by: int, at: datetime) -> None:
        """`by` (the owner) shared the album with `user_id` in `role`."""
        self.members[user_id] = role

    def change_role(self, user_id: int, role: str, by: int, at: datetime) -> None:
        role = check_role(role)
        if user_id not in self.members:
            raise NotFound(f"user {user_id} is not a member of album {self.album_id}")
        if self.members[user_id] != role:
            self._change_role(user_id=user_id, role=role, by=by, at=at)

    @event("MemberRoleChanged")
    def _change_role(self, user_id: int, role: str, by: int, at: datetime) -> None:
        """A member's role changed; it takes effect on their next request."""
        self.members[user_id] = role

    def remove_member(self, user_id: int, by: int, at: datetime) -> None:
        if user_id not in self.members:
            raise NotFound(f"user {user_id} is not a member of album {self.album_id}")
        self._remove_member(user_id=user_id, by=by, at=at)

    @event("MemberRemoved")
    def _remove_member(self, user_id: int, by: int, at: datetime) -> None:
        """The member lost access to the album (removed by the owner, or left: `by`)."""
        del self.members[user_id]


class SharedLink(Aggregate):
    """A public link to an album or to a set of assets. The key is a long random secret given
    once to its creator; the log holds only its SHA-256 (`key_hash`) and, when the link has a
    password, an argon2id hash of it (`password_hash`, redacted from exports)."""

    @staticmethod
    def create_id(link_id: int) -> UUID:
        return shared_link_id_to_uuid(link_id)

    @event("Created")
    def __init__(
        self,
        link_id: int,
        owner_id: int,
        album_id: int | None,
        asset_ids: list[str],
        key_hash: str,
        password_hash: str | None,
        expires_at: datetime | None,
        allow_download: bool,
        created_at: datetime,
    ) -> None:
        """`owner_id` created a link to an album or to `asset_ids`."""
        self.link_id = link_id
        self.owner_id = owner_id
        self.album_id = album_id
        self.asset_ids = list(asset_ids)
        self.key_hash = key_hash
        self.password_hash = password_hash
        self.expires_at = expires_at
        self.allow_download = allow_download
        self.created_at = created_at
        self.revoked_at: datetime | None = None

    def check_owned_by(self, user_id: int) -> None:
        if self.owner_id != user_id or self.revoked_at is not None:
            raise NotFound(f"shared link {self.link_id} not found")

    def is_usable(self, now: datetime) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def revoke(self, by: int, at: datetime) -> None:
        self._revoke(by=by, at=at)

    @event("Revoked")
    def _revoke(self, by: int, at: datetime) -> None:
        """The link stops working at once; `by` revoked it."""
        self.revoked_at = at
