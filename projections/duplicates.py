"""Near-duplicate photos: each photo's fingerprint, whether it is live, and the owners'
decisions; the groups are computed from these (`infra.fingerprints.group`, a faiss index, never
all pairs) in a fixed order, so they and their ids are the same after a rebuild."""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

import numpy as np

from domain.duplicates import group_id_of
from infra.database import Database, Row, Transaction
from infra.fingerprints import grey_of, group
from projections.base import Projection, delete_in, handles, rows_in, ts, upsert
from projections.catalog import CATALOG_COLUMNS, asset_from_row
from projections.search_index import vector_of

FP_COLUMNS = ["asset_id", "owner_id", "recorded_at", "grey16", "is_live", "changes"]
DECISION_COLUMNS = ["review_id", "owner_id", "decisions"]


class DuplicatesProjection(Projection):
    name = "duplicates"
    tables = ("dup_fingerprints", "dup_decisions")

    def create_tables(self, tx: Transaction) -> None:
        fps, decisions = self.t("dup_fingerprints"), self.t("dup_decisions")
        tx.execute(
            f"""CREATE TABLE {fps} (
                asset_id TEXT PRIMARY KEY,
                owner_id BIGINT NOT NULL,
                recorded_at TEXT,
                grey16 TEXT,
                is_live BIGINT NOT NULL DEFAULT 1,
                changes BIGINT NOT NULL DEFAULT 0
            )"""
        )
        tx.execute(f"CREATE INDEX {self.index_name(fps, 'owner')} ON {fps} (owner_id, is_live, recorded_at)")
        tx.execute(
            f"""CREATE TABLE {decisions} (
                review_id TEXT PRIMARY KEY,
                owner_id BIGINT NOT NULL,
                decisions TEXT NOT NULL
            )"""
        )
        tx.execute(f"CREATE INDEX {self.index_name(decisions, 'owner')} ON {decisions} (owner_id)")

    # States are keyed by aggregate id: an asset's fingerprint row, or a review's decisions.

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        states: dict[str, Any] = {}
        for row in rows_in(tx, f"SELECT {', '.join(FP_COLUMNS)} FROM {self.t('dup_fingerprints')}", "asset_id", keys):
            states[row["asset_id"]] = {"kind": "fp", **row}
        for row in rows_in(tx, f"SELECT {', '.join(DECISION_COLUMNS)} FROM {self.t('dup_decisions')}",
                           "review_id", keys):
            states[row["review_id"]] = {"kind": "review", **row, "decisions": json.loads(row["decisions"])}
        return states

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        fps = [s for _, s in sorted(states.items()) if s["kind"] == "fp"]
        upsert(tx, self.t("dup_fingerprints"), FP_COLUMNS, "asset_id",
               [tuple(s[c] for c in FP_COLUMNS) for s in fps if not s.get("_purged")])
        delete_in(tx, self.t("dup_fingerprints"), "asset_id", [s["asset_id"] for s in fps if s.get("_purged")])
        reviews = [s for _, s in sorted(states.items()) if s["kind"] == "review"]
        upsert(tx, self.t("dup_decisions"), DECISION_COLUMNS, "review_id",
               [(s["review_id"], s["owner_id"], json.dumps(s["decisions"])) for s in reviews])

    @handles("Asset.Uploaded")
    def uploaded(self, state: Row | None, e: Any) -> Row:
        return {"kind": "fp", "asset_id": str(e.originator_id), "owner_id": e.owner_id,
                "recorded_at": None, "grey16": None, "is_live": 1, "changes": 0}

    @handles("Asset.FingerprintRecorded")
    def fingerprinted(self, state: Row | None, e: Any) -> Row | None:
        if state is not None:
            state["grey16"] = e.grey16
            state["changes"] += 1  # a new fingerprint of the same size: the cache must see it
            if state["recorded_at"] is None:  # the first fingerprint fixes the photo's place in line
                state["recorded_at"] = f"{ts(e.timestamp)}|{state['asset_id']}"
        return state

    def _live(self, state: Row | None, live: int) -> Row | None:
        if state is not None:
            state["is_live"] = live
        return state

    @handles("Asset.Deleted")
    def deleted(self, state: Row | None, e: Any) -> Row | None:
        return self._live(state, 0)

    @handles("Asset.Restored")
    def restored(self, state: Row | None, e: Any) -> Row | None:
        return self._live(state, 1)

    @handles("Asset.Purged")
    def purged(self, state: Row | None, e: Any) -> Row | None:
        if state is not None:
            state["_purged"] = True
        return state

    @handles("DuplicateReview.Started")
    def review_started(self, state: Row | None, e: Any) -> Row:
        return {"kind": "review", "review_id": str(e.originator_id), "owner_id": e.owner_id, "decisions": []}

    @handles("DuplicateReview.Dismissed")
    def dismissed(self, state: Row | None, e: Any) -> Row | None:
        if state is not None:
            state["decisions"].append(list(e.asset_ids))
        return state

    @handles("DuplicateReview.Resolved")
    def resolved(self, state: Row | None, e: Any) -> Row | None:
        if state is not None:
            state["decisions"].append(list(e.kept) + list(e.trashed))
        return state


class Duplicates:
    """The owner's near-duplicate groups, computed from the read model and kept until it
    changes (the grouping of 100k photos takes seconds: see bench/library.py)."""

    # Per database (each a deployment's read models): owner -> (signature, groups).
    _caches: weakref.WeakKeyDictionary[Database, dict[int, Any]] = weakref.WeakKeyDictionary()
    _lock = threading.Lock()

    def __init__(self, db: Database) -> None:
        self.db = db

    def _signature(self, owner_id: int) -> Any:
        with self.db.reader() as tx:
            fp = tx.fetchone("SELECT COUNT(*) AS n, MAX(recorded_at) AS last, SUM(is_live) AS live, "
                             "SUM(changes) AS changes FROM dup_fingerprints WHERE owner_id = ?", (owner_id,))
            dec = tx.fetchone("SELECT COUNT(*) AS n, SUM(LENGTH(decisions)) AS size FROM dup_decisions "
                              "WHERE owner_id = ?", (owner_id,))
            emb = tx.fetchone("SELECT MAX(seq) AS seq FROM search_documents WHERE owner_id = ?", (owner_id,))
        return (tuple(fp.values()) if fp else None, tuple(dec.values()) if dec else None,
                emb["seq"] if emb else None)

    def groups(self, owner_id: int) -> list[dict[str, Any]]:
        """`[{group_id, similarity, asset_ids}]`, groups in the order of their first photo."""
        signature = self._signature(owner_id)
        with self._lock:
            cache = self._caches.setdefault(self.db, {})
            cached = cache.get(owner_id)
        if cached is not None and cached[0] == signature:
            return cached[1]
        rows = self.db.query(
            "SELECT asset_id, grey16 FROM dup_fingerprints WHERE owner_id = ? AND is_live = 1 "
            "AND grey16 IS NOT NULL ORDER BY recorded_at", (owner_id,))
        ids = [r["asset_id"] for r in rows]
        position = {a: i for i, a in enumerate(ids)}
        embeddings: list[np.ndarray | None] = [None] * len(ids)
        for r in self.db.query("SELECT asset_id, embedding FROM search_documents WHERE owner_id = ? "
                               "AND is_deleted = 0 AND embedding IS NOT NULL", (owner_id,)):
            if r["asset_id"] in position:
                embeddings[position[r["asset_id"]]] = np.array(vector_of(r["embedding"]), dtype=np.float32)
        apart: set[frozenset[int]] = set()
        for r in self.db.query("SELECT decisions FROM dup_decisions WHERE owner_id = ?", (owner_id,)):
            for decided in json.loads(r["decisions"]):
                known = [position[a] for a in decided if a in position]
                apart.update(frozenset((a, b)) for a in known for b in known if a < b)
        found = group([grey_of(r["grey16"]) for r in rows], embeddings, apart)
        out = [{"group_id": str(group_id_of(owner_id, ids[g.members[0]])), "similarity": g.similarity,
                "asset_ids": [ids[m] for m in g.members]} for g in found]
        with self._lock:
            cache[owner_id] = (signature, out)
        return out

    def page(self, owner_id: int, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """A page of groups with their assets (catalog DTOs, in the group's order)."""
        groups = self.groups(owner_id)
        chosen = groups[offset:offset + limit]
        wanted = [a for g in chosen for a in g["asset_ids"]]
        assets: dict[str, dict[str, Any]] = {}
        if wanted:
            for r in rows_in_db(self.db, owner_id, wanted):
                assets[r["asset_id"]] = asset_from_row(r)
        return [{"group_id": g["group_id"], "similarity": g["similarity"],
                 "assets": [assets[a] for a in g["asset_ids"] if a in assets]} for g in chosen], len(groups)

    def find(self, owner_id: int, group_id: str) -> dict[str, Any] | None:
        return next((g for g in self.groups(owner_id) if g["group_id"] == group_id), None)


def rows_in_db(db: Database, owner_id: int, asset_ids: list[str]) -> list[Row]:
    out: list[Row] = []
    for i in range(0, len(asset_ids), 500):
        part = asset_ids[i:i + 500]
        out += db.query(f"SELECT {CATALOG_COLUMNS} FROM catalog_assets WHERE owner_id = ? "
                        f"AND asset_id IN ({', '.join('?' * len(part))})", (owner_id, *part))
    return out
