"""Stack commands: stack assets by hand, change the primary, unstack; and the automatic stack of
a RAW file and the JPEG/HEIC of the same shot, found when their metadata is recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from commands.retry import retry_on_conflict
from domain.asset import Asset
from domain.errors import NotFound
from domain.stack import ShotIndex, Stack, base_name, check_stack_members
from infra.media_types import RAW_MIME_TYPES

if TYPE_CHECKING:
    from commands.application import Darkroom


class StackCommands:
    def get_stack_for(self: Darkroom, user_id: int, stack_id: UUID) -> Stack:
        stack = self.load(stack_id, f"stack {stack_id}")
        if not isinstance(stack, Stack):
            raise NotFound(f"stack {stack_id} not found")
        stack.check_visible_to(user_id)
        return stack

    def create_stack(self: Darkroom, user_id: int, asset_ids: list[UUID],
                     primary_asset_id: UUID | None) -> tuple[UUID, int]:
        """Stack some of the user's (untrashed) assets; each may be in one stack only (409)."""
        ids = [str(a) for a in asset_ids]
        primary = check_stack_members(ids, str(primary_asset_id) if primary_asset_id else None)

        def attempt() -> tuple[UUID, int]:
            assets = []
            for asset_id in asset_ids:
                asset = self.get_asset_for(user_id, asset_id)
                asset.check_not_deleted()
                assets.append(asset)
            stack = Stack(id=uuid4(), owner_id=user_id, asset_ids=ids, primary_asset_id=primary,
                          automatic=False, at=self.now())
            for asset in assets:
                asset.join_stack(stack.id)
            return stack.id, self.save_and_position(stack, *assets)

        return retry_on_conflict(attempt)

    def set_stack_primary(self: Darkroom, user_id: int, stack_id: UUID, primary_asset_id: UUID) -> int:
        def attempt() -> int:
            stack = self.get_stack_for(user_id, stack_id)
            stack.set_primary(str(primary_asset_id), self.now())
            return self.save_and_position(stack)

        return retry_on_conflict(attempt)

    def unstack(self: Darkroom, user_id: int, stack_id: UUID) -> int:
        """Take the stack apart: its assets are shown one by one again."""

        def attempt() -> int:
            stack = self.get_stack_for(user_id, stack_id)
            stack.unstack(self.now())
            members = []
            for asset_id in stack.asset_ids:
                asset: Asset = self.repository.get(UUID(asset_id))
                asset.leave_stack(stack.id)
                members.append(asset)
            return self.save_and_position(stack, *members)

        return retry_on_conflict(attempt)

    def same_shot_changes(self: Darkroom, asset: Asset) -> list[Any]:
        """Called when a photo's metadata is recorded: note its taken time in the index of its
        base name and, when a RAW/processed counterpart was taken within a second, stack the two
        (processed image as primary). Answers the aggregates to save with the completion."""
        if asset.asset_type != "PHOTO" or asset.is_deleted:
            return []
        try:
            index: ShotIndex = self.repository.get(ShotIndex.create_id(asset.owner_id, base_name(asset.original_filename)))
        except AggregateNotFoundError:
            index = ShotIndex(owner_id=asset.owner_id, base_name=base_name(asset.original_filename))
        raw = asset.mime_type in RAW_MIME_TYPES
        index.note(str(asset.id), asset.extracted.get("taken_time_local"), raw)
        changed: list[Any] = [index]
        if asset.stack_id is not None:
            return changed
        for other_id in index.same_shot(str(asset.id)):
            other: Asset = self.repository.get(UUID(other_id))
            if other.is_deleted or other.stack_id is not None or getattr(other, "is_purged", False):
                continue
            members = sorted([str(asset.id), other_id])
            stack_id = Stack.automatic_id(asset.owner_id, members)
            if self.exists(stack_id):
                continue  # stacked before and taken apart by the owner: not again
            primary = other_id if raw else str(asset.id)
            stack = Stack(id=stack_id, owner_id=asset.owner_id, asset_ids=members,
                          primary_asset_id=primary, automatic=True, at=self.now())
            asset.join_stack(stack.id)
            other.join_stack(stack.id)
            return changed + [stack, other]
        return changed
