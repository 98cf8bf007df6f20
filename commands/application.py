"""The `Darkroom` application: the event store and every command of the write side."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import JSONTranscoder, Transcoding

from commands.albums import AlbumCommands
from commands.assets import AssetCommands
from commands.backfill import BackfillCommands
from commands.duplicates import DuplicateCommands
from commands.erasure import ErasureCommands
from commands.jobs import JobCommands
from commands.libraries import LibraryCommands
from commands.people import PeopleCommands
from commands.sharing import SharingCommands
from commands.stacks import StackCommands
from commands.trash import TrashCommands
from commands.users import UserCommands
from domain.errors import NotFound
from domain.indexes import Sequence
from domain.user import RefreshToken, User
from infra.personal_data import saving_for

# Aggregates that gain events without end: a user at every login and refresh, a sequence at
# every registration or album. A snapshot every this many events keeps loading one flat.
SNAPSHOT_INTERVAL = 100


class RefreshTokenAsDict(Transcoding):
    """A user's refresh token inside a snapshot of the user."""

    type = RefreshToken
    name = "refresh_token"

    def encode(self, obj: RefreshToken) -> dict[str, Any]:
        return {"secret_hash": obj.secret_hash, "expires_at": obj.expires_at, "state": obj.state}

    def decode(self, data: dict[str, Any]) -> RefreshToken:
        return RefreshToken(**data)


class Darkroom(UserCommands, AssetCommands, AlbumCommands, TrashCommands, StackCommands, DuplicateCommands,
               JobCommands, PeopleCommands, SharingCommands, LibraryCommands, ErasureCommands, BackfillCommands,
               Application[UUID]):
    """One application, one event store, one notification log that every projection follows.

    Command methods take and return ids and values, never aggregates. Each returns the position
    (notification id) of its last event, so the API can wait for the read models to reach it.
    """

    name = "darkroom"
    geocoder: Any = None  # infra.geocoding.ReverseGeocoder: places from GPS (None: positions only)
    snapshotting_intervals = {User: SNAPSHOT_INTERVAL, Sequence: SNAPSHOT_INTERVAL}

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(RefreshTokenAsDict())

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def load(self, aggregate_id: UUID, what: str) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"{what} not found") from None

    def _sequence(self, name: str) -> Sequence:
        """The named id sequence (users, albums, shared links, libraries), new when none yet."""
        try:
            return self.repository.get(Sequence.create_id(name))
        except AggregateNotFoundError:
            return Sequence(name=name)

    def exists(self, aggregate_id: UUID) -> bool:
        try:
            self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return False
        return True

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """Save, telling the mapper whose key seals each aggregate's personal fields (the user
        an asset, album, job or account belongs to; see infra.personal_data)."""
        owners = {}
        for obj in objs:
            owner = getattr(obj, "owner_id", None)
            if owner is None:
                owner = getattr(obj, "user_id", None)
            if isinstance(owner, int):
                owners[obj.id] = owner
        with saving_for(owners):
            return super().save(*objs, **kwargs)

    def save_and_position(self, *aggregates: Any) -> int:
        """Save, and return the position of the last recorded event (0 if nothing changed).
        A command that changed nothing (rating what it already is) does not touch the store."""
        if not any(getattr(a, "pending_events", True) for a in aggregates):
            return 0
        recordings = self.save(*aggregates)
        return recordings[-1].notification.id if recordings else 0
