"""The `PeopleBook` aggregate: one owner's corrections to how their faces are grouped.

Faces are grouped into people by the `people` projection (clustering of face embeddings). What a
user says about that grouping — a person's name, hiding a person, merging people, moving one face
to another person — is recorded here as events, so the projection replays them in log order and a
rebuild gives the same people with the same names. Every event carries the owner's id, because
the projection keys people by owner.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidInput
from domain.ids import NAMESPACE
from domain.text import check_text

MAX_PERSON_NAME_LENGTH = 255
MAX_MERGE = 100


def people_book_id(owner_id: int) -> UUID:
    return uuid5(NAMESPACE, f"people:{owner_id}")


def check_person_name(name: Any) -> str:
    """A name, trimmed; "" clears it."""
    if not isinstance(name, str):
        raise InvalidInput("name must be a string", "name")
    return check_text(name, "name", MAX_PERSON_NAME_LENGTH, name=True).strip() if name.strip() else ""


def check_merge(person_id: str, person_ids: list[str]) -> list[str]:
    """The people to merge into `person_id`: at least one, none of them `person_id` itself."""
    if not person_ids:
        raise InvalidInput("person_ids must name at least one person", "person_ids")
    if len(person_ids) > MAX_MERGE:
        raise InvalidInput(f"person_ids may name at most {MAX_MERGE} people", "person_ids")
    if person_id in person_ids:
        raise InvalidInput("a person cannot be merged into itself", "person_ids")
    return list(dict.fromkeys(person_ids))


class PeopleBook(Aggregate):
    """An owner's people corrections; its id is derived from the owner (one book per user)."""

    @staticmethod
    def create_id(owner_id: int) -> UUID:
        return people_book_id(owner_id)

    @event("Opened")
    def __init__(self, owner_id: int) -> None:
        """The owner made their first correction."""
        self.owner_id = owner_id

    @event("PersonNamed")
    def name_person(self, owner_id: int, person_id: str, name: str) -> None:
        """The user named a person ("" clears the name)."""

    @event("PersonHidden")
    def hide_person(self, owner_id: int, person_id: str, hidden: bool) -> None:
        """The user hid a person from the people list (or showed them again)."""

    @event("PeopleMerged")
    def merge_people(self, owner_id: int, person_id: str, merged_ids: list[str]) -> None:
        """The faces of `merged_ids` now belong to `person_id`; those people are gone."""

    @event("FaceMoved")
    def move_face(self, owner_id: int, face_id: str, person_id: str, new_person: bool) -> None:
        """The user said this face is `person_id` (a new person when `new_person`); later
        clustering of the face's asset keeps the correction."""
