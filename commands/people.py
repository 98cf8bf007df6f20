"""People commands: name or hide a person, merge people, move a face to another person.

People themselves come from the `people` projection (faces clustered by identity); the API
checks there that the people and faces named belong to the caller before calling these. The
commands record the user's word in the owner's `PeopleBook`, whose events the projection
replays, so corrections survive every rebuild.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import uuid4

from eventsourcing.application import AggregateNotFoundError

from commands.retry import retry_on_conflict
from domain.people import PeopleBook, check_merge, check_person_name, people_book_id

if TYPE_CHECKING:
    from commands.application import Darkroom


class PeopleCommands:
    def _people_book(self: Darkroom, owner_id: int) -> PeopleBook:
        try:
            return self.repository.get(people_book_id(owner_id))
        except AggregateNotFoundError:
            return PeopleBook(owner_id=owner_id)

    def update_person(self: Darkroom, owner_id: int, person_id: str, name: str | None = None,
                      hidden: bool | None = None) -> int:
        """Name and/or hide a person; returns the position of the last event (0: no change)."""
        if name is not None:
            name = check_person_name(name)

        def attempt() -> int:
            book = self._people_book(owner_id)
            if name is not None:
                book.name_person(owner_id=owner_id, person_id=person_id, name=name)
            if hidden is not None:
                book.hide_person(owner_id=owner_id, person_id=person_id, hidden=bool(hidden))
            return self.save_and_position(book)

        return retry_on_conflict(attempt)

    def merge_people(self: Darkroom, owner_id: int, person_id: str, person_ids: list[str]) -> int:
        """Fold `person_ids` into `person_id`; returns the position of the event."""
        merged = check_merge(person_id, person_ids)

        def attempt() -> int:
            book = self._people_book(owner_id)
            book.merge_people(owner_id=owner_id, person_id=person_id, merged_ids=merged)
            return self.save_and_position(book)

        return retry_on_conflict(attempt)

    def move_face(self: Darkroom, owner_id: int, face_id: str, person_id: str | None) -> tuple[str, int]:
        """Put a face in `person_id`, or in a new person when None; returns (the face's person,
        the position of the event). A new person's id is chosen here and kept in the event."""
        target = person_id or str(uuid4())

        def attempt() -> int:
            book = self._people_book(owner_id)
            book.move_face(owner_id=owner_id, face_id=face_id, person_id=target, new_person=person_id is None)
            return self.save_and_position(book)

        return target, retry_on_conflict(attempt)
