"""The owner's decisions about a group of near-duplicate photos.

A group's id is derived from its first member (`group_id_of`), so it is the same on every
rebuild of the read models; `DuplicateReview` (same id) records what the owner decided: the
group is not a duplicate (`Dismissed`), or which photos were kept (`Resolved`; the others went to
the trash in the same save). Either way, the photos named are never grouped together again.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.ids import NAMESPACE


def group_id_of(owner_id: int, first_asset_id: str) -> UUID:
    return uuid5(NAMESPACE, f"duplicates:{owner_id}:{first_asset_id}")


class DuplicateReview(Aggregate):
    """An owner's decisions on near-duplicate photos: which sets are not duplicates, which were
    resolved (kept and trashed)."""

    @event("Started")
    def __init__(self, id: UUID, owner_id: int) -> None:
        """The owner made a first decision on near-duplicates (the review's decisions follow)."""
        self.owner_id = owner_id
        self.decisions: list[list[str]] = []

    @event("Dismissed")
    def dismiss(self, asset_ids: list[str]) -> None:
        """The owner said these photos are not duplicates of each other."""
        self.decisions.append(list(asset_ids))

    @event("Resolved")
    def resolve(self, kept: list[str], trashed: list[str]) -> None:
        """The owner kept these photos of the group; the others were trashed (with their
        albums, best rating and like carried over to the kept ones)."""
        self.decisions.append(list(kept) + list(trashed))
