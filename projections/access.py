"""The one access rule of the read side: what a user may see.

A user sees their own assets (deleted ones too, by id) and the undeleted assets of undeleted
albums shared with them; they see their own albums and the albums they are a member of. Every
asset read by id (detail, thumbnail, original, web versions, the albums of an asset) and every
album read goes through this module, so the rule is written once: `VISIBLE_ASSET` and
`VISIBLE_ALBUM` below.

The tables joined here belong to three projections (catalog, albums, album_members). Each
follows the log on its own; a command's response waits for all of them (read your writes), so a
member removed by a command is refused by the very next read.
"""

from __future__ import annotations

import json
from typing import Any

from domain.library import library_of
from infra.database import Database, Row
from projections.albums import _ALBUM_SELECT, album_from_row
from projections.catalog import CATALOG_COLUMNS, asset_from_row
from projections.queries import AssetFilter, filename_condition, filter_conditions

# Parameters: the user id, three times. `c` is the catalog row. An album's owner also sees what
# its editors put in it.
VISIBLE_ASSET = (
    "(c.owner_id = ? OR (c.is_deleted = 0 AND EXISTS ("
    " SELECT 1 FROM album_assets m JOIN albums sa ON sa.album_id = m.album_id"
    " WHERE m.asset_id = c.asset_id AND sa.is_deleted = 0 AND (sa.user_id = ? OR EXISTS ("
    "  SELECT 1 FROM album_members am WHERE am.album_id = sa.album_id AND am.user_id = ?)))))"
)
# Parameters: the user id, twice. `a` is the albums row.
VISIBLE_ALBUM = (
    "(a.is_deleted = 0 AND (a.user_id = ? OR EXISTS ("
    " SELECT 1 FROM album_members am WHERE am.album_id = a.album_id AND am.user_id = ?)))"
)
_ROLE = ("CASE WHEN a.user_id = ? THEN 'owner' ELSE (SELECT am.role FROM album_members am "
         "WHERE am.album_id = a.album_id AND am.user_id = ?) END AS role")
_CATALOG = ", ".join("c." + c for c in CATALOG_COLUMNS.split(", "))
SCOPES = ("owned", "shared", "all")


def _album(row: Row, user_id: int) -> dict[str, Any]:
    album = album_from_row(row)
    if row["user_id"] != user_id:  # a shared album names its owner and the caller's role
        album["owner_id"] = row["user_id"]
        album["role"] = row["role"]
    return album


def library_part(row: Row) -> dict[str, Any]:
    """`library_id` and `is_offline` for an asset of an external library (nothing otherwise).
    The library comes from the catalog's repository id, so it shows even while the libraries
    read model (another projection) has not caught up with the file yet."""
    library_id = library_of(str(row["repository_id"]))
    if library_id is None:
        return {}
    return {"library_id": library_id, "is_offline": bool(row.get("is_offline"))}


class Access:
    """Reads scoped by the access rule."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- assets ----------------------------------------------------------------------------------

    def asset_row(self, user_id: int, asset_id: str) -> Row | None:
        """The catalog row of an asset the user may see, or None (answer 404: not theirs)."""
        return self.db.query_one(
            f"SELECT {_CATALOG}, lf.library_id AS library_id, lf.is_offline AS is_offline "
            "FROM catalog_assets c LEFT JOIN library_files lf ON lf.asset_id = c.asset_id AND lf.is_removed = 0 "
            f"WHERE c.asset_id = ? AND {VISIBLE_ASSET}",
            (asset_id, user_id, user_id, user_id),
        )

    def asset(self, user_id: int, asset_id: str) -> dict[str, Any] | None:
        row = self.asset_row(user_id, asset_id)
        return {**asset_from_row(row), **library_part(row)} if row else None

    # -- albums ----------------------------------------------------------------------------------

    def album(self, user_id: int, album_id: int) -> dict[str, Any] | None:
        """An album the user owns or is a member of (with `owner_id` and `role` when shared)."""
        row = self.db.query_one(
            f"{_ALBUM_SELECT.replace(' FROM albums a', f', {_ROLE} FROM albums a')} "
            f"WHERE a.album_id = ? AND {VISIBLE_ALBUM}",
            (user_id, user_id, album_id, user_id, user_id),
        )
        return _album(row, user_id) if row else None

    def albums(self, user_id: int, scope: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """`owned`: the user's albums; `shared`: albums others share with them; `all`: both.
        Oldest first."""
        shared = "EXISTS (SELECT 1 FROM album_members am WHERE am.album_id = a.album_id AND am.user_id = ?)"
        where, params = {
            "owned": ("a.user_id = ?", (user_id,)),
            "shared": (shared, (user_id,)),
            "all": (f"(a.user_id = ? OR {shared})", (user_id, user_id)),
        }[scope]
        select = _ALBUM_SELECT.replace(" FROM albums a", f", {_ROLE} FROM albums a")
        with self.db.reader() as tx:
            rows = tx.fetchall(
                f"{select} WHERE a.is_deleted = 0 AND {where} ORDER BY a.album_id LIMIT ? OFFSET ?",
                (user_id, user_id, *params, limit, offset),
            )
            total = tx.fetchone(f"SELECT COUNT(*) AS n FROM albums a WHERE a.is_deleted = 0 AND {where}", params)
        return [_album(r, user_id) for r in rows], int(total["n"] if total else 0)

    def albums_containing(self, user_id: int, asset_id: str) -> list[dict[str, Any]]:
        """The albums the user may see that contain the asset."""
        select = _ALBUM_SELECT.replace(" FROM albums a", f", {_ROLE} FROM albums a")
        rows = self.db.query(
            f"{select} JOIN album_assets m2 ON m2.album_id = a.album_id "
            f"WHERE m2.asset_id = ? AND {VISIBLE_ALBUM} ORDER BY a.album_id",
            (user_id, user_id, asset_id, user_id, user_id),
        )
        return [_album(r, user_id) for r in rows]

    def members(self, album_id: int) -> list[dict[str, Any]]:
        """The album's members, by user id."""
        rows = self.db.query(
            "SELECT user_id, role FROM album_members WHERE album_id = ? ORDER BY user_id", (album_id,))
        return [{"user_id": int(r["user_id"]), "role": r["role"]} for r in rows]

    # -- public links ----------------------------------------------------------------------------

    def link_asset_rows(self, link: Row, asset_id: str | None = None) -> list[Row]:
        """The catalog rows a public link covers (only `asset_id` when given): the undeleted
        assets of its undeleted album, in album order, or its undeleted assets of its owner."""
        if link["album_id"] is not None:
            extra, params = ("AND c.asset_id = ? ", (asset_id,)) if asset_id is not None else ("", ())
            return self.db.query(
                f"SELECT {_CATALOG} FROM album_assets m JOIN albums a ON a.album_id = m.album_id "
                "JOIN catalog_assets c ON c.asset_id = m.asset_id "
                f"WHERE m.album_id = ? AND a.is_deleted = 0 AND c.is_deleted = 0 {extra}"
                "ORDER BY m.position",
                (link["album_id"], *params),
            )
        covered = json.loads(link["asset_ids"])
        wanted = [asset_id] if asset_id is not None else covered
        wanted = [a for a in wanted if a in covered]
        if not wanted:
            return []
        rows = self.db.query(
            f"SELECT {_CATALOG} FROM catalog_assets c WHERE c.owner_id = ? AND c.is_deleted = 0 "
            f"AND c.asset_id IN ({', '.join('?' * len(wanted))})",
            (link["owner_id"], *wanted),
        )
        order = {a: i for i, a in enumerate(covered)}
        return sorted(rows, key=lambda r: order[r["asset_id"]])

    def link_album(self, link: Row) -> dict[str, Any] | None:
        """The album of an album link, unless deleted."""
        row = self.db.query_one(f"{_ALBUM_SELECT} WHERE a.album_id = ? AND a.is_deleted = 0",
                                (link["album_id"],))
        return album_from_row(row) if row else None

    # -- search within a shared album -------------------------------------------------------------

    def album_search(self, user_id: int, album_id: int, asset_filter: AssetFilter, limit: int, offset: int,
                     filename_contains: str | None = None) -> tuple[list[dict[str, Any]], int] | None:
        """The album's assets (owned or shared album) that pass the filter, newest first, and how
        many pass in all; None when the user may not see the album."""
        if self.album(user_id, album_id) is None:
            return None
        conditions, params = filter_conditions(asset_filter, self.db.dialect)
        where = ["asset_id IN (SELECT asset_id FROM album_assets WHERE album_id = ?)", "is_deleted = 0", *conditions]
        params = [album_id, *params]
        if asset_filter.owner_id is not None:
            where.append("owner_id = ?")
            params.append(asset_filter.owner_id)
        if filename_contains is not None:
            sql, values = filename_condition("contains", filename_contains, self.db.dialect)
            where.append(sql)
            params += values
        clause = " AND ".join(where)
        with self.db.reader() as tx:
            counted = tx.fetchone(f"SELECT COUNT(*) AS n FROM catalog_assets WHERE {clause}", params)
            rows = tx.fetchall(f"SELECT {CATALOG_COLUMNS} FROM catalog_assets WHERE {clause} "
                               "ORDER BY sort_time DESC, asset_id DESC LIMIT ? OFFSET ?", (*params, limit, offset))
        return [asset_from_row(r) for r in rows], int(counted["n"]) if counted else 0
