"""The `Darkroom` application: the event store and every command of the write side."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application

from commands.albums import AlbumCommands
from commands.retry import CONFLICTS
from commands.assets import AssetCommands
from commands.users import UserCommands
from domain.errors import NotFound


class Darkroom(UserCommands, AssetCommands, AlbumCommands, Application[UUID]):
    """One application, one event store, one notification log that every projection follows.

    Command methods take and return ids and values, never aggregates. Each returns the position
    (notification id) of its last event, so the API can wait for the read models to reach it.
    """

    name = "darkroom"

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def load(self, aggregate_id: UUID, what: str) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"{what} not found") from None

    def exists(self, aggregate_id: UUID) -> bool:
        try:
            self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return False
        return True

    def save_and_position(self, *aggregates: Any) -> int:
        """Save, and return the position of the last recorded event (0 if nothing changed).

        Aggregates are cached without fast-forwarding (a read costs no query). A cached copy can
        be stale only when another process wrote to the aggregate; then this save conflicts on
        the version, we evict what we tried to save, and the caller's retry loads fresh state.
        So no decision is ever appended on top of a stale aggregate.
        """
        try:
            recordings = self.save(*aggregates)
        except CONFLICTS:
            self.evict(*aggregates)
            raise
        return recordings[-1].notification.id if recordings else 0

    def evict(self, *aggregates: Any) -> None:
        cache = self.repository.cache
        if cache is not None:
            for aggregate in aggregates:
                try:
                    cache.get(aggregate.id, evict=True)
                except KeyError:
                    pass
