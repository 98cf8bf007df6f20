"""Crypto-shredding: personal fields of events sealed with a per-user key kept outside the log.

`PersonalDataMapper` is eventsourcing's mapper with one more step. Storing an event of a type
listed in `domain.personal.PERSONAL_FIELDS`, each such field is replaced by a sealed value
`{"_sealed_": [owner, kind, data]}`: AES-256-GCM of the field's JSON under the owner's key,
with the owner, event type and field as associated data (a sealed value cannot be moved to
another field or person). Reading it back opens the field with the owner's key; when the owner
was erased the key is gone and the field reads as `domain.personal.erased_value(kind)`. The
owner is the user the saved aggregate belongs to; `Darkroom.save` tells the mapper (`owners`).

Keys live in the read-model database (`personal_keys`), never in the log nor on Kafka, whose
events topic carries the sealed form only (`to_sealed_event`). Erasing deletes the key row;
other processes stop opening that person's fields when their key cache expires
(`KEY_CACHE_SECONDS`).
"""

from __future__ import annotations

import base64
import contextvars
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Mapper, StoredEvent

from domain.personal import PERSONAL_FIELDS, erased_value, kind_of
from infra.database import Database

KEYS_TABLE = "personal_keys"
KEY_CACHE_SECONDS = 2.0
SEALED = "_sealed_"

# aggregate id -> owner (user id) of the aggregates being saved, set by `saving_for`.
_owners: contextvars.ContextVar[dict[Any, int]] = contextvars.ContextVar("darkroom_personal_owners", default={})


@contextmanager
def saving_for(owners: dict[Any, int]) -> Iterator[None]:
    """While saving: whose key seals the personal fields of each aggregate's new events."""
    token = _owners.set(owners)
    try:
        yield
    finally:
        _owners.reset(token)


class KeyStore:
    """Per-user data keys in the read-model database, cached briefly in memory."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[int, tuple[bytes | None, float]] = {}
        self._erased: dict[int, tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def ensure_table(self) -> None:
        with self.db.transaction() as tx:
            if not self.db.table_exists(tx, KEYS_TABLE):
                tx.execute(f"CREATE TABLE {KEYS_TABLE} (user_id BIGINT PRIMARY KEY, data_key TEXT NOT NULL)")
            if not self.db.table_exists(tx, f"{KEYS_TABLE}_erased"):
                tx.execute(f"CREATE TABLE {KEYS_TABLE}_erased (user_id BIGINT PRIMARY KEY)")

    def key(self, user_id: int) -> bytes | None:
        """The user's key; None when the user was erased (or never had personal data)."""
        now = time.monotonic()
        cached = self._cache.get(user_id)
        if cached is not None and now - cached[1] < KEY_CACHE_SECONDS:
            return cached[0]
        row = self.db.query_one(f"SELECT data_key FROM {KEYS_TABLE} WHERE user_id = ?", (user_id,))
        key = bytes.fromhex(row["data_key"]) if row else None
        self._cache[user_id] = (key, now)
        return key

    def key_for_writing(self, user_id: int) -> bytes:
        """The user's key, made on first use. A user that was erased gets no new key: their
        late events (a job finishing after the erasure) are sealed with a key nobody keeps."""
        key = self.key(user_id)
        if key is not None:
            return key
        with self._lock:
            with self.db.transaction() as tx:
                row = tx.fetchone(f"SELECT data_key FROM {KEYS_TABLE} WHERE user_id = ?", (user_id,))
                erased = tx.fetchone(f"SELECT 1 AS x FROM {KEYS_TABLE}_erased WHERE user_id = ?", (user_id,))
                if row is not None:
                    key = bytes.fromhex(row["data_key"])
                elif erased is not None:
                    return AESGCM.generate_key(bit_length=256)  # thrown away at once
                else:
                    key = AESGCM.generate_key(bit_length=256)
                    tx.execute(f"INSERT INTO {KEYS_TABLE} (user_id, data_key) VALUES (?, ?)", (user_id, key.hex()))
            self._cache[user_id] = (key, time.monotonic())
            return key

    def is_erased(self, user_id: int) -> bool:
        """Whether the user was erased (their access tokens stop working), cached briefly."""
        now = time.monotonic()
        cached = self._erased.get(user_id)
        if cached is not None and now - cached[1] < KEY_CACHE_SECONDS:
            return cached[0]
        erased = self.db.query_one(f"SELECT 1 AS x FROM {KEYS_TABLE}_erased WHERE user_id = ?", (user_id,)) is not None
        self._erased[user_id] = (erased, now)
        return erased

    def destroy(self, user_id: int) -> None:
        """Erase: the key row goes; the user id is remembered so no new key is ever made."""
        with self.db.transaction() as tx:
            tx.execute(f"DELETE FROM {KEYS_TABLE} WHERE user_id = ?", (user_id,))
            if tx.fetchone(f"SELECT 1 AS x FROM {KEYS_TABLE}_erased WHERE user_id = ?", (user_id,)) is None:
                tx.execute(f"INSERT INTO {KEYS_TABLE}_erased (user_id) VALUES (?)", (user_id,))
        self._cache[user_id] = (None, time.monotonic())
        self._erased[user_id] = (True, time.monotonic())


def _aad(owner: int, event_type: str, field: str) -> bytes:
    return f"{owner}|{event_type}|{field}".encode()


def is_sealed(value: Any) -> bool:
    return type(value) is dict and len(value) == 1 and SEALED in value


class PersonalDataMapper(Mapper[Any]):
    """eventsourcing's mapper, sealing and opening the personal fields of events."""

    keys: KeyStore | None = None  # set by bootstrap; without it personal events cannot be stored

    @staticmethod
    def personal_fields(topic: str) -> tuple[str, ...]:
        """The personal fields of the events stored under `topic` (none for most)."""
        return PERSONAL_FIELDS.get(topic.partition(":")[2], ())

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        name = type(domain_event).__qualname__
        fields = PERSONAL_FIELDS.get(name)
        if not fields:
            return super().to_stored_event(domain_event)
        owner = _owners.get().get(domain_event.originator_id)
        if owner is None or self.keys is None:
            raise RuntimeError(f"{name} holds personal data but its owner is unknown: save it through Darkroom.save")
        key = AESGCM(self.keys.key_for_writing(owner))
        sealed = dict(vars(domain_event))
        for field in fields:
            value = sealed[field]
            nonce = os.urandom(12)
            data = key.encrypt(nonce, orjson.dumps(value, default=str), _aad(owner, name, field))
            sealed[field] = {SEALED: [owner, kind_of(value), base64.b64encode(nonce + data).decode()]}
        copy = object.__new__(type(domain_event))
        object.__setattr__(copy, "__dict__", sealed)
        return super().to_stored_event(copy)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        fields = self.personal_fields(stored_event.topic)
        if fields:
            self._open(event, type(event).__qualname__, fields)
        return event

    def to_sealed_event(self, stored_event: StoredEvent) -> Any:
        """The event with its personal fields left sealed (for the Kafka events topic)."""
        return super().to_domain_event(stored_event)

    def _open(self, event: Any, name: str, fields: tuple[str, ...]) -> None:
        self.open_fields(event.__dict__, name, fields)

    def open_fields(self, state: dict[str, Any], name: str, fields: tuple[str, ...],
                    ciphers: dict[bytes, AESGCM] | None = None) -> None:
        """Open the sealed fields of one event's state in place (erased ones read as erased);
        `projections.replay` calls this on the states it decodes itself, with `ciphers`, its
        cache of a cipher per key (made once, not per field; the key is still looked up here
        each time, so an erased owner's fields read as erased at once)."""
        for field in fields:
            value = state.get(field)
            if not is_sealed(value):
                continue  # written before sealing existed: it stays as it was written
            owner, kind, data = value[SEALED]
            key = self.keys.key(owner) if self.keys is not None else None
            if key is None:
                state[field] = erased_value(kind)
                continue
            raw = base64.b64decode(data)
            if ciphers is None:
                cipher = AESGCM(key)
            else:
                cipher = ciphers.get(key)
                if cipher is None:
                    cipher = ciphers[key] = AESGCM(key)
            state[field] = orjson.loads(cipher.decrypt(raw[:12], raw[12:], _aad(owner, name, field)))
