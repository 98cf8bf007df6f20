"""Filter facets: per owner, how many assets have each camera make, lens and year taken.

Keyed by asset: each asset's row holds its current facet values, and counts are a GROUP BY over
the owner's live rows, so they are exact by construction under upload, extraction, user edits
(which take precedence over extracted values, as in the catalog) and delete. Values follow the
filters they feed: makes normalised (`domain.camera.normalise_make`), lenses grouped
case-insensitively (`lens_key`), years of the taken time as a UTC instant (what `date` filters).
"""

from __future__ import annotations

import json
from typing import Any

from domain.camera import clean_lens, lens_key, normalise_make
from infra.database import Database, Transaction
from projections.base import Projection, rows_in, handles, to_json, upsert
from projections.queries import taken_instant

FACET_COLUMNS = ["asset_id", "owner_id", "camera_make", "lens_model", "lens_key", "year", "is_deleted", "sources"]
_FIELDS = ("camera_make", "lens_model")


class FacetsProjection(Projection):
    name = "facets"
    tables = ("facet_values",)
    schema_version = 2  # 2: restored assets count again

    def create_tables(self, tx: Transaction) -> None:
        table = self.t("facet_values")
        tx.execute(
            f"""CREATE TABLE {table} (
                asset_id TEXT PRIMARY KEY,
                owner_id BIGINT NOT NULL,
                camera_make TEXT,
                lens_model TEXT,
                lens_key TEXT,
                year BIGINT,
                is_deleted BIGINT NOT NULL DEFAULT 0,
                sources TEXT NOT NULL
            )"""
        )
        tx.execute(f"CREATE INDEX {self.index_name(table, 'owner')} ON {table} (owner_id, is_deleted)")

    # State per asset: the row, with `sources` = {"extracted": {...}, "overrides": {...}} holding
    # the raw camera_make / lens_model each side said, so an edit or a re-extraction re-merges.

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        table = self.t("facet_values")
        states: dict[str, Any] = {}
        for row in rows_in(tx, f"SELECT {', '.join(FACET_COLUMNS)} FROM {table}", "asset_id", keys):
            row["sources"] = json.loads(row["sources"])
            states[row["asset_id"]] = row
        return states

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        upsert(tx, self.t("facet_values"), FACET_COLUMNS, "asset_id", [
            tuple(to_json(s[c]) if c == "sources" else s[c] for c in FACET_COLUMNS)
            for _, s in sorted(states.items())
        ])

    @staticmethod
    def _merge(state: dict[str, Any]) -> dict[str, Any]:
        merged = {**state["sources"]["extracted"], **state["sources"]["overrides"]}
        lens = clean_lens(merged.get("lens_model"))
        state["camera_make"] = normalise_make(merged.get("camera_make"))
        state["lens_model"] = lens
        state["lens_key"] = lens_key(lens)
        return state

    @handles("Asset.Uploaded")
    def uploaded(self, state: Any, e: Any) -> dict[str, Any]:
        return {
            "asset_id": str(e.originator_id), "owner_id": e.owner_id, "camera_make": None,
            "lens_model": None, "lens_key": None, "year": None, "is_deleted": 0,
            "sources": {"extracted": {}, "overrides": {}},
        }

    @handles("Asset.MetadataExtracted")
    def metadata_extracted(self, state: Any, e: Any) -> Any:
        if state is None:
            return None
        metadata = e.specific_metadata or {}
        state["sources"]["extracted"] = {f: metadata[f] for f in _FIELDS if f in metadata}
        taken = taken_instant(e.taken_time)
        state["year"] = int(taken[:4]) if taken else None
        return self._merge(state)

    @handles("Asset.MetadataUpdated")
    def metadata_updated(self, state: Any, e: Any) -> Any:
        if state is None:
            return None
        changed = {f: e.changes[f] for f in _FIELDS if f in e.changes}
        if not changed:
            return state
        state["sources"]["overrides"] = {**state["sources"]["overrides"], **changed}
        return self._merge(state)

    @handles("Asset.Deleted")
    def deleted(self, state: Any, e: Any) -> Any:
        if state is not None:
            state["is_deleted"] = 1
        return state

    @handles("Asset.Restored")
    def restored(self, state: Any, e: Any) -> Any:
        if state is not None:
            state["is_deleted"] = 0
        return state


class Facets:
    """Facet counts for one owner, over assets that are not deleted."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def options(self, owner_id: int) -> dict[str, list[dict[str, Any]]]:
        """`{camera_makes, lenses, years}`, each `[{value, count}]`: makes and lenses by count
        (most first) then name, years newest first."""
        scope = "FROM facet_values WHERE owner_id = ? AND is_deleted = 0"
        with self.db.reader() as tx:
            makes = tx.fetchall(
                f"SELECT camera_make AS value, COUNT(*) AS n {scope} AND camera_make IS NOT NULL "
                "GROUP BY camera_make",
                (owner_id,),
            )
            lenses = tx.fetchall(
                f"SELECT MIN(lens_model) AS value, COUNT(*) AS n {scope} AND lens_key IS NOT NULL "
                "GROUP BY lens_key",
                (owner_id,),
            )
            years = tx.fetchall(
                f"SELECT year AS value, COUNT(*) AS n {scope} AND year IS NOT NULL GROUP BY year",
                (owner_id,),
            )

        def by_count(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            items = [{"value": r["value"], "count": int(r["n"])} for r in rows]
            return sorted(items, key=lambda item: (-item["count"], item["value"]))

        return {
            "camera_makes": by_count(makes),
            "lenses": by_count(lenses),
            "years": sorted(
                ({"value": int(r["value"]), "count": int(r["n"])} for r in years),
                key=lambda item: -item["value"],
            ),
        }
