"""The purge ledger: assets purged from the trash whose files may still be on disk.

The trash listing itself is the catalog's deleted rows (`Catalog.trash`); this read model holds
what a purge must still do after its event: each `Asset.Purged` names the asset's original and
its derived files, and stays pending until `Asset.FilesRemoved`. The sweeper
(`processors.purge`) finishes the pending ones, so a purge cut short by a crash leaves no file
without an owner once the server runs again.
"""

from __future__ import annotations

from typing import Any

from infra.database import Database, Row, Transaction
from projections.base import Projection, handles, rows_in, ts, upsert

PURGE_COLUMNS = ["asset_id", "owner_id", "repository_id", "storage_path", "content_hash",
                 "file_size", "purged_at", "files_removed", "bytes_freed"]


class TrashProjection(Projection):
    name = "trash"
    tables = ("purged_assets",)

    def create_tables(self, tx: Transaction) -> None:
        table = self.t("purged_assets")
        tx.execute(
            f"""CREATE TABLE {table} (
                asset_id TEXT PRIMARY KEY,
                owner_id BIGINT NOT NULL,
                repository_id TEXT NOT NULL,
                storage_path TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                file_size BIGINT NOT NULL,
                purged_at TEXT NOT NULL,
                files_removed BIGINT NOT NULL DEFAULT 0,
                bytes_freed BIGINT NOT NULL DEFAULT 0
            )"""
        )
        tx.execute(f"CREATE INDEX {self.index_name(table, 'pending')} ON {table} (files_removed, purged_at)")

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        table = self.t("purged_assets")
        return {r["asset_id"]: r for r in rows_in(tx, f"SELECT {', '.join(PURGE_COLUMNS)} FROM {table}",
                                                  "asset_id", keys)}

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        upsert(tx, self.t("purged_assets"), PURGE_COLUMNS, "asset_id",
               [tuple(s[c] for c in PURGE_COLUMNS) for _, s in sorted(states.items())])

    @handles("Asset.Purged")
    def purged(self, state: Row | None, e: Any) -> Row:
        return {"asset_id": str(e.originator_id), "owner_id": e.owner_id,
                "repository_id": e.repository_id, "storage_path": e.storage_path,
                "content_hash": e.content_hash, "file_size": e.file_size, "purged_at": ts(e.at),
                "files_removed": 0, "bytes_freed": 0}

    @handles("Asset.FilesRemoved")
    def files_removed(self, state: Row | None, e: Any) -> Row | None:
        if state is not None:
            state["files_removed"] = 1
            state["bytes_freed"] = e.bytes_freed
        return state


class PurgeLedger:
    """Queries over the purge ledger."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def pending(self, limit: int = 500) -> list[Row]:
        """Purged assets whose files were not (known to be) removed yet, oldest purge first."""
        return self.db.query(
            f"SELECT {', '.join(PURGE_COLUMNS)} FROM purged_assets WHERE files_removed = 0 "
            "ORDER BY purged_at, asset_id LIMIT ?", (limit,))

    def get(self, asset_id: str) -> Row | None:
        return self.db.query_one(
            f"SELECT {', '.join(PURGE_COLUMNS)} FROM purged_assets WHERE asset_id = ?", (asset_id,))
