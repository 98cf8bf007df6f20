"""External library commands: register and delete a library, queue and run its scans, and record
what a scan found (new files become assets in place, changed ones are reprocessed, vanished ones
go offline and come back).

A scan job is a `Job` like a processing job, on the queue `scan_library`, whose "asset" is the
`Library`: the library records its scan job's state as an asset records its tasks, so the
existing fail and rescue commands handle scan jobs too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from commands.retry import retry_on_conflict
from domain.asset import Asset, tasks_for
from domain.errors import InvalidInput
from domain.ids import user_id_to_uuid
from domain.job import Job
from domain.library import (
    SCAN_QUEUE,
    Library,
    LibraryFile,
    check_exclusion_patterns,
    check_library_name,
    repository_of,
)

if TYPE_CHECKING:
    from commands.application import Darkroom


@dataclass(frozen=True)
class ScanTicket:
    """A claimed scan job: what the scanner needs."""

    job_id: int
    attempt: int
    library_id: int
    owner_id: int
    path: str
    exclusion_patterns: list[str]
    under: list[str]  # sub-folders to scan (the watcher's); empty = the whole library


@dataclass(frozen=True)
class NewFile:
    relative_path: str
    size: int
    mtime_ns: int
    content_hash: str
    mime_type: str
    asset_type: str


@dataclass(frozen=True)
class ChangedFile:
    file_id: str  # the LibraryFile aggregate id
    size: int
    mtime_ns: int
    content_hash: str
    mime_type: str


class LibraryCommands:
    def create_library(self: Darkroom, admin_id: int, name: str, owner_id: int, path: Path,
                       exclusion_patterns: list[str] | None, watch: bool) -> tuple[int, int]:
        """Register a library (the path already checked against the roots); returns
        (library_id, position)."""
        name = check_library_name(name)
        patterns = check_exclusion_patterns(exclusion_patterns)
        try:
            self.repository.get(user_id_to_uuid(owner_id))
        except AggregateNotFoundError:
            raise InvalidInput(f"owner_id {owner_id} is not a user", "owner_id") from None

        def attempt() -> tuple[int, int]:
            seq = self._sequence("libraries")
            library_id = seq.next_value()
            library = Library(library_id=library_id, name=name, owner_id=owner_id, path=str(path),
                              exclusion_patterns=patterns, watch=watch, created_by=admin_id, created_at=self.now())
            return library_id, self.save_and_position(seq, library)

        return retry_on_conflict(attempt)

    def load_library(self: Darkroom, library_id: int) -> Library:
        library: Library = self.load(Library.create_id(library_id), f"library {library_id}")
        library.check_not_deleted()
        return library

    def delete_library(self: Darkroom, admin_id: int, library_id: int, file_ids: list[str]) -> int:
        """The library and its assets leave the catalog (soft-deleted); no file is touched. The
        caller lists the library's file aggregates from the read model."""

        def attempt() -> int:
            library = self.load_library(library_id)
            library.delete(by=admin_id, at=self.now())
            return self.save_and_position(library)

        position = retry_on_conflict(attempt)
        for start in range(0, len(file_ids), 200):
            position = max(position, self._remove_files(file_ids[start:start + 200]))
        return position

    def _remove_files(self: Darkroom, file_ids: list[str]) -> int:
        def attempt() -> int:
            now, changed = self.now(), []
            for file_id in file_ids:
                record: LibraryFile = self.repository.get(UUID(file_id))
                if record.is_removed:
                    continue
                record.remove(at=now)
                asset: Asset = self.repository.get(UUID(record.asset_id))
                if not asset.is_deleted:
                    asset.delete(now)
                    changed.append(asset)
                changed.append(record)
            return self.save_and_position(*changed)

        return retry_on_conflict(attempt)

    # -- scan jobs -------------------------------------------------------------------------------

    def queue_library_scan(self: Darkroom, library_id: int, under: list[str] | None = None) -> tuple[int, int]:
        """Queue a scan (of the sub-folders `under`, or all); returns (job_id, position). A scan
        not yet started is reused when it covers this one, or widened to cover both."""
        wanted = sorted(set(under or []))

        def attempt() -> tuple[int, int]:
            library = self.load_library(library_id)
            current = library.tasks.get(SCAN_QUEUE)
            superseded: list[Job] = []
            if current is not None:
                pending = self.load_job(current["job_id"])
                if pending is not None and pending.state in ("available", "scheduled"):
                    old = list(pending.args.get("under") or [])
                    if not old or old == wanted:
                        return pending.job_id, 0
                    now_wanted = sorted(set(old) | set(wanted)) if wanted else []
                    pending.cancel(at=self.now())
                    superseded.append(pending)
                    return self._new_scan(library, now_wanted, superseded)
            return self._new_scan(library, wanted, superseded)

        return retry_on_conflict(attempt)

    def _new_scan(self: Darkroom, library: Library, under: list[str], superseded: list[Job]) -> tuple[int, int]:
        now = self.now()
        job = Job(job_id=self.job_ids.next_ids(1)[0], kind=SCAN_QUEUE, queue=SCAN_QUEUE, asset_id=str(library.id),
                  owner_id=library.owner_id, args={"library_id": library.library_id, "under": under},
                  max_attempts=self.job_policy.max_attempts, priority=1, created_at=now, scheduled_at=now)
        library.record_task(queue=SCAN_QUEUE, job_id=job.job_id, state=job.state)
        return job.job_id, self.save_and_position(library, *superseded, job)

    def start_library_scan(self: Darkroom, job_id: int, worker: str) -> ScanTicket | None:
        """Claim a due scan job; None when it is not ours to run (or its library is gone)."""

        def attempt() -> ScanTicket | None:
            job = self.load_job(job_id)
            now = self.now()
            if job is None or job.queue != SCAN_QUEUE or not job.is_due(now):
                return None
            library: Library = self.repository.get(UUID(job.asset_id))
            if library.is_deleted or library.tasks.get(SCAN_QUEUE, {}).get("job_id") != job.job_id:
                job.cancel(at=now)
                self.save(job)
                return None
            job.start(worker=worker, at=now)
            library.record_task(queue=SCAN_QUEUE, job_id=job.job_id, state=job.state)
            self.save(job, library)
            return ScanTicket(job.job_id, job.attempt, library.library_id, library.owner_id, library.path,
                              list(library.exclusion_patterns), list(job.args.get("under") or []))

        return retry_on_conflict(attempt)

    def record_scan_progress(self: Darkroom, ticket: ScanTicket, counts: dict[str, int], finished: bool) -> int:
        """Counts so far; with `finished`, the job completes in the same save."""

        def attempt() -> int:
            library: Library = self.repository.get(Library.create_id(ticket.library_id))
            library.record_scan_progress(job_id=ticket.job_id, finished=finished, at=self.now(), **counts)
            aggregates: list[Any] = [library]
            if finished:
                job = self.load_job(ticket.job_id)
                if job is not None and job.state == "running" and job.attempt == ticket.attempt:
                    job.complete(at=self.now())
                    if library.tasks.get(SCAN_QUEUE, {}).get("job_id") == job.job_id:
                        library.record_task(queue=SCAN_QUEUE, job_id=job.job_id, state=job.state)
                    aggregates.append(job)
            return self.save_and_position(*aggregates)

        return retry_on_conflict(attempt)

    # -- what a scan found -----------------------------------------------------------------------

    def index_library_files(self: Darkroom, ticket: ScanTicket, files: list[NewFile]) -> int:
        """New files become assets of the library's owner, in place (the repository is the
        library, the storage path the file's path in it), each with its processing jobs. A file
        another scan indexed meanwhile is left alone."""

        def attempt() -> int:
            now, aggregates = self.now(), []
            for new in files:
                if self.exists(LibraryFile.create_id(ticket.library_id, new.relative_path)):
                    continue
                asset = Asset(
                    owner_id=ticket.owner_id, original_filename=new.relative_path.rsplit("/", 1)[-1],
                    file_size=new.size, mime_type=new.mime_type, content_hash=new.content_hash,
                    asset_type=new.asset_type, repository_id=repository_of(ticket.library_id),
                    storage_path=new.relative_path, upload_time=now,
                )
                record = LibraryFile(library_id=ticket.library_id, relative_path=new.relative_path,
                                     asset_id=str(asset.id), size=new.size, mtime_ns=new.mtime_ns,
                                     content_hash=new.content_hash)
                jobs = self._new_jobs(asset, tasks_for(new.asset_type, self.enrichment_tasks))
                aggregates += [asset, record, *jobs]
            return self.save_and_position(*aggregates) if aggregates else 0

        return retry_on_conflict(attempt)

    def change_library_files(self: Darkroom, files: list[ChangedFile]) -> int:
        """Files whose size or time changed: a new hash replaces the asset's content and runs
        its processing again (old jobs not yet final are cancelled); the same hash is only noted."""

        def attempt() -> int:
            now, aggregates = self.now(), []
            for changed in files:
                record: LibraryFile = self.repository.get(UUID(changed.file_id))
                content_changed = changed.content_hash != record.content_hash
                record.record_change(size=changed.size, mtime_ns=changed.mtime_ns, content_hash=changed.content_hash)
                if record.is_offline:
                    record.come_back(at=now)
                aggregates.append(record)
                asset: Asset = self.repository.get(UUID(record.asset_id))
                if not content_changed or asset.is_deleted:
                    continue
                asset.replace_content(file_size=changed.size, content_hash=changed.content_hash,
                                      mime_type=changed.mime_type)
                for task in asset.tasks.values():
                    old = self.load_job(task["job_id"])
                    if old is not None and not old.is_final:
                        old.cancel(at=now)
                        aggregates.append(old)
                jobs = self._new_jobs(asset, tasks_for(asset.asset_type, self.enrichment_tasks))
                aggregates += [asset, *jobs]
            return self.save_and_position(*aggregates) if aggregates else 0

        return retry_on_conflict(attempt)

    def set_library_files_presence(self: Darkroom, file_ids: list[str], offline: bool) -> int:
        """Vanished files go offline; files back on disk (unchanged) come back."""

        def attempt() -> int:
            now, aggregates = self.now(), []
            for file_id in file_ids:
                record: LibraryFile = self.repository.get(UUID(file_id))
                if record.is_removed or record.is_offline == offline:
                    continue
                record.go_offline(at=now) if offline else record.come_back(at=now)
                aggregates.append(record)
            return self.save_and_position(*aggregates) if aggregates else 0

        return retry_on_conflict(attempt)

