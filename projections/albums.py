"""Album membership: albums, and which assets they hold in which position."""

from __future__ import annotations

from typing import Any

from infra.database import Database, Row, Transaction
from projections.base import Projection, chunks, rows_in, handles, ts, upsert
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

    # State per album: its row's columns plus "members", the asset ids in position order.

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        albums, members = self.t("albums"), self.t("album_assets")
        states: dict[str, Any] = {}
        by_id: dict[int, dict[str, Any]] = {}
        for part in chunks(sorted(keys)):
            marks = ", ".join("?" * len(part))
            for row in tx.fetchall(
                f"SELECT aggregate_id, {ALBUM_COLUMNS}, is_deleted, version FROM {albums} "
                f"WHERE aggregate_id IN ({marks})",
                part,
            ):
                row["members"] = []
                states[row["aggregate_id"]] = row
                by_id[int(row["album_id"])] = row
        for m in rows_in(tx, f"SELECT album_id, asset_id FROM {members}", "album_id", by_id,
                         order_by="album_id, position"):
            by_id[int(m["album_id"])]["members"].append(m["asset_id"])
        return states

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        albums, members = self.t("albums"), self.t("album_assets")
        columns = ["aggregate_id", *ALBUM_COLUMNS.split(", "), "is_deleted", "version"]
        ordered = [states[k] for k in sorted(states)]
        upsert(tx, albums, columns, "aggregate_id", [tuple(s[c] for c in columns) for s in ordered])
        # Membership is rewritten per touched album: positions are always exactly 0..n-1.
        tx.executemany(f"DELETE FROM {members} WHERE album_id = ?", [(s["album_id"],) for s in ordered])
        tx.executemany(
            f"INSERT INTO {members} (album_id, asset_id, position) VALUES (?, ?, ?)",
            [(s["album_id"], asset_id, i) for s in ordered for i, asset_id in enumerate(s["members"])],
        )

    @handles("Album.Created")
    def created(self, state: Any, e: Any) -> dict[str, Any]:
        return {
            "aggregate_id": str(e.originator_id), "album_id": e.album_id, "user_id": e.user_id,
            "album_name": e.album_name, "description": e.description,
            "cover_asset_id": e.cover_asset_id, "created_at": ts(e.created_at),
            "updated_at": ts(e.created_at), "is_deleted": 0, "version": e.originator_version,
            "members": [],
        }

    @staticmethod
    def _stamp(state: Any, e: Any) -> Any:
        if state is not None:
            state["updated_at"] = ts(e.at)
            state["version"] = e.originator_version
        return state

    @handles("Album.Updated")
    def updated(self, state: Any, e: Any) -> Any:
        if state is not None:
            for column in ("album_name", "description", "cover_asset_id"):
                if column in e.changes:
                    state[column] = e.changes[column]
        return self._stamp(state, e)

    @handles("Album.Deleted")
    def deleted(self, state: Any, e: Any) -> Any:
        if state is not None:
            state["is_deleted"] = 1
            state["members"] = []
        return self._stamp(state, e)

    @handles("Album.AssetAdded")
    def asset_added(self, state: Any, e: Any) -> Any:
        if state is not None:
            state["members"].insert(e.position, e.asset_id)
        return self._stamp(state, e)

    @handles("Album.AssetRemoved")
    def asset_removed(self, state: Any, e: Any) -> Any:
        if state is not None and e.asset_id in state["members"]:
            state["members"].remove(e.asset_id)
        return self._stamp(state, e)

    @handles("Album.AssetMoved")
    def asset_moved(self, state: Any, e: Any) -> Any:
        if state is not None and e.asset_id in state["members"]:
            state["members"].remove(e.asset_id)
            state["members"].insert(e.position, e.asset_id)
        return self._stamp(state, e)


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
