"""Scanning external libraries: the `scan_library` queue's consumer.

A scan walks the library (or the sub-folders the watcher names), compares each file's size and
modification time with what the read model saw, and records the differences in batches: new
media files become assets in place (hashed, never copied), changed ones are hashed again (a new
hash reprocesses the asset), vanished ones go offline, returned ones come back. Each batch is
committed with the scan's counts, so progress shows while it runs, and a scan that dies resumes
where it was: its retry finds the committed files unchanged and walks past them.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import weakref
from pathlib import Path
from typing import Any

from commands.libraries import ChangedFile, NewFile, ScanTicket
from domain.library import SCAN_QUEUE
from infra.background import Background
from infra.library_fs import WalkStats, glob_regex, resolve_in_library, walk
from infra.media_types import sniff_file
from infra.storage import hash_file
from projections.libraries import Libraries

log = logging.getLogger("darkroom.libraries")
BATCH = 200
# Only names like these are opened to be sniffed: a library also holds sidecars, databases and
# text, and sniffing those on every rescan would cost a read each time.
MEDIA_EXTENSIONS = frozenset(
    [".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif", ".bmp", ".jxl", ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".rw2", ".orf", ".pef", ".srw", ".x3f", ".3fr", ".erf", ".kdc", ".mrw", ".raw", ".rwl", ".iiq", ".mp4", ".m4v", ".mov", ".qt", ".mkv", ".webm", ".avi", ".wmv", ".mpg", ".mpeg", ".mts", ".m2ts", ".ts", ".3gp", ".3g2", ".flv", ".ogv", ".mp3", ".m4a", ".aac", ".flac", ".wav", ".ogg", ".oga", ".opus", ".wma", ".aif", ".aiff", ".alac", ".ape", ".wv", ".pdf"]
)


class _OutOfTime(Exception):
    """The scan used its share of the job timeout: continue in a new job."""


class Scan:
    """One run of one scan job."""

    def __init__(self, services: Any, ticket: ScanTicket) -> None:
        self.services = services
        self.app = services.app
        self.ticket = ticket
        self.folder = Path(ticket.path)
        self.counts = {"indexed": 0, "changed": 0, "offline": 0, "returned": 0, "skipped": 0}
        self.new: list[NewFile] = []
        self.changed: list[ChangedFile] = []
        self.returned: list[str] = []
        self.stats = WalkStats()
        self.continued = False
        # Half the job timeout: the rescuer fails a job still running past the timeout.
        self.deadline = time.monotonic() + services.settings.job_timeout_seconds / 2

    def run(self) -> dict[str, int]:
        """Scan; the counts. A scan that nears the job timeout stops at a batch boundary,
        completes, and queues its continuation (which walks past what is committed), so a big
        library is never mistaken for a lost worker's job; only a scan that walked everything
        marks what it did not see offline."""
        try:
            return self._run()
        except _OutOfTime:
            self._flush(True)
            self.continued = True
            self.app.queue_library_scan(self.ticket.library_id, self.ticket.under)
            return self._counts()

    def _run(self) -> dict[str, int]:
        libraries = Libraries(self.services.db)
        excluded = glob_regex(self.ticket.exclusion_patterns)
        for under in self.ticket.under or [""]:
            known = known_files(libraries, self.ticket.library_id) if not under else \
                libraries.files(self.ticket.library_id, under)
            if under:  # a file directly named by the watcher is under its own parent folder
                start = self.folder / under
                if not start.is_dir():
                    under = ""
                    known = libraries.files(self.ticket.library_id)
            pending = 0
            for relative, size, mtime_ns, seen in walk(self.folder, excluded, self.stats, under, known):
                if seen is None:
                    if os.path.splitext(relative)[1].lower() not in MEDIA_EXTENSIONS:
                        continue
                    self._new(relative, size, mtime_ns)
                elif seen[0] != size or seen[1] != mtime_ns:
                    self._changed(seen[3], relative, size, mtime_ns)
                else:
                    self.returned.append(seen[3])  # offline, and back unchanged
                pending += 1
                if pending >= BATCH:
                    self._flush(False)
                    pending = 0
                    if time.monotonic() > self.deadline:
                        raise _OutOfTime
            # What was indexed here and is not on disk (or now excluded) went offline.
            vanished = [v[3] for v in known.values() if not v[2]]
            self._flush(False)
            for i in range(0, len(vanished), BATCH):
                self.app.set_library_files_presence(vanished[i:i + BATCH], offline=True)
                self.counts["offline"] += len(vanished[i:i + BATCH])
        self._flush(True)
        return self._counts()

    def _counts(self) -> dict[str, int]:
        return {**self.counts, "seen": self.stats.seen, "skipped": self.counts["skipped"] + self.stats.skipped}

    def _new(self, relative_path: str, size: int, mtime_ns: int) -> None:
        path = resolve_in_library(self.folder, relative_path)
        try:
            found = sniff_file(str(path), relative_path) if path is not None else None
            if found is None:
                self.counts["skipped"] += 1
                return
            content_hash = hash_file(path)  # type: ignore[arg-type]
        except OSError:
            self.counts["skipped"] += 1
            return
        self.new.append(NewFile(relative_path, size, mtime_ns, content_hash, found.mime_type,
                                found.asset_type.value))

    def _changed(self, file_id: str, relative_path: str, size: int, mtime_ns: int) -> None:
        path = resolve_in_library(self.folder, relative_path)
        try:
            found = sniff_file(str(path), relative_path) if path is not None else None
            content_hash = hash_file(path) if path is not None else None
        except OSError:
            self.counts["skipped"] += 1
            return
        if found is None or content_hash is None:
            self.counts["skipped"] += 1
            return
        self.changed.append(ChangedFile(file_id, size, mtime_ns, content_hash, found.mime_type))

    def _flush(self, finished: bool) -> None:
        if self.new:
            self.app.index_library_files(self.ticket, self.new)
            self.counts["indexed"] += len(self.new)
        if self.changed:
            self.app.change_library_files(self.changed)
            self.counts["changed"] += len(self.changed)
        if self.returned:
            self.app.set_library_files_presence(self.returned, offline=False)
            self.counts["returned"] += len(self.returned)
        touched = bool(self.new or self.changed or self.returned)
        self.new, self.changed, self.returned = [], [], []
        if touched or finished:
            self.app.record_scan_progress(self.ticket, self._counts(), finished)
            self.services.wake()


# (database, library id) -> (read model fingerprint, files): what the last whole scan read,
# reused while the fingerprint holds (an unchanged rescan then reads one aggregate, not every
# file's row). The database is held weakly and checked, so a recycled object id never matches.
_KNOWN: dict[tuple[int, int], tuple[weakref.ref[Any], tuple[int, int], dict[str, tuple[int, int, int, str]]]] = {}


def known_files(libraries: Libraries, library_id: int) -> dict[str, tuple[int, int, int, str]]:
    """A fresh copy of what the read model knows of a library's files (the walk pops from it)."""
    key = (id(libraries.db), library_id)
    fingerprint = libraries.fingerprint(library_id)
    cached = _KNOWN.get(key)
    if cached is None or cached[0]() is not libraries.db or cached[1] != fingerprint:
        files = libraries.files(library_id)
        if libraries.fingerprint(library_id) != fingerprint:
            return files  # changed while read: use it once, cache nothing
        cached = _KNOWN[key] = (weakref.ref(libraries.db), fingerprint, files)
    return dict(cached[2])


def run_scan(services: Any, job_id: int, worker_id: str) -> str | None:
    """Claim and run one scan job; its final state for this attempt, or None if not ours."""
    ticket = services.app.start_library_scan(job_id, worker_id)
    if ticket is None:
        return None
    try:
        counts = Scan(services, ticket).run()
    except Exception as exc:  # the attempt fails (and is retried, resuming); the loop goes on
        log.exception("scan job %s of library %s failed", job_id, ticket.library_id)
        return services.app.fail_job(job_id, ticket.attempt, f"{type(exc).__name__}: {exc}") or "stale"
    finally:
        services.wake()
    log.info("scan job %s of library %s: %s", job_id, ticket.library_id, counts)
    return "completed"


class LibraryScanner(Background):
    """Consumes `scan_library` from the bus, one scan at a time (a scan is disk-bound)."""

    def __init__(self, services: Any, bus: Any) -> None:
        super().__init__("library-scanner", join_timeout=30)
        self.services = services
        self.bus = bus
        # On Kafka, the bus's client id: the scheduler tells a live worker by its consumers'
        # client ids, which start with it.
        self.worker_id = getattr(bus, "client_id", None) or f"library-scanner:{socket.gethostname()}:{os.getpid()}"

    def _run(self) -> None:
        while not self._stop.is_set():
            message = None
            try:
                message = self.bus.consume([SCAN_QUEUE], timeout=0.5)
                if message is None:
                    continue
                run_scan(self.services, message.job_id, self.worker_id)
                self.bus.ack(message)
            except Exception:
                log.exception("library scanner loop error")
                if message is not None:
                    self.bus.retry_later(message, 5.0)
                self._stop.wait(1.0)
