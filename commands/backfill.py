"""Backfill: what this release derives for new photos, made for photos stored before it.

Places (reverse geocoding of the GPS position), RAW+JPEG stacks and near-duplicate fingerprints
came with the 2026-11-28 release; photos uploaded earlier have none of them until something
derives them. `backfill_asset` does it for one asset, idempotently: places and stacks are commands
(no file is read); a fingerprint needs the thumbnail task again, queued only for a photo whose
thumbnails were made without one. `darkroom backfill` runs it over the library with progress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from commands.retry import retry_on_conflict
from domain.asset import Asset
from domain.stack import Stack

if TYPE_CHECKING:
    from commands.application import Darkroom

# What a backfill of one asset did: a place named, a stack made, a fingerprint queued.
PLACE, STACK, FINGERPRINT = "place", "stack", "fingerprint"


class BackfillCommands:
    def backfill_asset(self: Darkroom, asset_id: UUID, fingerprints: bool = True) -> set[str]:
        """Derive what the asset lacks; answers what was done (nothing for a trashed or purged
        asset, or one that has it all)."""

        def attempt() -> set[str]:
            try:
                asset: Asset = self.repository.get(asset_id)
            except AggregateNotFoundError:
                return set()
            if asset.is_deleted or getattr(asset, "is_purged", False):
                return set()
            done: set[str] = set()
            changed: list[Any] = []
            if asset.tasks.get("metadata_asset", {}).get("state") == "completed":
                self.locate(asset)  # records only a position or place that changed
                if any(type(e).__name__ == "Located" for e in asset.pending_events):
                    done.add(PLACE)
                changed = [a for a in self.same_shot_changes(asset) if a.pending_events]
                if any(isinstance(a, Stack) for a in changed):
                    done.add(STACK)
            thumbnails = asset.tasks.get("thumbnail_asset", {}).get("state")
            if (fingerprints and asset.asset_type == "PHOTO" and thumbnails == "completed"
                    and not getattr(asset, "fingerprint", None)):
                changed += self._new_jobs(asset, ["thumbnail_asset"])
                done.add(FINGERPRINT)
            if asset.pending_events or changed:
                self.save(asset, *changed)
            return done

        return retry_on_conflict(attempt)
