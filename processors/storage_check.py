"""Originals on disk held against the event log: the sweeper and `darkroom fsck`.

The log is the truth about which originals exist (every `Asset.Uploaded` names its repository,
path, size and BLAKE3 hash). The sweeper removes what no event names and nothing can still be
writing: staging files and originals older than a grace period, left by a crash or by an upload
whose append failed after its file was kept. `fsck` re-hashes what the log names and reports
missing, changed and orphaned files; it never deletes a file that an event references.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventsourcing.utils import get_topic

from domain.asset import Asset
from infra.background import Background
from infra.storage import hash_file

log = logging.getLogger("darkroom.storage_check")


@dataclass(frozen=True)
class Original:
    """What the log says of one stored original."""

    asset_id: str
    repository_id: str
    storage_path: str
    file_size: int
    content_hash: str


def originals_in_log(app: Any, batch: int = 1000) -> dict[tuple[str, str], Original]:
    """Every original the log names, by (repository id, relative path)."""
    topic = get_topic(Asset.Uploaded)
    found: dict[tuple[str, str], Original] = {}
    position = 0
    while True:
        notifications = app.recorder.select_notifications(position, batch, topics=[topic],
                                                          inclusive_of_start=False)
        for n in notifications:
            position = n.id
            e = app.mapper.to_domain_event(n)
            found[(e.repository_id, e.storage_path)] = Original(
                str(e.originator_id), e.repository_id, e.storage_path, e.file_size, e.content_hash)
        if len(notifications) < batch:
            return found


def _files(root: Path) -> Iterator[Path]:
    for directory, _, names in os.walk(root):
        for name in names:
            yield Path(directory) / name


@dataclass
class FsckReport:
    checked: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.changed or self.orphaned)

    def as_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "missing": self.missing, "changed": self.changed,
                "orphaned": self.orphaned, "clean": self.clean}


def fsck(app: Any, storage: Any, rehash: bool = True) -> FsckReport:
    """Compare the originals on disk with the log: missing (named, absent), changed (size or
    BLAKE3 differ) and orphaned (on disk, named by no event). Reads only; deletes nothing."""
    report = FsckReport()
    named = originals_in_log(app)
    for (repository_id, relative), original in sorted(named.items()):
        report.checked += 1
        entry = {"asset_id": original.asset_id, "repository_id": repository_id, "path": relative}
        root = storage.repositories.get(repository_id)
        path = root / relative if root is not None else None
        if path is None or not path.is_file():
            report.missing.append(entry)
            continue
        size = path.stat().st_size
        if size != original.file_size:
            report.changed.append(entry | {"expected_size": original.file_size, "size": size})
        elif rehash and hash_file(path) != original.content_hash:
            report.changed.append(entry | {"expected_hash": original.content_hash})
    for repository_id, root in storage.repositories.items():
        for path in _files(root / "originals"):
            relative = path.relative_to(root).as_posix()
            if (repository_id, relative) not in named:
                report.orphaned.append(str(path))
    return report


@dataclass
class SweepReport:
    staging_removed: int = 0
    originals_removed: int = 0
    bytes_freed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"staging_removed": self.staging_removed, "originals_removed": self.originals_removed,
                "bytes_freed": self.bytes_freed}


def sweep(app: Any, storage: Any, grace_seconds: float, now: float | None = None) -> SweepReport:
    """Delete staging files and unreferenced originals untouched for `grace_seconds`.

    Candidates are listed first and the log read after, so an original kept and named while the
    sweep runs is seen as referenced; the grace period covers an upload between keeping its file
    and appending its event. A file the log names is never deleted."""
    cutoff = (now if now is not None else time.time()) - grace_seconds
    report = SweepReport()
    candidates: list[tuple[str, str, Path, int]] = []
    for repository_id, root in storage.repositories.items():
        for path in _files(root / "originals"):
            stat = path.stat()
            if stat.st_mtime < cutoff:
                candidates.append((repository_id, path.relative_to(root).as_posix(), path, stat.st_size))
    for path in _files(storage.staging):
        try:
            stat = path.stat()
            if stat.st_mtime < cutoff:
                path.unlink()
                report.staging_removed += 1
                report.bytes_freed += stat.st_size
        except FileNotFoundError:
            continue  # consumed meanwhile
    named = originals_in_log(app)
    for repository_id, relative, path, size in candidates:
        if (repository_id, relative) in named:
            continue
        log.warning("sweeping orphaned original %s (no event names it)", path)
        path.unlink(missing_ok=True)
        report.originals_removed += 1
        report.bytes_freed += size
    return report


class Sweeper(Background):
    """The scheduled storage jobs of the serving process: `sweep` every `interval` seconds, and
    `fsck` (re-hashing every original) every `fsck_interval` seconds (0: never). Their last
    reports are shown to admins by health; fsck only reports."""

    def __init__(self, app: Any, storage: Any, grace_seconds: float, interval: float,
                 fsck_interval: float = 0.0) -> None:
        super().__init__("darkroom-sweeper")
        self.app, self.storage = app, storage
        self.grace_seconds, self.interval, self.fsck_interval = grace_seconds, interval, fsck_interval
        self.last_report: dict[str, int] | None = None
        self.last_fsck: dict[str, Any] | None = None
        self.last_error: str | None = None
        self._next_fsck = time.monotonic() + fsck_interval

    def status(self) -> dict[str, Any]:
        """For health: the last sweep and the last fsck in numbers (paths stay in the log)."""
        out: dict[str, Any] = {"last_sweep": self.last_report}
        if self.last_fsck is not None:
            out["last_fsck"] = {k: (len(v) if isinstance(v, list) else v) for k, v in self.last_fsck.items()}
        if self.last_error:
            out["error"] = self.last_error
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            self._pause(min(self.interval, self.fsck_interval or self.interval))
            if self._stop.is_set():
                return
            try:
                self.last_report = sweep(self.app, self.storage, self.grace_seconds).as_dict()
                if self.fsck_interval and time.monotonic() >= self._next_fsck:
                    self._next_fsck = time.monotonic() + self.fsck_interval
                    report = fsck(self.app, self.storage)
                    self.last_fsck = report.as_dict()
                    if not report.clean:
                        log.error("fsck: %d missing, %d changed, %d orphaned originals: %s",
                                  len(report.missing), len(report.changed), len(report.orphaned), report.as_dict())
                self.last_error = None
            except Exception as exc:  # a database hiccup: try again next round
                log.warning("storage check failed: %s", exc)
                self.last_error = type(exc).__name__
