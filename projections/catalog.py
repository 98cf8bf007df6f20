"""The asset catalog: one row per asset, everything the asset endpoints list and show."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import orjson

from domain.asset import status_of
from domain.camera import clean_lens, lens_key, normalise_make
from infra import json_codec
from domain.stack import base_name
from infra.database import Database, Row, Transaction
from infra.media_types import RAW_MIME_TYPES
from projections.base import Projection, delete_in, handles, rows_in, to_json, ts, upsert
from projections.queries import AssetFilter, filename_condition, filter_conditions, taken_instant

CATALOG_COLUMNS = (
    "asset_id, owner_id, type, original_filename, mime_type, file_size, hash, width, height, "
    "duration, taken_time, upload_time, sort_time, rating, liked, description, repository_id, "
    "storage_path, is_deleted, deleted_at, status, specific_metadata, version, taken_local, "
    "metadata_overrides, extracted_metadata, thumbnails, web, camera_make, lens_model, lens_key, "
    "is_raw, filename_lower, taken_utc, enrichments, latitude, longitude, place, country_code, city_key, "
    "taken_monthday, base_name"
)
_JSON_COLUMNS = frozenset({"specific_metadata", "metadata_overrides", "extracted_metadata", "thumbnails", "web",
                           "enrichments", "place"})
_COLUMN_LIST = CATALOG_COLUMNS.split(", ")
# What `asset_from_row` reads: listings fetch only these (a third of a row's bytes stay behind).
ASSET_COLUMNS = (
    "asset_id, owner_id, type, original_filename, mime_type, file_size, hash, width, height, "
    "duration, taken_time, upload_time, rating, liked, description, repository_id, storage_path, "
    "is_deleted, deleted_at, status, specific_metadata, place"
)


class CatalogProjection(Projection):
    name = "catalog"
    tables = ("catalog_assets",)
    # 2: ML enrichments (embedding, species, OCR, faces, caption); 3: trash (restore, purge),
    # places (position, place), memories (month and day taken), stacks (base name)
    schema_version = 3

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
                version BIGINT NOT NULL,
                taken_local TEXT,
                metadata_overrides TEXT NOT NULL,
                extracted_metadata TEXT NOT NULL,
                thumbnails TEXT NOT NULL,
                web TEXT NOT NULL,
                camera_make TEXT,
                lens_model TEXT,
                lens_key TEXT,
                is_raw BIGINT NOT NULL DEFAULT 0,
                filename_lower TEXT NOT NULL,
                taken_utc TEXT,
                enrichments TEXT NOT NULL DEFAULT '{{}}',
                latitude DOUBLE PRECISION,
                longitude DOUBLE PRECISION,
                place TEXT NOT NULL DEFAULT 'null',
                country_code TEXT,
                city_key TEXT,
                taken_monthday TEXT,
                base_name TEXT NOT NULL DEFAULT ''
            )"""
        )

    def create_indexes(self, tx: Transaction) -> None:
        table = self.t("catalog_assets")
        tx.execute(
            f"CREATE INDEX {self.index_name(table, 'owner_sort')} "
            f"ON {table} (owner_id, is_deleted, sort_time, asset_id)"
        )
        # What POST /assets/filter narrows by, each with the listing order behind it.
        for column in ("camera_make", "lens_key", "rating", "liked", "type", "taken_utc"):
            tx.execute(
                f"CREATE INDEX {self.index_name(table, column)} "
                f"ON {table} (owner_id, is_deleted, {column}, sort_time)"
            )
        tx.execute(f"CREATE INDEX {self.index_name(table, 'owner_hash')} ON {table} (owner_id, hash)")
        # The trash, newest deletion first; and who still references a file (before a purge).
        tx.execute(f"CREATE INDEX {self.index_name(table, 'trash')} ON {table} (owner_id, is_deleted, deleted_at)")
        tx.execute(f"CREATE INDEX {self.index_name(table, 'file')} ON {table} (repository_id, storage_path)")
        # Places, the map (a bounding box on latitude first), memories, RAW+JPEG pairs.
        tx.execute(f"CREATE INDEX {self.index_name(table, 'place')} "
                   f"ON {table} (owner_id, is_deleted, country_code, city_key)")
        tx.execute(f"CREATE INDEX {self.index_name(table, 'latitude')} ON {table} (owner_id, is_deleted, latitude)")
        tx.execute(f"CREATE INDEX {self.index_name(table, 'monthday')} "
                   f"ON {table} (owner_id, is_deleted, taken_monthday)")
        tx.execute(f"CREATE INDEX {self.index_name(table, 'base_name')} ON {table} (owner_id, base_name)")

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        table = self.t("catalog_assets")
        states: dict[str, Any] = {}
        for row in rows_in(tx, f"SELECT {CATALOG_COLUMNS} FROM {table}", "asset_id", keys):
            for column in _JSON_COLUMNS:
                row[column] = json.loads(row[column])
            states[row["asset_id"]] = row
        return states

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        upsert(tx, self.t("catalog_assets"), _COLUMN_LIST, "asset_id", [
            tuple(to_json(row[c]) if c in _JSON_COLUMNS else row[c] for c in _COLUMN_LIST)
            for _, row in sorted(states.items()) if not row.get("_purged")
        ])
        # A purged asset leaves the catalog: every read by id answers 404 from then on.
        delete_in(tx, self.t("catalog_assets"), "asset_id",
                  [key for key, row in states.items() if row.get("_purged")])

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
            "specific_metadata": {}, "version": e.originator_version, "taken_local": None,
            "metadata_overrides": {}, "extracted_metadata": {}, "thumbnails": {}, "web": {},
            "camera_make": None, "lens_model": None, "lens_key": None,
            "is_raw": 1 if e.mime_type in RAW_MIME_TYPES else 0,
            "filename_lower": e.original_filename.lower(), "taken_utc": None, "enrichments": {},
            "latitude": None, "longitude": None, "place": None, "country_code": None, "city_key": None,
            "taken_monthday": None, "base_name": base_name(e.original_filename),
        }

    @staticmethod
    def _derive(row: Row) -> None:
        """The filter columns that follow from the merged specific metadata."""
        metadata = row["specific_metadata"]
        lens = clean_lens(metadata.get("lens_model"))
        row["camera_make"] = normalise_make(metadata.get("camera_make"))
        row["lens_model"] = lens
        row["lens_key"] = lens_key(lens)

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
        row["metadata_overrides"] = {**row["metadata_overrides"], **e.changes}
        row["specific_metadata"] = {**row["extracted_metadata"], **row["metadata_overrides"]}
        self._derive(row)
        description = e.changes.get("description", row["description"])
        return self._stamp(row, e, description=description)

    @handles("Asset.MetadataExtracted")
    def metadata_extracted(self, row: Row | None, e: Any) -> Row | None:
        if row is None:
            return None
        row["extracted_metadata"] = dict(e.specific_metadata)
        row["specific_metadata"] = {**row["extracted_metadata"], **row["metadata_overrides"]}
        self._derive(row)
        taken = sortable_time(e.taken_time)
        return self._stamp(
            row, e, width=e.width, height=e.height, duration=e.duration, taken_time=e.taken_time,
            taken_local=e.taken_time_local, sort_time=taken or row["upload_time"],
            taken_utc=taken_instant(e.taken_time), taken_monthday=monthday(e.taken_time_local),
        )

    @handles("Asset.Located")
    def located(self, row: Row | None, e: Any) -> Row | None:
        place = dict(e.place) if e.place else None
        return self._stamp(row, e, latitude=e.latitude, longitude=e.longitude, place=place,
                           country_code=place["country_code"] if place else None,
                           city_key=city_key(place["city"]) if place else None)

    @handles("Asset.TaskStateChanged")
    def task_state_changed(self, row: Row | None, e: Any) -> Row | None:
        if row is None:
            return None
        status = orjson.loads(row["status"])
        status["tasks"][e.queue] = e.state
        tasks = {q: {"state": s} for q, s in status["tasks"].items()}
        return self._stamp(row, e, status=to_json(status_of(tasks, status.get("problems"))))

    @handles("Asset.DamageFound")
    def damage_found(self, row: Row | None, e: Any) -> Row | None:
        if row is None:
            return None
        status = orjson.loads(row["status"])
        tasks = {q: {"state": s} for q, s in status["tasks"].items()}
        return self._stamp(row, e, status=to_json(status_of(tasks, list(e.problems))))

    @handles("Asset.ThumbnailsGenerated")
    def thumbnails_generated(self, row: Row | None, e: Any) -> Row | None:
        return self._stamp(row, e, thumbnails=dict(e.thumbnails))

    @handles("Asset.WebVersionGenerated")
    def web_version_generated(self, row: Row | None, e: Any) -> Row | None:
        return self._stamp(row, e, web={e.kind: e.info} if e.kind != "skipped" else {})

    # -- ML enrichments: the latest result of each task, under its part of GET /assets/{id} -----

    @staticmethod
    def _enrich(row: Row | None, e: Any, part: str, value: dict[str, Any]) -> Row | None:
        if row is None:
            return None
        enrichments = dict(row["enrichments"])
        enrichments[part] = value
        skipped = {k: v for k, v in enrichments.get("skipped", {}).items() if k != TASK_OF_PART[part]}
        enrichments["skipped"] = skipped
        if not skipped:
            del enrichments["skipped"]
        return CatalogProjection._stamp(row, e, enrichments=enrichments)

    @handles("Asset.EmbeddingRecorded")
    def embedding_recorded(self, row: Row | None, e: Any) -> Row | None:
        return self._enrich(row, e, "embedding", {"model": e.model, "dimension": len(e.vector)})

    @handles("Asset.SpeciesRecorded")
    def species_recorded(self, row: Row | None, e: Any) -> Row | None:
        return self._enrich(row, e, "species", {"model": e.model, "predictions": list(e.predictions)})

    @handles("Asset.TextRecognised")
    def text_recognised(self, row: Row | None, e: Any) -> Row | None:
        return self._enrich(row, e, "ocr", {"model": e.model, "text": e.text, "lines": list(e.lines)})

    @handles("Asset.FacesDetected")
    def faces_detected(self, row: Row | None, e: Any) -> Row | None:
        # Boxes and people come from the people read model; the catalog keeps the summary.
        return self._enrich(row, e, "faces", {"model": e.model, "count": len(e.faces)})

    @handles("Asset.LabelsRecorded")
    def labels_recorded(self, row: Row | None, e: Any) -> Row | None:
        return self._enrich(row, e, "tags", {"model": e.model, "labels": list(e.labels)})

    @handles("Asset.CaptionRecorded")
    def caption_recorded(self, row: Row | None, e: Any) -> Row | None:
        return self._enrich(row, e, "caption", {"model": e.model, "caption": e.caption})

    @handles("Asset.EnrichmentSkipped")
    def enrichment_skipped(self, row: Row | None, e: Any) -> Row | None:
        if row is None:
            return None
        enrichments = dict(row["enrichments"])
        enrichments["skipped"] = {**enrichments.get("skipped", {}), e.task: e.reason}
        return self._stamp(row, e, enrichments=enrichments)

    @handles("Asset.ContentReplaced")
    def content_replaced(self, row: Row | None, e: Any) -> Row | None:
        # An external library's file changed on disk (see domain/library.py).
        return self._stamp(row, e, file_size=e.file_size, hash=e.content_hash, mime_type=e.mime_type,
                           is_raw=1 if e.mime_type in RAW_MIME_TYPES else 0)

    @handles("Asset.Deleted")
    def deleted(self, row: Row | None, e: Any) -> Row | None:
        return self._stamp(row, e, is_deleted=1, deleted_at=ts(e.at))

    @handles("Asset.Restored")
    def restored(self, row: Row | None, e: Any) -> Row | None:
        return self._stamp(row, e, is_deleted=0, deleted_at=None)

    @handles("Asset.Purged")
    def purged(self, row: Row | None, e: Any) -> Row | None:
        return self._stamp(row, e, _purged=True)


TASK_OF_PART = {"embedding": "process_clip", "species": "process_species", "ocr": "process_ocr",
                "faces": "process_face", "caption": "process_caption", "tags": "process_labels"}


def city_key(city: str | None) -> str | None:
    """Cities are matched case-insensitively."""
    return city.casefold() if city else None


def monthday(taken_local: str | None) -> str | None:
    """`MM-DD` of a wall-clock taken time (`2011-01-13T14:33:39`), for memories."""
    if not taken_local or len(taken_local) < 10 or taken_local[4] != "-" or taken_local[7] != "-":
        return None
    return taken_local[5:10]


def sortable_time(value: str | None) -> str | None:
    """A taken time as fixed-width UTC text for sorting; a time without offset counts as UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return ts(parsed)


# -- queries ---------------------------------------------------------------------------------


def asset_from_row(row: Row) -> dict[str, Any]:
    """An `AssetDTO` (API.md) from a catalog row."""
    metadata = row["specific_metadata"]
    metadata = json_codec.loads(metadata) if isinstance(metadata, str) else dict(metadata)
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
        "status": json_codec.loads(row["status"]),
        "specific_metadata": metadata,
        "place": json_codec.loads(row["place"]) if isinstance(row["place"], str) else row["place"],
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
            f"SELECT {ASSET_COLUMNS} FROM catalog_assets WHERE {' AND '.join(where)} "
            f"ORDER BY sort_time {order}, asset_id {order} LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [asset_from_row(r) for r in rows]

    def time_distribution(self, owner_id: int, kind: str) -> list[dict[str, Any]]:
        """24 hourly or 12 monthly buckets of the owner's assets by the wall-clock taken time."""
        if kind == "hourly":
            expr, buckets, label = "substr(taken_local, 12, 2)", range(24), "{:02d}:00"
        else:
            expr, buckets, label = "substr(taken_local, 6, 2)", range(1, 13), "{:02d}"
        rows = self.db.query(
            f"SELECT {expr} AS bucket, COUNT(*) AS n FROM catalog_assets "
            "WHERE owner_id = ? AND is_deleted = 0 AND taken_local IS NOT NULL GROUP BY bucket",
            (owner_id,),
        )
        counts = {int(r["bucket"]): int(r["n"]) for r in rows if r["bucket"] and r["bucket"].isdigit()}
        return [{"label": label.format(b), "value": b, "count": counts.get(b, 0)} for b in buckets]

    def filter(
        self,
        owner_id: int,
        asset_filter: AssetFilter,
        limit: int = 20,
        offset: int = 0,
        *,
        filename_contains: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the owner's assets that pass the filter, newest first, and how many pass
        in all. `filename_contains` adds a case-insensitive substring match on the original
        filename (the filename search). Another owner's id in the filter selects nothing."""
        if asset_filter.owner_id is not None and asset_filter.owner_id != owner_id:
            return [], 0
        where = ["owner_id = ?", "is_deleted = 0"]
        params: list[Any] = [owner_id]
        conditions, values = filter_conditions(asset_filter, self.db.dialect)
        where += conditions
        params += values
        if filename_contains is not None:
            sql, values = filename_condition("contains", filename_contains, self.db.dialect)
            where.append(sql)
            params += values
        clause = " AND ".join(where)
        with self.db.reader() as tx:
            if tx.dialect == "postgres":  # one snapshot for both statements, as SQLite's reader has
                tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            counted = tx.fetchone(f"SELECT COUNT(*) AS n FROM catalog_assets WHERE {clause}", params)
            total = int(counted["n"]) if counted else 0
            rows: list[Row] = []
            if offset < total:
                rows = tx.fetchall(
                    f"SELECT {ASSET_COLUMNS} FROM catalog_assets WHERE {clause} "
                    "ORDER BY sort_time DESC, asset_id DESC LIMIT ? OFFSET ?",
                    (*params, limit, offset),
                )
        return [asset_from_row(r) for r in rows], total

    def trash(self, owner_id: int, limit: int = 20, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """One page of the owner's trash, most recently deleted first, and its size."""
        with self.db.reader() as tx:
            counted = tx.fetchone(
                "SELECT COUNT(*) AS n FROM catalog_assets WHERE owner_id = ? AND is_deleted = 1", (owner_id,))
            rows = tx.fetchall(
                f"SELECT {CATALOG_COLUMNS} FROM catalog_assets WHERE owner_id = ? AND is_deleted = 1 "
                "ORDER BY deleted_at DESC, asset_id DESC LIMIT ? OFFSET ?", (owner_id, limit, offset))
        return [asset_from_row(r) for r in rows], int(counted["n"]) if counted else 0

    def trashed_ids(self, owner_id: int | None = None, deleted_before: str | None = None) -> list[str]:
        """Ids of trashed assets: one owner's, or everyone's deleted before a UTC timestamp."""
        where, params = ["is_deleted = 1"], []
        if owner_id is not None:
            where.append("owner_id = ?")
            params.append(owner_id)
        if deleted_before is not None:
            where.append("deleted_at < ?")
            params.append(deleted_before)
        rows = self.db.query(f"SELECT asset_id FROM catalog_assets WHERE {' AND '.join(where)} "
                             "ORDER BY deleted_at, asset_id", params)
        return [r["asset_id"] for r in rows]

    def references(self, repository_id: str, storage_path: str) -> list[str]:
        """The (unpurged) assets whose original is this file."""
        rows = self.db.query("SELECT asset_id FROM catalog_assets WHERE repository_id = ? AND storage_path = ?",
                             (repository_id, storage_path))
        return [r["asset_id"] for r in rows]
