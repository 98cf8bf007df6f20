"""Deterministic aggregate ids.

Aggregates addressed by something other than a random UUID (an integer id, a username, a content
hash) get a `uuid5` id, so that optimistic concurrency on the creation event enforces uniqueness:
two writers creating the same id collide in the event store and one of them loses.
"""

from __future__ import annotations

from uuid import UUID, uuid5

NAMESPACE = UUID("6f1c1f0e-6a0b-4d44-9d3e-0b1f1c2d3e4f")


def user_id_to_uuid(user_id: int) -> UUID:
    return uuid5(NAMESPACE, f"user:{user_id}")


def album_id_to_uuid(album_id: int) -> UUID:
    return uuid5(NAMESPACE, f"album:{album_id}")


def username_key(username: str) -> UUID:
    return uuid5(NAMESPACE, f"username:{username.strip().lower()}")


def email_key(email: str) -> UUID:
    return uuid5(NAMESPACE, f"email:{email.strip().lower()}")


def content_key(owner_id: int, content_hash: str) -> UUID:
    return uuid5(NAMESPACE, f"content:{owner_id}:{content_hash.lower()}")


def sequence_key(name: str) -> UUID:
    return uuid5(NAMESPACE, f"sequence:{name}")
