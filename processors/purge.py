"""The purge's file work, and the loop that purges expired trash and finishes cut-short purges.

A purge is two steps, in this order:

1. the `Asset.Purged` event (with the content index released when it named the asset): from
   then on no read model has the asset, so nothing can point at a file that goes away;
2. the files leave the disk: the asset's derived files, and its original unless another asset
   still references the same file (same owner, same content: one content-addressed path); then
   `Asset.FilesRemoved` records it.

A crash between the two leaves a pending entry in the purge ledger (`projections.trash`); the
sweeper finishes it when the server runs again. Uploads hold the same per-file lock while they
keep a file and record its asset (`Storage.file_lock`), so a purge never removes a file that an
upload in this process is about to reference; against another process, the purge moves the file
to a tombstone before its last look, and the upload checks its file after recording its asset
and puts it back from its retained staged copy (`Storage.ensure_kept`).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

from commands.trash import PurgedFiles
from domain.errors import NotFound
from infra.background import Background
from infra.leadership import Leadership
from processors.worker import derived_dir_for
from projections.base import ts
from projections.trash import PurgeLedger

log = logging.getLogger("darkroom.purge")


@dataclass(frozen=True)
class Emptied:
    purged: int
    bytes_freed: int


def _tree_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


class Purger:
    def __init__(self, services: Any) -> None:
        self.services = services
        self.ledger = PurgeLedger(services.db)

    def _original_referenced(self, files: PurgedFiles) -> bool:
        """Does another asset still reference the purged asset's original file?"""
        services = self.services
        others = [a for a in services.catalog.references(files.repository_id, files.storage_path)
                  if a != files.asset_id]
        if others:
            return True
        # An upload just recorded (the catalog may not have it yet) is named by the content index.
        holder = services.app.content_holder(files.owner_id, files.content_hash)
        if holder is None or str(holder) == files.asset_id:
            return False
        try:
            asset = services.app.load(holder, "asset")
        except NotFound:
            return False
        return (asset.repository_id, asset.storage_path) == (files.repository_id, files.storage_path) \
            and not asset.is_purged

    def remove_files(self, files: PurgedFiles) -> int:
        """Step 2 of a purge: remove the files, record it; answers the bytes freed. Idempotent."""
        services = self.services
        storage = services.storage
        freed = 0
        derived = derived_dir_for(services.settings.data_dir / "derived", files.asset_id)
        if derived.exists():
            freed += _tree_size(derived)
            shutil.rmtree(derived, ignore_errors=True)
        original_removed = False
        # An external library's file is the user's: Darkroom deletes only files it wrote.
        if storage.writes_to(files.repository_id):
            with storage.file_lock(files.repository_id, files.storage_path):
                path = storage.path_of(files.repository_id, files.storage_path)
                tomb = storage.tombstone(files.repository_id, files.storage_path)
                if not self._original_referenced(files):
                    # Move the file away first, then decide: an upload of the same content in another
                    # process either recorded its asset before the second look (the file goes back)
                    # or finds its file gone after recording it and puts it back (Storage.ensure_kept).
                    try:
                        os.replace(path, tomb)
                    except FileNotFoundError:
                        pass
                    if self._original_referenced(files):
                        self._put_back(tomb, path)
                    else:
                        try:
                            freed += tomb.stat().st_size
                            tomb.unlink()
                        except FileNotFoundError:
                            pass
                        original_removed = True
                else:
                    self._put_back(tomb, path)  # a tombstone left by a crash, of a file still in use
        position = services.app.record_files_removed(UUID(files.asset_id), freed, original_removed)
        services.wake()
        services.wait_for(position)
        return freed

    @staticmethod
    def _put_back(tomb: Path, path: Path) -> None:
        """The file is in use after all: back in place, unless an upload put it there again."""
        if tomb.exists():
            if path.exists():
                tomb.unlink(missing_ok=True)
            else:
                os.replace(tomb, path)

    def purge(self, user_id: int | None, asset_id: UUID) -> int:
        """Purge one trashed asset (both steps); answers the bytes freed."""
        files, position = self.services.app.purge_asset(user_id, asset_id)
        self.services.wait_for(position)
        return self.remove_files(files)

    def empty(self, user_id: int, asset_ids: list[UUID]) -> Emptied:
        """`POST /trash/empty`: purge these (already checked) trashed assets of the user."""
        freed = sum(self.purge(user_id, asset_id) for asset_id in asset_ids)
        return Emptied(len(asset_ids), freed)

    def finish_pending(self) -> int:
        """Remove the files of purges that a crash (or an outage) cut short."""
        done = 0
        for row in self.ledger.pending():
            self.remove_files(PurgedFiles(row["asset_id"], int(row["owner_id"]), row["repository_id"],
                                          row["storage_path"], row["content_hash"], int(row["file_size"])))
            done += 1
        return done

    def purge_expired(self, now: datetime | None = None) -> int:
        """Purge every asset that has been in the trash for `trash_days` or more."""
        now = now or datetime.now(timezone.utc)
        cutoff = ts(now - timedelta(days=self.services.settings.trash_days))
        done = 0
        for asset_id in self.services.catalog.trashed_ids(deleted_before=cutoff):
            try:
                self.purge(None, UUID(asset_id))
            except NotFound:
                continue  # purged meanwhile
            except Exception as exc:  # restored meanwhile (409), or an outage: next round
                log.info("trash: asset %s not purged now: %s", asset_id, exc)
                continue
            done += 1
        return done


class TrashSweeper(Background):
    """Purges expired trash and finishes cut-short purges, every `trash_sweep_seconds`; the first
    round runs at start. One replica at a time does it."""

    def __init__(self, services: Any) -> None:
        super().__init__("trash-sweeper")
        self.services = services
        self.purger = Purger(services)
        self.interval = services.settings.trash_sweep_seconds
        self.leadership = Leadership(services.settings, "trash-sweeper")
        self.last_error: str | None = None

    def sweep(self) -> tuple[int, int]:
        for runner in self.services.runners.values():
            runner.catch_up()
        return self.purger.finish_pending(), self.purger.purge_expired()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.leadership.hold():
                try:
                    self.sweep()
                    self.last_error = None
                except Exception as exc:  # the database away: try again next round
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("trash sweeper: %s", self.last_error)
            self._pause(self.interval)
