"""The asset catalog: one row per asset, everything the asset endpoints list and show."""

from __future__ import annotations

import json
from typing import Any

from infra.database import Database, Row, Transaction
from projections.base import Projection, chunks, handles, to_json, ts, upsert

CATALOG_COLUMNS = (
    "asset_id, owner_id, type, original_filename, mime_type, file_size, hash, width, height, "
    "duration, taken_time, upload_time, sort_time, rating, liked, description, repository_id, "
    "storage_path, is_deleted, deleted_at, status, specific_metadata, version"
)
_COLUMN_LIST = CATALOG_COLUMNS.split(", ")


class CatalogProjection(Projection):
    name = "catalog"
    tables = ("catalog_assets",)

    def create_tables(self, tx: Transaction) -> None:
        table = self.t("catalog_assets")
        tx.execute(
            f"""CREATE TABLE {table} (
                asset_id TEXT PRIMARY KEY,
                owner_id BIGINT NOT NULL,
                type TEXT NOT NULL,
                original_filename TEXT NOT NULL,
                mime_type TEXT NOT NULL,
                file_size BIGINT NOT NULL,
                hash TEXT NOT NULL,
                width BIGINT,
                height BIGINT,
                duration DOUBLE PRECISION,
                taken_time TEXT,
                upload_time TEXT NOT NULL,
                sort_time TEXT NOT NULL,
                rating BIGINT NOT NULL DEFAULT 0,
                liked BIGINT NOT NULL DEFAULT 0,
                description TEXT,
                repository_id TEXT NOT NULL,
                storage_path TEXT NOT NULL,
                is_deleted BIGINT NOT NULL DEFAULT 0,
                deleted_at TEXT,
                status TEXT NOT NULL,
                specific_metadata TEXT NOT NULL,
                version BIGINT NOT NULL
            )"""
        )
        tx.execute(
            f"CREATE INDEX {self.index_name(table, 'owner_sort')} "
            f"ON {table} (owner_id, is_deleted, sort_time, asset_id)"
        )
        tx.execute(f"CREATE INDEX {self.index_name(table, 'owner_hash')} ON {table} (owner_id, hash)")

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        table = self.t("catalog_assets")
        states: dict[str, Any] = {}
        for part in chunks(sorted(keys)):
            rows = tx.fetchall(
                f"SELECT {CATALOG_COLUMNS} FROM {table} WHERE asset_id IN ({', '.join('?' * len(part))})",
                part,
            )
            for row in rows:
                row["specific_metadata"] = json.loads(row["specific_metadata"])
                states[row["asset_id"]] = row
        return states

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        upsert(tx, self.t("catalog_assets"), _COLUMN_LIST, "asset_id", [
            tuple(to_json(row[c]) if c == "specific_metadata" else row[c] for c in _COLUMN_LIST)
            for _, row in sorted(states.items())
        ])

    @handles("Asset.Uploaded")
    def uploaded(self, row: Row | None, e: Any) -> Row:
        upload_time = ts(e.upload_time)
        return {
            "asset_id": str(e.originator_id), "owner_id": e.owner_id, "type": e.asset_type,
            "original_filename": e.original_filename, "mime_type": e.mime_type,
            "file_size": e.file_size, "hash": e.content_hash, "width": None, "height": None,
            "duration": None, "taken_time": None, "upload_time": upload_time,
            "sort_time": upload_time, "rating": 0, "liked": 0, "description": None,
            "repository_id": e.repository_id, "storage_path": e.storage_path, "is_deleted": 0,
            "deleted_at": None, "status": to_json({"state": "complete", "tasks": {}}),
            "specific_metadata": {}, "version": e.originator_version,
        }

    @staticmethod
    def _stamp(row: Row | None, e: Any, **changes: Any) -> Row | None:
        if row is None:
            return None
        row.update(changes)
        row["version"] = e.originator_version
        return row

    @handles("Asset.RatingChanged")
    def rating_changed(self, row: Row | None, e: Any) -> Row | None:
        return self._stamp(row, e, rating=e.rating)

    @handles("Asset.LikeChanged")
    def like_changed(self, row: Row | None, e: Any) -> Row | None:
        return self._stamp(row, e, liked=1 if e.liked else 0)

    @handles("Asset.DescriptionChanged")
    def description_changed(self, row: Row | None, e: Any) -> Row | None:
        return self._stamp(row, e, description=e.description)

    @handles("Asset.MetadataUpdated")
    def metadata_updated(self, row: Row | None, e: Any) -> Row | None:
        if row is None:
            return None
        row["specific_metadata"] = {**row["specific_metadata"], **e.changes}
        description = e.changes.get("description", row["description"])
        return self._stamp(row, e, description=description)

    @handles("Asset.Deleted")
    def deleted(self, row: Row | None, e: Any) -> Row | None:
        return self._stamp(row, e, is_deleted=1, deleted_at=ts(e.at))


# -- queries ---------------------------------------------------------------------------------


def asset_from_row(row: Row) -> dict[str, Any]:
    """An `AssetDTO` (API.md) from a catalog row."""
    metadata = json.loads(row["specific_metadata"])
    if row["description"] is not None:
        metadata.setdefault("description", row["description"])
    return {
        "asset_id": row["asset_id"],
        "owner_id": row["owner_id"],
        "type": row["type"],
        "original_filename": row["original_filename"],
        "mime_type": row["mime_type"],
        "file_size": row["file_size"],
        "hash": row["hash"],
        "width": row["width"],
        "height": row["height"],
        "duration": row["duration"],
        "taken_time": row["taken_time"],
        "upload_time": row["upload_time"],
        "rating": row["rating"],
        "liked": bool(row["liked"]),
        "description": row["description"],
        "repository_id": row["repository_id"],
        "storage_path": row["storage_path"],
        "is_deleted": bool(row["is_deleted"]),
        "deleted_at": row["deleted_at"],
        "status": json.loads(row["status"]),
        "specific_metadata": metadata,
    }


class Catalog:
    """Queries over the catalog read model. Every query is scoped to one owner."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, owner_id: int, asset_id: str) -> dict[str, Any] | None:
        row = self.db.query_one(
            f"SELECT {CATALOG_COLUMNS} FROM catalog_assets WHERE asset_id = ? AND owner_id = ?",
            (asset_id, owner_id),
        )
        return asset_from_row(row) if row else None

    def row(self, owner_id: int, asset_id: str) -> Row | None:
        return self.db.query_one(
            f"SELECT {CATALOG_COLUMNS} FROM catalog_assets WHERE asset_id = ? AND owner_id = ?",
            (asset_id, owner_id),
        )

    def list(
        self,
        owner_id: int,
        *,
        types: list[str] | None = None,
        rating: int | None = None,
        liked: bool | None = None,
        limit: int = 20,
        offset: int = 0,
        descending: bool = True,
    ) -> list[dict[str, Any]]:
        where = ["owner_id = ?", "is_deleted = 0"]
        params: list[Any] = [owner_id]
        if types:
            where.append(f"type IN ({', '.join('?' * len(types))})")
            params.extend(types)
        if rating is not None:
            where.append("rating = ?")
            params.append(rating)
        if liked is not None:
            where.append("liked = ?")
            params.append(1 if liked else 0)
        order = "DESC" if descending else "ASC"
        rows = self.db.query(
            f"SELECT {CATALOG_COLUMNS} FROM catalog_assets WHERE {' AND '.join(where)} "
            f"ORDER BY sort_time {order}, asset_id {order} LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [asset_from_row(r) for r in rows]
