"""Album membership: albums, and which assets they hold in which position."""

from __future__ import annotations

from typing import Any

from infra.database import Database, Row, Transaction
from projections.base import Projection, handles, ts
from projections.catalog import CATALOG_COLUMNS, asset_from_row

ALBUM_COLUMNS = "album_id, user_id, album_name, description, cover_asset_id, created_at, updated_at"


class AlbumsProjection(Projection):
    name = "albums"
    tables = ("albums", "album_assets")

    def create_tables(self, tx: Transaction) -> None:
        albums, members = self.t("albums"), self.t("album_assets")
        tx.execute(
            f"""CREATE TABLE {albums} (
                album_id BIGINT PRIMARY KEY,
                aggregate_id TEXT NOT NULL UNIQUE,
                user_id BIGINT NOT NULL,
                album_name TEXT NOT NULL,
                description TEXT,
                cover_asset_id TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                is_deleted BIGINT NOT NULL DEFAULT 0,
                version BIGINT NOT NULL
            )"""
        )
        tx.execute(
            f"CREATE INDEX {self.index_name(albums, 'user')} ON {albums} (user_id, is_deleted, album_id)"
        )
        tx.execute(
            f"""CREATE TABLE {members} (
                album_id BIGINT NOT NULL,
                asset_id TEXT NOT NULL,
                position BIGINT NOT NULL,
                PRIMARY KEY (album_id, asset_id)
            )"""
        )
        tx.execute(f"CREATE INDEX {self.index_name(members, 'asset')} ON {members} (asset_id)")

    @handles("Album.Created")
    def created(self, tx: Transaction, e: Any, position: int) -> None:
        tx.execute(
            f"INSERT INTO {self.t('albums')} (aggregate_id, {ALBUM_COLUMNS}, is_deleted, version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
            (str(e.originator_id), e.album_id, e.user_id, e.album_name, e.description,
             e.cover_asset_id, ts(e.created_at), ts(e.created_at), e.originator_version),
        )

    def _touch(self, tx: Transaction, e: Any, extra: str = "", params: tuple[Any, ...] = ()) -> int:
        """Stamp the album row with the event; returns the album's integer id."""
        row = tx.fetchone(
            f"SELECT album_id FROM {self.t('albums')} WHERE aggregate_id = ?", (str(e.originator_id),)
        )
        assert row is not None, f"album event {type(e).__qualname__} before its creation"
        tx.execute(
            f"UPDATE {self.t('albums')} SET updated_at = ?, version = ?{extra} WHERE album_id = ?",
            (ts(e.at), e.originator_version, *params, row["album_id"]),
        )
        return int(row["album_id"])

    @handles("Album.Updated")
    def updated(self, tx: Transaction, e: Any, position: int) -> None:
        columns = [c for c in ("album_name", "description", "cover_asset_id") if c in e.changes]
        extra = "".join(f", {c} = ?" for c in columns)
        self._touch(tx, e, extra, tuple(e.changes[c] for c in columns))

    @handles("Album.Deleted")
    def deleted(self, tx: Transaction, e: Any, position: int) -> None:
        album_id = self._touch(tx, e, ", is_deleted = 1")
        tx.execute(f"DELETE FROM {self.t('album_assets')} WHERE album_id = ?", (album_id,))

    @handles("Album.AssetAdded")
    def asset_added(self, tx: Transaction, e: Any, position: int) -> None:
        album_id = self._touch(tx, e)
        members = self.t("album_assets")
        tx.execute(
            f"UPDATE {members} SET position = position + 1 WHERE album_id = ? AND position >= ?",
            (album_id, e.position),
        )
        tx.execute(
            f"INSERT INTO {members} (album_id, asset_id, position) VALUES (?, ?, ?)",
            (album_id, e.asset_id, e.position),
        )

    @handles("Album.AssetRemoved")
    def asset_removed(self, tx: Transaction, e: Any, position: int) -> None:
        album_id = self._touch(tx, e)
        members = self.t("album_assets")
        row = tx.fetchone(
            f"SELECT position FROM {members} WHERE album_id = ? AND asset_id = ?", (album_id, e.asset_id)
        )
        if row is None:
            return
        tx.execute(f"DELETE FROM {members} WHERE album_id = ? AND asset_id = ?", (album_id, e.asset_id))
        tx.execute(
            f"UPDATE {members} SET position = position - 1 WHERE album_id = ? AND position > ?",
            (album_id, row["position"]),
        )

    @handles("Album.AssetMoved")
    def asset_moved(self, tx: Transaction, e: Any, position: int) -> None:
        album_id = self._touch(tx, e)
        members = self.t("album_assets")
        row = tx.fetchone(
            f"SELECT position FROM {members} WHERE album_id = ? AND asset_id = ?", (album_id, e.asset_id)
        )
        if row is None:
            return
        old, new = int(row["position"]), int(e.position)
        if new < old:
            tx.execute(
                f"UPDATE {members} SET position = position + 1 "
                "WHERE album_id = ? AND position >= ? AND position < ?",
                (album_id, new, old),
            )
        else:
            tx.execute(
                f"UPDATE {members} SET position = position - 1 "
                "WHERE album_id = ? AND position > ? AND position <= ?",
                (album_id, old, new),
            )
        tx.execute(
            f"UPDATE {members} SET position = ? WHERE album_id = ? AND asset_id = ?",
            (new, album_id, e.asset_id),
        )


# -- queries ---------------------------------------------------------------------------------

_ALBUM_SELECT = (
    f"SELECT {', '.join('a.' + c for c in ALBUM_COLUMNS.split(', '))}, "
    "(SELECT COUNT(*) FROM album_assets m JOIN catalog_assets c ON c.asset_id = m.asset_id "
    " WHERE m.album_id = a.album_id AND c.is_deleted = 0) AS asset_count "
    "FROM albums a"
)


def album_from_row(row: Row) -> dict[str, Any]:
    return {
        "album_id": row["album_id"],
        "user_id": row["user_id"],
        "album_name": row["album_name"],
        "description": row["description"],
        "cover_asset_id": row["cover_asset_id"],
        "asset_count": row["asset_count"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


class Albums:
    """Queries over the album read models; every query is scoped to one user."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, user_id: int, album_id: int) -> dict[str, Any] | None:
        row = self.db.query_one(
            f"{_ALBUM_SELECT} WHERE a.album_id = ? AND a.user_id = ? AND a.is_deleted = 0",
            (album_id, user_id),
        )
        return album_from_row(row) if row else None

    def list(self, user_id: int, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        with self.db.reader() as tx:
            rows = tx.fetchall(
                f"{_ALBUM_SELECT} WHERE a.user_id = ? AND a.is_deleted = 0 "
                "ORDER BY a.album_id LIMIT ? OFFSET ?",
                (user_id, limit, offset),
            )
            total = tx.fetchone(
                "SELECT COUNT(*) AS n FROM albums WHERE user_id = ? AND is_deleted = 0", (user_id,)
            )
        return [album_from_row(r) for r in rows], int(total["n"] if total else 0)

    def assets(self, album_id: int) -> list[dict[str, Any]]:
        """Assets of an album in position order (deleted assets are hidden, not removed)."""
        columns = ", ".join("c." + c for c in CATALOG_COLUMNS.split(", "))
        rows = self.db.query(
            f"SELECT {columns}, m.position AS album_position FROM album_assets m "
            "JOIN catalog_assets c ON c.asset_id = m.asset_id "
            "WHERE m.album_id = ? AND c.is_deleted = 0 ORDER BY m.position",
            (album_id,),
        )
        out = []
        for r in rows:
            asset = asset_from_row(r)
            asset["position"] = r["album_position"]
            out.append(asset)
        return out

    def containing(self, user_id: int, asset_id: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            f"{_ALBUM_SELECT} JOIN album_assets m2 ON m2.album_id = a.album_id "
            "WHERE m2.asset_id = ? AND a.user_id = ? AND a.is_deleted = 0 ORDER BY a.album_id",
            (asset_id, user_id),
        )
        return [album_from_row(r) for r in rows]
