"""The `Darkroom` application: the event store and every command of the write side."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application

from commands.albums import AlbumCommands
from commands.assets import AssetCommands
from commands.duplicates import DuplicateCommands
from commands.jobs import JobCommands
from commands.libraries import LibraryCommands
from commands.people import PeopleCommands
from commands.sharing import SharingCommands
from commands.stacks import StackCommands
from commands.trash import TrashCommands
from commands.users import UserCommands
from domain.errors import NotFound


class Darkroom(UserCommands, AssetCommands, AlbumCommands, TrashCommands, StackCommands, DuplicateCommands,
               JobCommands, PeopleCommands, SharingCommands, LibraryCommands, Application[UUID]):
    """One application, one event store, one notification log that every projection follows.

    Command methods take and return ids and values, never aggregates. Each returns the position
    (notification id) of its last event, so the API can wait for the read models to reach it.
    """

    name = "darkroom"
    geocoder: Any = None  # infra.geocoding.ReverseGeocoder: places from GPS (None: positions only)

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
        A command that changed nothing (rating what it already is) does not touch the store."""
        if not any(getattr(a, "pending_events", True) for a in aggregates):
            return 0
        recordings = self.save(*aggregates)
        return recordings[-1].notification.id if recordings else 0
