"""External libraries: folders of files indexed in place (never copied, never deleted).

`Library` is a registered folder and the record of its scans. `LibraryFile` is one file of a
library, keyed by its path relative to the library (a `uuid5` id, so two scans cannot index the
same file twice): which asset it is, the size, modification time and hash it had when last seen,
and whether it is offline (vanished from disk).
"""

from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidInput, NotFound
from domain.ids import NAMESPACE
from domain.text import check_text

SCAN_QUEUE = "scan_library"
MAX_EXCLUSION_PATTERNS = 100


def library_id_to_uuid(library_id: int) -> UUID:
    return uuid5(NAMESPACE, f"library:{library_id}")


def library_file_id(library_id: int, relative_path: str) -> UUID:
    return uuid5(NAMESPACE, f"library-file:{library_id}:{relative_path}")


def repository_of(library_id: int) -> str:
    """The repository id of a library's assets: their originals are the library's files."""
    return f"library:{library_id}"


def library_of(repository_id: str) -> int | None:
    """The library id of a library repository id, else None."""
    prefix, _, rest = repository_id.partition(":")
    return int(rest) if prefix == "library" and rest.isdigit() else None


def check_library_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name must be a non-empty string", "name")
    return check_text(name, "name", 255, name=True).strip()


def check_exclusion_patterns(patterns: Any) -> list[str]:
    if patterns is None:
        return []
    if not isinstance(patterns, list) or len(patterns) > MAX_EXCLUSION_PATTERNS:
        raise InvalidInput(f"exclusion_patterns must be a list of at most {MAX_EXCLUSION_PATTERNS} globs",
                           "exclusion_patterns")
    out = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip() or len(pattern) > 500 or "\x00" in pattern:
            raise InvalidInput(f"exclusion pattern {pattern!r} is not a glob", "exclusion_patterns")
        fnmatch.translate(pattern)  # a pattern the glob compiler cannot read fails here
        out.append(pattern.strip())
    return out


class Library(Aggregate):
    """A folder inside one of the configured library roots, whose files become assets of its
    owner in place. `tasks` holds its scan job, as an asset holds its processing jobs, so the job
    commands (fail, rescue) treat both alike."""

    @staticmethod
    def create_id(library_id: int) -> UUID:
        return library_id_to_uuid(library_id)

    @event("Created")
    def __init__(self, library_id: int, name: str, owner_id: int, path: str,
                 exclusion_patterns: list[str], watch: bool, created_by: int, created_at: datetime) -> None:
        """An admin (`created_by`) registered `path` (resolved, inside a configured root) as a
        library whose files become `owner_id`'s assets."""
        self.library_id = library_id
        self.name = name
        self.owner_id = owner_id
        self.path = path
        self.exclusion_patterns = list(exclusion_patterns)
        self.watch = watch
        self.is_deleted = False
        self.tasks: dict[str, dict[str, Any]] = {}

    def check_not_deleted(self) -> None:
        if self.is_deleted:
            raise NotFound(f"library {self.library_id} not found")

    def delete(self, by: int, at: datetime) -> None:
        self.check_not_deleted()
        self._delete(by=by, at=at)

    @event("Deleted")
    def _delete(self, by: int, at: datetime) -> None:
        """The library was removed by `by`: its assets leave the catalog; its files stay on disk."""
        self.is_deleted = True

    @event("ScanStateChanged")
    def record_task(self, queue: str, job_id: int, state: str) -> None:
        """The library's scan job is now in `state`."""
        self.tasks[queue] = {"job_id": job_id, "state": state}

    @event("ScanProgressed")
    def record_scan_progress(self, job_id: int, seen: int, indexed: int, changed: int, offline: int,
                             returned: int, skipped: int, finished: bool, at: datetime) -> None:
        """Counts of a scan so far (a batch was committed), or at its end when `finished`."""


class LibraryFile(Aggregate):
    """One file of a library, and the asset that it is."""

    @staticmethod
    def create_id(library_id: int, relative_path: str) -> UUID:
        return library_file_id(library_id, relative_path)

    @event("Indexed")
    def __init__(self, library_id: int, relative_path: str, asset_id: str, size: int, mtime_ns: int,
                 content_hash: str) -> None:
        """A file found by a scan became the asset `asset_id`, in place."""
        self.library_id = library_id
        self.relative_path = relative_path
        self.asset_id = asset_id
        self.size = size
        self.mtime_ns = mtime_ns
        self.content_hash = content_hash
        self.is_offline = False
        self.is_removed = False

    @event("Changed")
    def record_change(self, size: int, mtime_ns: int, content_hash: str) -> None:
        """The file's size or time changed on disk (and, when `content_hash` differs, its content)."""
        self.size = size
        self.mtime_ns = mtime_ns
        self.content_hash = content_hash

    @event("WentOffline")
    def go_offline(self, at: datetime) -> None:
        """The file vanished from disk; its asset stays, marked offline, until it returns."""
        self.is_offline = True

    @event("CameBack")
    def come_back(self, at: datetime) -> None:
        """A vanished file is on disk again."""
        self.is_offline = False

    @event("Removed")
    def remove(self, at: datetime) -> None:
        """Its library was deleted: the file is no longer indexed (and stays on disk)."""
        self.is_removed = True
