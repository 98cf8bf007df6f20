"""Tags: each asset's labels (from `Asset.LabelsRecorded`) as rows, for `filter.tags`.

One row per (asset, label), with the owner, score and the model that gave it (`source`); a new
recording replaces the asset's rows, deleting the asset removes them. Labels are stored lower-cased
so a filter matches any case.
"""

from __future__ import annotations

from typing import Any

from infra.database import Transaction
from projections.base import Projection, delete_in, handles, rows_in

COLUMNS = ["asset_id", "owner_id", "label", "score", "source"]


class TagsProjection(Projection):
    name = "tags"
    tables = ("asset_tags", "tags_assets")

    def create_tables(self, tx: Transaction) -> None:
        tags, assets = self.t("asset_tags"), self.t("tags_assets")
        tx.execute(f"CREATE TABLE {assets} (asset_id TEXT PRIMARY KEY, owner_id BIGINT NOT NULL)")
        tx.execute(f"""CREATE TABLE {tags} (
            asset_id TEXT NOT NULL, owner_id BIGINT NOT NULL, label TEXT NOT NULL,
            score DOUBLE PRECISION NOT NULL, source TEXT NOT NULL, PRIMARY KEY (asset_id, label))""")
        tx.execute(f"CREATE INDEX {self.index_name(tags, 'label')} ON {tags} (owner_id, label)")

    # State per asset: {"owner_id", "labels": [...] | None (unchanged) , "deleted"}.

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        states = {}
        for row in rows_in(tx, f"SELECT asset_id, owner_id FROM {self.t('tags_assets')}", "asset_id", keys):
            states[row["asset_id"]] = {"owner_id": int(row["owner_id"]), "labels": None, "deleted": False}
        return states

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        tags, assets = self.t("asset_tags"), self.t("tags_assets")
        new = [(k, s["owner_id"]) for k, s in sorted(states.items()) if s.get("new")]
        if new:
            tx.executemany(f"INSERT INTO {assets} (asset_id, owner_id) VALUES (?, ?)", new)
        replaced = sorted(k for k, s in states.items() if s["labels"] is not None or s["deleted"])
        delete_in(tx, tags, "asset_id", replaced)
        delete_in(tx, assets, "asset_id", [k for k, s in states.items() if s["deleted"]])
        rows = {}
        for key in replaced:
            state = states[key]
            for tag in [] if state["deleted"] else state["labels"]:
                label = tag["label"].strip().lower()
                rows.setdefault((key, label), (key, state["owner_id"], label, float(tag["score"]), state["source"]))
        if rows:
            tx.executemany(f"INSERT INTO {tags} ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?)", list(rows.values()))

    @handles("Asset.Uploaded")
    def uploaded(self, state: Any, e: Any) -> Any:
        return {"owner_id": e.owner_id, "labels": None, "deleted": False, "new": True}

    @handles("Asset.LabelsRecorded")
    def labels_recorded(self, state: Any, e: Any) -> Any:
        if state is None or state["deleted"]:
            return state
        return {**state, "labels": list(e.labels), "source": e.model}

    @handles("Asset.Deleted")
    def deleted(self, state: Any, e: Any) -> Any:
        if state is None:
            return None
        return {**state, "deleted": True}
