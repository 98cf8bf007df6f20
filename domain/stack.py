"""Stacks: several assets shown as one (a RAW and its JPEG, a burst), with a primary.

`Stack` is the aggregate; each member `Asset` records which stack it is in (`Asset.Stacked`),
saved together with the stack, so an asset is in at most one stack even under concurrent
requests. `ShotIndex` lists, per owner and base file name, the shots whose taken time is known,
so that a RAW and its JPEG of the same shot find each other when their metadata is extracted,
whichever comes first (both completions write the index: the later one sees the earlier).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidInput, NotFound
from domain.ids import NAMESPACE

MAX_STACK_SIZE = 100
SAME_SHOT_SECONDS = 1.0


def base_name(filename: str) -> str:
    """The file name without its extension, lower-cased: what a RAW and its JPEG share."""
    stem, dot, _ = filename.rpartition(".")
    return (stem if dot and stem else filename).lower()


def check_stack_members(asset_ids: list[str], primary: str | None) -> str:
    """2..100 distinct assets, the primary one of them (the first when not given)."""
    if not 2 <= len(asset_ids) <= MAX_STACK_SIZE:
        raise InvalidInput(f"a stack holds 2 to {MAX_STACK_SIZE} assets", "asset_ids")
    if len(set(asset_ids)) != len(asset_ids):
        raise InvalidInput("asset_ids names an asset twice", "asset_ids")
    if primary is None:
        return asset_ids[0]
    if primary not in asset_ids:
        raise InvalidInput("primary_asset_id must be one of asset_ids", "primary_asset_id")
    return primary


class Stack(Aggregate):
    """Assets of one owner shown as one, `primary_asset_id` in front."""

    @staticmethod
    def automatic_id(owner_id: int, asset_ids: list[str]) -> UUID:
        """Automatic stacks have the id of their members: one unstacked by its owner is not
        made again (its creation would collide with the old one)."""
        return uuid5(NAMESPACE, f"stack:{owner_id}:{','.join(sorted(asset_ids))}")

    @event("Created")
    def __init__(self, id: UUID, owner_id: int, asset_ids: list[str], primary_asset_id: str,
                 automatic: bool, at: datetime) -> None:
        # `id` given: a random one for a stack made by hand, `automatic_id` for an automatic one.
        self.owner_id = owner_id
        self.asset_ids = list(asset_ids)
        self.primary_asset_id = primary_asset_id
        self.automatic = automatic
        self.created_at = at
        self.is_deleted = False

    def check_visible_to(self, user_id: int) -> None:
        if self.owner_id != user_id or self.is_deleted:
            raise NotFound(f"stack {self.id} not found")

    def set_primary(self, primary_asset_id: str, at: datetime) -> None:
        if primary_asset_id not in self.asset_ids:
            raise InvalidInput("primary_asset_id must be one of the stack's assets", "primary_asset_id")
        if primary_asset_id != self.primary_asset_id:
            self._set_primary(primary_asset_id=primary_asset_id, at=at)

    @event("PrimaryChanged")
    def _set_primary(self, primary_asset_id: str, at: datetime) -> None:
        """Another member is now shown in front of the stack."""
        self.primary_asset_id = primary_asset_id

    def unstack(self, at: datetime) -> None:
        self._unstack(at=at)

    @event("Unstacked")
    def _unstack(self, at: datetime) -> None:
        """The stack is gone; its assets are shown one by one again."""
        self.is_deleted = True


class ShotIndex(Aggregate):
    """An owner's photos of one base file name (`IMG_0001` of IMG_0001.CR2 and IMG_0001.JPG)
    whose taken time is known: asset id -> {taken (UTC instant text), raw}."""

    @staticmethod
    def create_id(owner_id: int, base_name: str) -> UUID:
        return uuid5(NAMESPACE, f"shots:{owner_id}:{base_name}")

    @event("Started")
    def __init__(self, owner_id: int, base_name: str) -> None:
        self.owner_id = owner_id
        self.base_name = base_name
        self.shots: dict[str, dict[str, Any]] = {}

    def note(self, asset_id: str, taken: str | None, raw: bool) -> None:
        if self.shots.get(asset_id) != {"taken": taken, "raw": raw}:
            self._note(asset_id=asset_id, taken=taken, raw=raw)

    @event("Noted")
    def _note(self, asset_id: str, taken: str | None, raw: bool) -> None:
        """The asset's metadata gave (or changed) its taken time."""
        self.shots[asset_id] = {"taken": taken, "raw": raw}

    def same_shot(self, asset_id: str) -> list[str]:
        """The other shots taken within a second of this one, of the other kind (RAW vs not)."""
        mine = self.shots.get(asset_id)
        if mine is None or mine["taken"] is None:
            return []
        out = []
        for other, shot in sorted(self.shots.items()):
            if other == asset_id or shot["taken"] is None or shot["raw"] == mine["raw"]:
                continue
            seconds = abs((datetime.fromisoformat(shot["taken"].rstrip("Z")) -
                           datetime.fromisoformat(mine["taken"].rstrip("Z"))).total_seconds())
            if seconds <= SAME_SHOT_SECONDS:
                out.append(other)
        return out
