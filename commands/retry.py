"""Optimistic concurrency: retry a command whose save lost a race on an aggregate version."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from eventsourcing.persistence import ConnectionUnavailableError, IntegrityError, OperationalError

from domain.errors import Conflict, Unavailable

T = TypeVar("T")

# Errors that mean "someone else wrote first" (or held the lock): reload and try again.
CONFLICTS: tuple[type[BaseException], ...] = (IntegrityError, OperationalError, sqlite3.OperationalError)
LOCKS: tuple[type[BaseException], ...] = (OperationalError, sqlite3.OperationalError)
# An OperationalError that took this long is the store's lock timeout (SQLite waits 30 s,
# PostgreSQL 10 s), not a quick busy answer: the store is jammed, and retrying it 50 times would
# hold the request for half an hour. It answers 503 at once instead.
LOCK_TIMEOUT_SECONDS = 1.0


def retry_on_conflict(command: Callable[[], T], attempts: int = 50) -> T:
    """Run `command` (load, decide, save) again while its save conflicts.

    For commutative commands (like, rating, adding to an album): whoever loses a race reloads the
    aggregate and applies its change on top, so no update is lost. After `attempts`, 409.
    """
    delay = 0.002
    for _ in range(attempts):
        started = time.monotonic()
        try:
            return command()
        except ConnectionUnavailableError:
            raise  # an outage is not a conflict: answer 503, do not spin
        except CONFLICTS as exc:
            if isinstance(exc, LOCKS) and time.monotonic() - started >= LOCK_TIMEOUT_SECONDS:
                raise Unavailable("the event store did not answer in time (locked by other writers, or "
                                  "unreachable); retry shortly", "event store") from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 1.5, 0.1)
    raise Conflict("too many concurrent changes to the same object; try again")


def once_or_conflict(command: Callable[[], T]) -> T:
    """Run a non-commutative command once; a concurrent change makes it a 409."""
    try:
        return command()
    except IntegrityError:
        raise Conflict("the object was changed concurrently; reload and try again") from None
