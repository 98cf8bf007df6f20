"""Sharing read models: album members with their roles, and public links.

Members are what `projections.access` joins to decide who sees which album and asset. Links are
found by the SHA-256 of their key; the public routes then check the link's aggregate itself for
revocation and expiry, so neither depends on this model's lag.
"""

from __future__ import annotations

import json
from typing import Any

from infra.database import Database, Transaction
from projections.base import Projection, handles, rows_in, ts, upsert


class AlbumMembersProjection(Projection):
    name = "album_members"
    tables = ("album_shares", "album_members")

    def create_tables(self, tx: Transaction) -> None:
        shares, members = self.t("album_shares"), self.t("album_members")
        tx.execute(
            f"""CREATE TABLE {shares} (
                aggregate_id TEXT PRIMARY KEY,
                album_id BIGINT NOT NULL UNIQUE,
                owner_id BIGINT NOT NULL,
                version BIGINT NOT NULL
            )"""
        )
        tx.execute(
            f"""CREATE TABLE {members} (
                album_id BIGINT NOT NULL,
                user_id BIGINT NOT NULL,
                role TEXT NOT NULL,
                PRIMARY KEY (album_id, user_id)
            )"""
        )
        # "Which albums are shared with me" and the access check both start from the user.
        tx.execute(f"CREATE INDEX {self.index_name(members, 'user')} ON {members} (user_id, album_id)")

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        shares, members = self.t("album_shares"), self.t("album_members")
        states: dict[str, Any] = {}
        by_album: dict[int, dict[str, Any]] = {}
        for row in rows_in(tx, f"SELECT aggregate_id, album_id, owner_id, version FROM {shares}",
                           "aggregate_id", keys):
            row["members"] = {}
            states[row["aggregate_id"]] = row
            by_album[int(row["album_id"])] = row
        for m in rows_in(tx, f"SELECT album_id, user_id, role FROM {members}", "album_id", by_album):
            by_album[int(m["album_id"])]["members"][int(m["user_id"])] = m["role"]
        return states

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        shares, members = self.t("album_shares"), self.t("album_members")
        ordered = [states[k] for k in sorted(states)]
        columns = ["aggregate_id", "album_id", "owner_id", "version"]
        upsert(tx, shares, columns, "aggregate_id", [tuple(s[c] for c in columns) for s in ordered])
        tx.executemany(f"DELETE FROM {members} WHERE album_id = ?", [(s["album_id"],) for s in ordered])
        tx.executemany(
            f"INSERT INTO {members} (album_id, user_id, role) VALUES (?, ?, ?)",
            [(s["album_id"], user_id, role) for s in ordered for user_id, role in sorted(s["members"].items())],
        )

    @handles("AlbumSharing.Started")
    def started(self, state: Any, e: Any) -> dict[str, Any]:
        return {"aggregate_id": str(e.originator_id), "album_id": e.album_id, "owner_id": e.owner_id,
                "version": e.originator_version, "members": {}}

    @handles("AlbumSharing.MemberAdded", "AlbumSharing.MemberRoleChanged")
    def member_set(self, state: Any, e: Any) -> Any:
        if state is not None:
            state["members"][int(e.user_id)] = e.role
            state["version"] = e.originator_version
        return state

    @handles("AlbumSharing.MemberRemoved")
    def member_removed(self, state: Any, e: Any) -> Any:
        if state is not None:
            state["members"].pop(int(e.user_id), None)
            state["version"] = e.originator_version
        return state


LINK_COLUMNS = ["aggregate_id", "link_id", "owner_id", "album_id", "asset_ids", "key_hash",
                "has_password", "expires_at", "allow_download", "created_at", "revoked_at", "version"]


class SharedLinksProjection(Projection):
    name = "shared_links"
    tables = ("shared_links",)

    def create_tables(self, tx: Transaction) -> None:
        links = self.t("shared_links")
        tx.execute(
            f"""CREATE TABLE {links} (
                aggregate_id TEXT PRIMARY KEY,
                link_id BIGINT NOT NULL UNIQUE,
                owner_id BIGINT NOT NULL,
                album_id BIGINT,
                asset_ids TEXT NOT NULL,
                key_hash TEXT NOT NULL UNIQUE,
                has_password BIGINT NOT NULL,
                expires_at TEXT,
                allow_download BIGINT NOT NULL,
                created_at TEXT NOT NULL,
                revoked_at TEXT,
                version BIGINT NOT NULL
            )"""
        )
        tx.execute(f"CREATE INDEX {self.index_name(links, 'owner')} ON {links} (owner_id, link_id)")

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        return {row["aggregate_id"]: row for row in rows_in(
            tx, f"SELECT {', '.join(LINK_COLUMNS)} FROM {self.t('shared_links')}", "aggregate_id", keys)}

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        upsert(tx, self.t("shared_links"), LINK_COLUMNS, "aggregate_id",
               [tuple(states[k][c] for c in LINK_COLUMNS) for k in sorted(states)])

    @handles("SharedLink.Created")
    def created(self, state: Any, e: Any) -> dict[str, Any]:
        return {
            "aggregate_id": str(e.originator_id), "link_id": e.link_id, "owner_id": e.owner_id,
            "album_id": e.album_id, "asset_ids": json.dumps(list(e.asset_ids)), "key_hash": e.key_hash,
            "has_password": 1 if e.password_hash else 0, "expires_at": ts(e.expires_at),
            "allow_download": 1 if e.allow_download else 0, "created_at": ts(e.created_at),
            "revoked_at": None, "version": e.originator_version,
        }

    @handles("SharedLink.Revoked")
    def revoked(self, state: Any, e: Any) -> Any:
        if state is not None:
            state["revoked_at"] = ts(e.at)
            state["version"] = e.originator_version
        return state


def link_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """What GET /shared-links shows of a link (never its key: only a hash of it is stored)."""
    return {
        "link_id": row["link_id"], "album_id": row["album_id"], "asset_ids": json.loads(row["asset_ids"]),
        "expires_at": row["expires_at"], "allow_download": bool(row["allow_download"]),
        "has_password": bool(row["has_password"]), "created_at": row["created_at"],
    }


class SharedLinks:
    """Queries over the links read model."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def by_key_hash(self, key_hash: str) -> dict[str, Any] | None:
        return self.db.query_one(
            f"SELECT {', '.join(LINK_COLUMNS)} FROM shared_links WHERE key_hash = ? AND revoked_at IS NULL",
            (key_hash,),
        )

    def list(self, owner_id: int, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """The owner's links that are not revoked (expired ones too: their owner may revoke them)."""
        with self.db.reader() as tx:
            rows = tx.fetchall(
                f"SELECT {', '.join(LINK_COLUMNS)} FROM shared_links WHERE owner_id = ? AND revoked_at IS NULL "
                "ORDER BY link_id LIMIT ? OFFSET ?", (owner_id, limit, offset))
            total = tx.fetchone("SELECT COUNT(*) AS n FROM shared_links WHERE owner_id = ? AND revoked_at IS NULL",
                                (owner_id,))
        return [link_from_row(r) for r in rows], int(total["n"] if total else 0)

