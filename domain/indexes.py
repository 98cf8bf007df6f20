"""Small aggregates that give uniqueness and integer ids through optimistic concurrency."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import content_key, email_key, sequence_key, username_key


class Sequence(Aggregate):
    """Allocates consecutive positive integers (user ids, album ids, job ids).

    Each allocation is an event, so the ids are part of the log and a rebuild gives the same ids.
    Two concurrent allocations collide on the aggregate version; the loser retries.
    """

    @staticmethod
    def create_id(name: str) -> UUID:
        return sequence_key(name)

    @event("Started")
    def __init__(self, name: str) -> None:
        self.name = name
        self.last = 0

    def next_value(self) -> int:
        self._allocate(value=self.last + 1)
        return self.last

    @event("Allocated")
    def _allocate(self, value: int) -> None:
        self.last = value


class UsernameClaimed(Aggregate):
    """A username taken by a user. Its id derives from the lower-cased name, so it is unique."""

    @staticmethod
    def create_id(username: str) -> UUID:
        return username_key(username)

    @event("Claimed")
    def __init__(self, username: str, user_id: int) -> None:
        self.username = username
        self.user_id = user_id


class EmailClaimed(Aggregate):
    """An e-mail address taken by a user, unique the same way as usernames."""

    @staticmethod
    def create_id(email: str) -> UUID:
        return email_key(email)

    @event("Claimed")
    def __init__(self, email: str, user_id: int) -> None:
        self.email = email
        self.user_id = user_id


class ContentIndex(Aggregate):
    """Which asset of an owner holds a given content hash: the per-user dedupe index."""

    @staticmethod
    def create_id(owner_id: int, content_hash: str) -> UUID:
        return content_key(owner_id, content_hash)

    @event("Indexed")
    def __init__(self, owner_id: int, content_hash: str, asset_id: UUID | None) -> None:
        self.owner_id = owner_id
        self.content_hash = content_hash
        self.asset_id = asset_id

    @event("Reassigned")
    def reassign(self, asset_id: UUID) -> None:
        """The old asset with this content was deleted; a new upload now owns the content."""
        self.asset_id = asset_id

    @event("Released")
    def release(self) -> None:
        """The asset holding this content was purged: no asset of the owner holds it now.
        Saved with the purge, so an upload racing it conflicts and retries."""
        self.asset_id = None  # type: ignore[assignment]
