"""Stacks: which assets are stacked together, and which one is in front (the primary).

`stack_members` is what `collapse_stacks` filters on (`projections.queries`) and what the asset
detail's `stack` reads; it lives in the read-model database next to the catalog and the search
documents, so the filter is one SQL condition on either.
"""

from __future__ import annotations

import json
from typing import Any

from infra.database import Database, Row, Transaction
from projections.base import Projection, delete_in, handles, rows_in, ts, upsert

STACK_COLUMNS = ["stack_id", "owner_id", "primary_asset_id", "asset_ids", "automatic", "created_at", "is_deleted"]


class StacksProjection(Projection):
    name = "stacks"
    tables = ("stacks", "stack_members")

    def create_tables(self, tx: Transaction) -> None:
        stacks, members = self.t("stacks"), self.t("stack_members")
        tx.execute(
            f"""CREATE TABLE {stacks} (
                stack_id TEXT PRIMARY KEY,
                owner_id BIGINT NOT NULL,
                primary_asset_id TEXT NOT NULL,
                asset_ids TEXT NOT NULL,
                automatic BIGINT NOT NULL,
                created_at TEXT NOT NULL,
                is_deleted BIGINT NOT NULL DEFAULT 0
            )"""
        )
        tx.execute(
            f"""CREATE TABLE {members} (
                asset_id TEXT PRIMARY KEY,
                stack_id TEXT NOT NULL,
                owner_id BIGINT NOT NULL,
                is_primary BIGINT NOT NULL
            )"""
        )
        tx.execute(f"CREATE INDEX {self.index_name(members, 'stack')} ON {members} (stack_id)")
        tx.execute(f"CREATE INDEX {self.index_name(members, 'hidden')} ON {members} (is_primary, asset_id)")

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        states = {}
        for row in rows_in(tx, f"SELECT {', '.join(STACK_COLUMNS)} FROM {self.t('stacks')}", "stack_id", keys):
            row["asset_ids"] = json.loads(row["asset_ids"])
            states[row["stack_id"]] = row
        return states

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        ordered = [states[k] for k in sorted(states)]
        upsert(tx, self.t("stacks"), STACK_COLUMNS, "stack_id", [
            tuple(json.dumps(s[c]) if c == "asset_ids" else s[c] for c in STACK_COLUMNS) for s in ordered])
        members = self.t("stack_members")
        delete_in(tx, members, "stack_id", [s["stack_id"] for s in ordered])
        rows = [(a, s["stack_id"], s["owner_id"], 1 if a == s["primary_asset_id"] else 0)
                for s in ordered if not s["is_deleted"] for a in s["asset_ids"]]
        upsert(tx, members, ["asset_id", "stack_id", "owner_id", "is_primary"], "asset_id", rows)

    @handles("Stack.Created")
    def created(self, state: Row | None, e: Any) -> Row:
        return {"stack_id": str(e.originator_id), "owner_id": e.owner_id,
                "primary_asset_id": e.primary_asset_id, "asset_ids": list(e.asset_ids),
                "automatic": 1 if e.automatic else 0, "created_at": ts(e.at), "is_deleted": 0}

    @handles("Stack.PrimaryChanged")
    def primary_changed(self, state: Row | None, e: Any) -> Row | None:
        if state is not None:
            state["primary_asset_id"] = e.primary_asset_id
        return state

    @handles("Stack.Unstacked")
    def unstacked(self, state: Row | None, e: Any) -> Row | None:
        if state is not None:
            state["is_deleted"] = 1
        return state


def stack_from_row(row: Row) -> dict[str, Any]:
    ids = json.loads(row["asset_ids"]) if isinstance(row["asset_ids"], str) else row["asset_ids"]
    return {"stack_id": row["stack_id"], "primary_asset_id": row["primary_asset_id"], "asset_ids": ids,
            "automatic": bool(row["automatic"])}


class Stacks:
    """Queries over the stacks read model, scoped to one owner."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, owner_id: int, stack_id: str) -> dict[str, Any] | None:
        row = self.db.query_one(
            f"SELECT {', '.join(STACK_COLUMNS)} FROM stacks WHERE stack_id = ? AND owner_id = ? AND is_deleted = 0",
            (stack_id, owner_id))
        return stack_from_row(row) if row else None

    def of_asset(self, owner_id: int, asset_id: str) -> dict[str, Any] | None:
        """The stack the asset is in (None when unstacked)."""
        row = self.db.query_one(
            f"SELECT {', '.join('s.' + c for c in STACK_COLUMNS)} FROM stack_members m "
            "JOIN stacks s ON s.stack_id = m.stack_id WHERE m.asset_id = ? AND m.owner_id = ?",
            (asset_id, owner_id))
        return stack_from_row(row) if row else None
