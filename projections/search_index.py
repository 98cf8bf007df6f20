"""The search index projection: one search document per asset, in the read-model database.

The `search_documents` table is the embedded search index itself (filters and filename search in
SQL, on SQLite helped by an FTS5 trigram table; semantic search over the stored vectors through
`infra.search.vectors`), and it is the source that the Elasticsearch mirror
(`infra.search.elastic`) follows:

- each row carries `seq`, the batch that last changed it (strictly increasing in commit order,
  because batches are serialised by the runner's position lock), so a mirror resumes from the
  last `seq` it indexed;
- each row carries the aggregate `version`, which Elasticsearch uses as an external document
  version, so a late, older write never overwrites a newer document;
- `search_generation` holds one id per copy of the tables. `darkroom projections rebuild
  search_index` builds a new copy aside and swaps it in with a new generation; a mirror that sees
  a new generation builds a new index aside and swaps its alias, so searches never see a
  half-built index anywhere. While the copy aside is bulk-loaded it gets the documents alone;
  its FTS5 tables are then filled from them in one statement each, and its indexes made, before
  the catch-up under the lock writes as live does.

Documents hold what filters select on, with the catalog's semantics (`projections.queries`):
normalised camera make, lens key, RAW flag, taken instant; the lower-cased filename and its
reversal (suffix search as a prefix search); the user's description, OCR text, AI caption and
label tags; the latest image embedding, unit length, with its model (float32 bytes, see
`vector_bytes`).

Full-text search (`search_type: "text"`) ranks words: on SQLite an FTS5 table `search_words`
(unicode61 words, diacritics folded) over file name, description, OCR text, caption and tags,
ranked by BM25; on PostgreSQL a `tsvector` expression of the same columns with a GIN index.
"""

from __future__ import annotations

import json
import operator
import sys
import uuid
from array import array
from typing import Any

from domain.camera import clean_lens, lens_key, normalise_make
from infra.database import Transaction
from infra.embedding import normalise
from infra.media_types import RAW_MIME_TYPES
from projections.base import Projection, delete_in, rows_in, handles, ts, upsert
from projections.catalog import city_key, sortable_time
from projections.queries import taken_instant

DOCUMENT_COLUMNS = [
    "asset_id", "doc_id", "seq", "version", "owner_id", "type", "repository_id", "is_raw", "rating",
    "liked", "is_deleted", "original_filename", "filename_lower", "filename_reversed", "upload_time",
    "sort_time", "taken_utc", "camera_make", "lens_model", "lens_key", "description", "ocr_text",
    "caption", "embedding_model", "embedding", "sources", "latitude", "longitude", "country_code",
    "city_key", "place_text", "tags",
]
_JSON = frozenset({"sources"})
_ROW = operator.itemgetter(*DOCUMENT_COLUMNS)
_SOURCES, _EMBEDDING = DOCUMENT_COLUMNS.index("sources"), DOCUMENT_COLUMNS.index("embedding")
_TEXT_COLUMNS = ("filename_lower", "description", "ocr_text", "caption")
# What full-text search reads, in this order (the BM25 weights in infra.search.text follow it).
WORD_COLUMNS = ("original_filename", "description", "ocr_text", "caption", "tags", "place_text")


def words_sql(prefix: str = "") -> str:
    """PostgreSQL: the words full-text search reads, as one expression (the GIN index and the
    query use the same one). File names split at `_`, `-` and `.`."""
    parts = []
    for column in WORD_COLUMNS:
        value = prefix + column
        if column == "original_filename":
            value = f"translate({value}, '_-.', '   ')"
        parts.append(f"coalesce({value}, '')")
    return "to_tsvector('simple'::regconfig, " + " || ' ' || ".join(parts) + ")"


def vector_bytes(vector: list[float] | None) -> bytes | None:
    """A vector as little-endian float32 bytes: a quarter of JSON's size, and read without parsing."""
    if vector is None:
        return None
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def vector_of(stored: Any) -> list[float] | None:
    if stored is None:
        return None
    packed = array("f")
    packed.frombytes(bytes(stored))
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tolist()


def _text_of(doc: dict[str, Any]) -> tuple[str, ...] | None:
    """The row of `search_text` a document has (None: none, as for a deleted asset)."""
    if doc["is_deleted"]:
        return None
    return tuple(doc[c] or "" for c in _TEXT_COLUMNS)


def _words_of(doc: dict[str, Any]) -> tuple[str, ...] | None:
    """The row of `search_words` a document has (None: none, as for a deleted asset)."""
    if doc["is_deleted"]:
        return None
    return tuple(doc[c] or "" for c in WORD_COLUMNS)


def _taken_times(value: Any) -> tuple[str | None, str | None]:
    """`(taken_instant(value), sortable_time(value))`, parsed once when they must agree: a time
    without surrounding spaces that reads as a UTC instant from year 1000 on has the same text
    both ways (isoformat's and ts's, the same conversion to UTC); otherwise each as it is."""
    taken = taken_instant(value)
    if taken is not None and taken[0] != "0" and value == value.strip():
        return taken, taken
    return taken, sortable_time(value)


def doc_id_of(asset_id: str) -> int:
    """A stable 63-bit integer per asset: FTS5 rowids and vector slots are integers."""
    return uuid.UUID(asset_id).int >> 65


class SearchIndexProjection(Projection):
    name = "search_index"
    tables = ("search_documents", "search_generation", "search_text", "search_words")
    # 2: an index per filter column; 3: vectors as float32 bytes; 4: trash (restore, purge),
    # places (position, country, city), or tags and full-text words (two branches); 5: all
    schema_version = 5

    def create_tables(self, tx: Transaction) -> None:
        table = self.t("search_documents")
        tx.execute(
            f"""CREATE TABLE {table} (
                asset_id TEXT PRIMARY KEY,
                doc_id BIGINT NOT NULL,
                seq BIGINT NOT NULL,
                version BIGINT NOT NULL,
                owner_id BIGINT NOT NULL,
                type TEXT NOT NULL,
                repository_id TEXT NOT NULL,
                is_raw BIGINT NOT NULL,
                rating BIGINT NOT NULL,
                liked BIGINT NOT NULL,
                is_deleted BIGINT NOT NULL,
                original_filename TEXT NOT NULL,
                filename_lower TEXT NOT NULL,
                filename_reversed TEXT NOT NULL,
                upload_time TEXT NOT NULL,
                sort_time TEXT NOT NULL,
                taken_utc TEXT,
                camera_make TEXT,
                lens_model TEXT,
                lens_key TEXT,
                description TEXT,
                ocr_text TEXT,
                caption TEXT,
                embedding_model TEXT,
                embedding {"BYTEA" if tx.dialect == "postgres" else "BLOB"},
                sources TEXT NOT NULL,
                latitude DOUBLE PRECISION,
                longitude DOUBLE PRECISION,
                country_code TEXT,
                city_key TEXT,
                place_text TEXT,
                tags TEXT
            )"""
        )
        tx.execute(f"CREATE TABLE {self.t('search_generation')} (generation TEXT NOT NULL)")
        tx.execute(f"INSERT INTO {self.t('search_generation')} (generation) VALUES (?)", (uuid.uuid4().hex,))
        if tx.dialect == "sqlite":
            # Trigram FTS5: any substring of three or more characters is an index lookup.
            # case_sensitive 1 because the text is lower-cased already (exactly as the SQL path).
            tx.execute(
                f"CREATE VIRTUAL TABLE {self.t('search_text')} USING fts5("
                f"{', '.join(_TEXT_COLUMNS)}, tokenize = 'trigram case_sensitive 1')"
            )
            # Words for ranked full-text search: BM25 over whole words, accents folded.
            tx.execute(
                f"CREATE VIRTUAL TABLE {self.t('search_words')} USING fts5("
                f"{', '.join(WORD_COLUMNS)}, tokenize = 'unicode61 remove_diacritics 2')"
            )
        else:
            # PostgreSQL has no FTS5: the same names hold nothing; substring searches use plain
            # SQL and full-text search a GIN index over the words' tsvector.
            tx.execute(f"CREATE TABLE {self.t('search_text')} (unused BIGINT)")
            tx.execute(f"CREATE TABLE {self.t('search_words')} (unused BIGINT)")
            tx.execute(f"CREATE INDEX {self.index_name(table, 'words')} ON {table} USING GIN ({words_sql()})")

    def create_indexes(self, tx: Transaction) -> None:
        table = self.t("search_documents")
        tx.execute(f"CREATE INDEX {self.index_name(table, 'seq')} ON {table} (seq)")
        # Substring searches start from the FTS rowids; semantic search lists candidates by model
        # from the index alone (rows are wide: they hold the vector).
        tx.execute(f"CREATE INDEX {self.index_name(table, 'doc_id')} ON {table} (doc_id)")
        tx.execute(f"CREATE INDEX {self.index_name(table, 'model')} "
                   f"ON {table} (owner_id, is_deleted, embedding_model, doc_id)")
        tx.execute(f"CREATE INDEX {self.index_name(table, 'owner_sort')} "
                   f"ON {table} (owner_id, is_deleted, sort_time, asset_id)")
        # What filters narrow by, each with the listing order behind it (as the catalog has).
        for column in ("camera_make", "lens_key", "rating", "liked", "type", "taken_utc"):
            tx.execute(f"CREATE INDEX {self.index_name(table, column)} "
                       f"ON {table} (owner_id, is_deleted, {column}, sort_time)")
        tx.execute(f"CREATE INDEX {self.index_name(table, 'place')} "
                   f"ON {table} (owner_id, is_deleted, country_code, city_key)")
        tx.execute(f"CREATE INDEX {self.index_name(table, 'latitude')} ON {table} (owner_id, is_deleted, latitude)")
        # Prefix and suffix searches are range scans on these.
        for column in ("filename_lower", "filename_reversed"):
            tx.execute(f"CREATE INDEX {self.index_name(table, column)} "
                       f"ON {table} (owner_id, is_deleted, {column})")
        if self.bulk_loading and tx.dialect == "sqlite":
            # A rebuild's bulk load wrote the documents alone: each FTS5 table is filled from
            # them in one statement (what `_text_of` and `_words_of` give, rowid = doc_id),
            # without a row of Python per document (about half the time of the inserts).
            for name, columns in (("search_text", _TEXT_COLUMNS), ("search_words", WORD_COLUMNS)):
                tx.execute(f"INSERT INTO {self.t(name)} (rowid, {', '.join(columns)}) "
                           f"SELECT doc_id, {', '.join(f'coalesce({c}, {chr(39) * 2})' for c in columns)} "
                           f"FROM {table} WHERE is_deleted = 0")

    def load(self, tx: Transaction, keys: set[str]) -> dict[str, Any]:
        table = self.t("search_documents")
        states: dict[str, Any] = {}
        for row in rows_in(tx, f"SELECT {', '.join(DOCUMENT_COLUMNS)} FROM {table}", "asset_id", keys):
            for column in _JSON:
                row[column] = json.loads(row[column]) if row[column] is not None else None
            row["embedding"] = vector_of(row["embedding"])
            row["_indexed_text"] = _text_of(row)  # what search_text holds for it now
            row["_indexed_words"] = _words_of(row)  # and search_words
            states[row["asset_id"]] = row
        return states

    def save(self, tx: Transaction, states: dict[str, Any]) -> None:
        if not states:
            return
        table = self.t("search_documents")
        top = tx.fetchone(f"SELECT MAX(seq) AS seq FROM {table}")
        seq = int(top["seq"] or 0) + 1 if top else 1
        rows = []
        for key in sorted(states):
            state = states[key]
            state["seq"] = seq
            row = list(_ROW(state))
            if row[_SOURCES] is not None:
                row[_SOURCES] = json.dumps(row[_SOURCES])
            row[_EMBEDDING] = vector_bytes(row[_EMBEDDING])
            rows.append(row)
        upsert(tx, table, DOCUMENT_COLUMNS, "asset_id", rows)
        if self.bulk_loading:
            return  # the FTS5 tables are filled from the documents after the load (create_indexes)
        if tx.dialect == "sqlite":
            # Only documents whose text changed touch the FTS table (most events are ratings,
            # likes, embeddings): an FTS5 delete costs as much as an insert.
            self._sync_fts(tx, "search_text", _TEXT_COLUMNS, states, "_indexed_text", _text_of)
            self._sync_fts(tx, "search_words", WORD_COLUMNS, states, "_indexed_words", _words_of)

    def _sync_fts(self, tx: Transaction, name: str, columns: tuple[str, ...], states: dict[str, Any],
                  marker: str, row_of: Any) -> None:
        """Rewrite the FTS rows (rowid = doc_id) of the documents whose row changed; `marker` keeps
        on each state what the table holds for it now."""
        table = self.t(name)
        stale, fresh = [], []
        for state in states.values():
            before, now = state.get(marker), row_of(state)
            if before == now:
                continue
            if before is not None:
                stale.append(state["doc_id"])
            if now is not None:
                fresh.append((state["doc_id"], *now))
            state[marker] = now
        delete_in(tx, table, "rowid", stale)
        tx.executemany(f"INSERT INTO {table} (rowid, {', '.join(columns)}) "
                       f"VALUES (?, {', '.join('?' * len(columns))})", fresh)

    # -- reducers --------------------------------------------------------------------------------

    @staticmethod
    def _stamp(doc: dict[str, Any] | None, e: Any, **changes: Any) -> dict[str, Any] | None:
        if doc is None:
            return None
        doc.update(changes)
        doc["version"] = e.originator_version
        return doc

    @staticmethod
    def _merge(doc: dict[str, Any]) -> None:
        merged = {**doc["sources"]["extracted"], **doc["sources"]["overrides"]}
        lens = clean_lens(merged.get("lens_model"))
        doc["camera_make"] = normalise_make(merged.get("camera_make"))
        doc["lens_model"] = lens
        doc["lens_key"] = lens_key(lens)

    @handles("Asset.Uploaded")
    def uploaded(self, doc: Any, e: Any) -> dict[str, Any]:
        originator = e.originator_id
        asset_id = str(originator)
        lower = e.original_filename.lower()
        upload_time = ts(e.upload_time)
        return {
            "asset_id": asset_id, "doc_id": originator.int >> 65, "seq": 0,  # doc_id_of, unparsed
            "version": e.originator_version, "owner_id": e.owner_id, "type": e.asset_type,
            "repository_id": e.repository_id,
            "is_raw": 1 if e.mime_type in RAW_MIME_TYPES else 0, "rating": 0, "liked": 0,
            "is_deleted": 0, "original_filename": e.original_filename, "filename_lower": lower,
            "filename_reversed": lower[::-1], "upload_time": upload_time, "sort_time": upload_time,
            "taken_utc": None, "camera_make": None, "lens_model": None, "lens_key": None,
            "description": None, "ocr_text": None, "caption": None, "embedding_model": None,
            "embedding": None, "sources": {"extracted": {}, "overrides": {}}, "tags": None,
            "latitude": None, "longitude": None, "country_code": None, "city_key": None,
            "place_text": None,
        }

    @handles("Asset.RatingChanged")
    def rating_changed(self, doc: Any, e: Any) -> Any:
        return self._stamp(doc, e, rating=e.rating)

    @handles("Asset.LikeChanged")
    def like_changed(self, doc: Any, e: Any) -> Any:
        return self._stamp(doc, e, liked=1 if e.liked else 0)

    @handles("Asset.DescriptionChanged")
    def description_changed(self, doc: Any, e: Any) -> Any:
        return self._stamp(doc, e, description=e.description)

    @handles("Asset.MetadataExtracted")
    def metadata_extracted(self, doc: Any, e: Any) -> Any:
        if doc is None:
            return None
        metadata = e.specific_metadata or {}
        doc["sources"]["extracted"] = {f: metadata[f] for f in ("camera_make", "lens_model") if f in metadata}
        self._merge(doc)
        taken, sort_time = _taken_times(e.taken_time)
        return self._stamp(doc, e, taken_utc=taken, sort_time=sort_time or doc["upload_time"])

    @handles("Asset.MetadataUpdated")
    def metadata_updated(self, doc: Any, e: Any) -> Any:
        if doc is None:
            return None
        changed = {f: e.changes[f] for f in ("camera_make", "lens_model") if f in e.changes}
        doc["sources"]["overrides"] = {**doc["sources"]["overrides"], **changed}
        self._merge(doc)
        return self._stamp(doc, e, description=e.changes.get("description", doc["description"]))

    @handles("Asset.TextRecognised")
    def text_recognised(self, doc: Any, e: Any) -> Any:
        return self._stamp(doc, e, ocr_text=e.text or None)

    @handles("Asset.LabelsRecorded")
    def labels_recorded(self, doc: Any, e: Any) -> Any:
        return self._stamp(doc, e, tags=", ".join(t["label"] for t in e.labels) or None)

    @handles("Asset.CaptionRecorded")
    def caption_recorded(self, doc: Any, e: Any) -> Any:
        return self._stamp(doc, e, caption=e.caption or None)

    @handles("Asset.EmbeddingRecorded")
    def embedding_recorded(self, doc: Any, e: Any) -> Any:
        vector = normalise(e.vector)
        if not any(vector):  # a zero vector has no direction: nothing to compare with
            return self._stamp(doc, e, embedding_model=None, embedding=None)
        return self._stamp(doc, e, embedding_model=e.model, embedding=vector)

    @handles("Asset.Located")
    def located(self, doc: Any, e: Any) -> Any:
        place = e.place or None
        text = ", ".join(v for v in (place.get("city"), place.get("region"), place.get("country")) if v) \
            if place else None
        return self._stamp(doc, e, latitude=e.latitude, longitude=e.longitude,
                           country_code=place["country_code"] if place else None,
                           city_key=city_key(place["city"]) if place else None, place_text=text or None)

    @handles("Asset.Deleted")
    def deleted(self, doc: Any, e: Any) -> Any:
        return self._stamp(doc, e, is_deleted=1)

    @handles("Asset.Restored")
    def restored(self, doc: Any, e: Any) -> Any:
        return self._stamp(doc, e, is_deleted=0)

    @handles("Asset.Purged")
    def purged(self, doc: Any, e: Any) -> Any:
        # The document stays as a deleted tombstone (the Elasticsearch mirror follows rows), with
        # nothing of the asset's content left in it.
        return self._stamp(doc, e, is_deleted=1, description=None, ocr_text=None, caption=None,
                           embedding_model=None, embedding=None)


def generation_of(tx: Transaction) -> str | None:
    """The id of the live copy of the search tables (None before they exist)."""
    row = tx.fetchone("SELECT generation FROM search_generation")
    return str(row["generation"]) if row else None
