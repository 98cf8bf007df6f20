"""The Elasticsearch search index: a mirror of `search_documents` behind an alias.

- One index per generation of the search tables, named `<prefix>-assets-m<mapping version>-<generation>-<n>`,
  reached through the alias `<prefix>-assets`. Searches go to the alias only.
- `catch_up` indexes the rows changed since the last `seq` it indexed, in bulk, with the
  aggregate version as an external version (`external_gte`): a late write of an older state is
  refused by Elasticsearch itself, so an older update never overwrites a newer one.
- When the tables are rebuilt (a new generation), or the alias is missing (a wiped node), it
  builds a new index aside from every row, then swaps the alias in one `_aliases` call and drops
  the old index: a search sees the old complete index or the new complete one, never a half one.
- Its position (`generation`, `seq`, index) lives in the read-model table `search_mirrors`.

Mapping: keywords for filters (owner, type, repository, make, lens key, taken instant as the same
fixed-width UTC text SQL compares), the lower-cased filename as a keyword (prefixes as `prefix`
queries, substrings as `wildcard`, globs as anchored `regexp`: each runs an automaton over the
field's term dictionary, once per segment, not over documents), its reversal (suffixes as
prefixes), text fields for description, OCR text and caption, and a `dense_vector` per vector length
(`vectors.d<dims>`; HNSW, dot product over unit vectors, not quantised so scores equal the exact
ones).

The Maven Central distribution (integ-test-zip) carries only the server's own modules: no
`analysis-common` (so no ngram tokenizer for a trigram subfield) and no x-pack `wildcard` field
type, which a full distribution would use for infix search on many distinct names.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError, helpers

from domain.camera import lens_key, normalise_make
from infra.database import Database
from infra.settings import Settings
from projections.queries import _ANY, _NEVER, _STAR, AssetFilter, parse_glob
from projections.search_index import generation_of, vector_of

log = logging.getLogger("darkroom.search")

MIRRORS_TABLE = "search_mirrors"
MAX_WINDOW = 100_000  # deepest page (offset + limit) served from Elasticsearch
MAX_KNN = 10_000  # Elasticsearch's own limit on k and num_candidates
WINDOW_ROWS = 5_000

INDEX_SETTINGS: dict[str, Any] = {
    "number_of_shards": 1,
    "number_of_replicas": 0,
    "max_result_window": MAX_WINDOW,
}
# Lucene refuses a whole document holding a keyword term over 32766 bytes (which would stop the
# mirror on it for good): longer values (an EXIF lens name has no length limit) are kept in the
# source but not indexed. 8191 characters are at most 32764 bytes; no filter can name a longer
# value (the API caps camera_make and lens far below), so answers stay those of SQL.
KEYWORD: dict[str, Any] = {"type": "keyword", "ignore_above": 8191}
MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "asset_id": KEYWORD,
        "owner_id": {"type": "long"},
        "type": KEYWORD,
        "repository_id": KEYWORD,
        "is_raw": {"type": "boolean"},
        "rating": {"type": "integer"},
        "liked": {"type": "boolean"},
        "is_deleted": {"type": "boolean"},
        "filename_lower": KEYWORD,
        "filename_reversed": KEYWORD,
        "sort_time": KEYWORD,
        "taken_utc": KEYWORD,
        "camera_make": KEYWORD,
        "lens_model": KEYWORD,
        "lens_key": KEYWORD,
        "description": {"type": "text"},
        "ocr_text": {"type": "text"},
        "caption": {"type": "text"},
        # Full-text search: the file name as words (split at _ - .) and the label tags.
        "filename_text": {"type": "text"},
        "tags": {"type": "text"},
        "embedding_model": KEYWORD,
        "location": {"type": "geo_point"},
        "country_code": KEYWORD,
        "city_key": KEYWORD,
        "place_text": {"type": "text"},
        # The embedding goes into `vectors.d<dims>`: a dense_vector field per length, mapped on
        # first use by the template below. One field for every vector would take its dims from
        # the first vector indexed and refuse any other length for good (another model, or a
        # model replaced under the same name), which would stall the mirror on that document.
        "vectors": {"type": "object", "dynamic": True},
    },
    "dynamic_templates": [
        {"vectors": {"path_match": "vectors.*",
                     "mapping": {"type": "dense_vector", "index": True, "similarity": "dot_product",
                                 "index_options": {"type": "hnsw", "m": 16, "ef_construction": 100}}}},
    ],
}
# An index of ours behind no alias and older than this is a rebuild that never finished.
LEFTOVER_AGE_SECONDS = 6 * 3600.0
# In index names: an index made with an older MAPPING is rebuilt, not written to.
# 2: a vector field per length; 3: keywords ignore_above; 4: places, or filename_text and tags
# (two branches that each said 4); 5: all of them
MAPPING_VERSION = 5
# BM25 field boosts of full-text search (as the embedded index weighs its columns).
TEXT_FIELDS = ["filename_text^2", "description^2", "ocr_text", "caption", "tags", "place_text"]


def vector_field(dimension: int) -> str:
    return f"vectors.d{dimension}"


def _regexp(tokens: list[tuple[Any, ...]]) -> str:
    """A glob's tokens as a Lucene regular expression (anchored by Lucene); every literal is
    escaped with a backslash, which Lucene accepts before any character, in classes too."""

    def lit(c: str) -> str:
        return c if c.isalnum() and c.isascii() else "\\" + c

    parts = []
    for token in tokens:
        kind = token[0]
        if kind == _STAR:
            parts.append(".*")
        elif kind == _ANY:
            parts.append(".")
        elif kind == "lit":
            parts.append(lit(token[1]))
        else:
            _, negated, singles, ranges = token
            body = "".join(f"{lit(lo)}-{lit(hi)}" for lo, hi in ranges) + "".join(lit(c) for c in sorted(singles))
            parts.append("[" + ("^" if negated else "") + body + "]")
    return "".join(parts)


def _wildcard_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def filename_clause(mode: str, value: str) -> dict[str, Any]:
    """The Elasticsearch clause for a filename condition, with `projections.queries` semantics."""
    needle = value.lower()
    if mode == "contains":
        if not needle:
            return {"match_all": {}}
        return {"wildcard": {"filename_lower": {"value": f"*{_wildcard_escape(needle)}*"}}}
    if mode == "startswith":
        return {"prefix": {"filename_lower": needle}} if needle else {"match_all": {}}
    if mode == "endswith":
        return {"prefix": {"filename_reversed": needle[::-1]}} if needle else {"match_all": {}}
    if mode != "matches":
        raise ValueError(f"unknown filename mode {mode!r}")
    tokens = parse_glob(needle)
    if any(t[0] == _NEVER for t in tokens):
        return {"match_none": {}}
    return {"regexp": {"filename_lower": {"value": _regexp(tokens), "flags": "NONE",
                                          "max_determinized_states": 100_000}}}


def filter_clauses(owner_id: int, f: AssetFilter, filename_contains: str | None = None) -> list[dict[str, Any]]:
    """The bool `filter` clauses of a filter, scoped to one owner's live assets."""
    out: list[dict[str, Any]] = [{"term": {"owner_id": owner_id}}, {"term": {"is_deleted": False}}]
    if f.owner_id is not None and f.owner_id != owner_id:
        out.append({"match_none": {}})
    if f.repository_id is not None:
        out.append({"term": {"repository_id": f.repository_id}})
    if f.type is not None:
        out.append({"term": {"type": f.type}})
    if f.raw is not None:
        out.append({"term": {"is_raw": f.raw}})
    if f.rating is not None:
        out.append({"term": {"rating": f.rating}})
    if f.liked is not None:
        out.append({"term": {"liked": f.liked}})
    if f.filename_mode is not None and f.filename_value is not None:
        out.append(filename_clause(f.filename_mode, f.filename_value))
    if filename_contains is not None:
        out.append(filename_clause("contains", filename_contains))
    if f.taken_from is not None or f.taken_to is not None:
        bounds = {}
        if f.taken_from is not None:
            bounds["gte"] = f.taken_from
        if f.taken_to is not None:
            bounds["lte"] = f.taken_to
        out.append({"range": {"taken_utc": bounds}})
    if f.camera_make is not None:
        make = normalise_make(f.camera_make)
        out.append({"term": {"camera_make": make}} if make is not None else {"match_none": {}})
    if f.lens is not None:
        key = lens_key(f.lens)
        out.append({"term": {"lens_key": key}} if key is not None else {"match_none": {}})
    if f.country_code is not None:
        out.append({"term": {"country_code": f.country_code.upper()}})
    if f.city is not None:
        out.append({"term": {"city_key": f.city.casefold()}})
    if f.near is not None:
        out.append({"geo_distance": {"distance": f"{f.near.radius_km}km", "distance_type": "arc",
                                     "location": {"lat": f.near.lat, "lon": f.near.lon}}})
    return out


def document(row: dict[str, Any]) -> dict[str, Any]:
    doc = {
        "asset_id": row["asset_id"], "owner_id": row["owner_id"], "type": row["type"],
        "repository_id": row["repository_id"], "is_raw": bool(row["is_raw"]),
        "rating": row["rating"], "liked": bool(row["liked"]), "is_deleted": bool(row["is_deleted"]),
        "filename_lower": row["filename_lower"], "filename_reversed": row["filename_reversed"],
        "sort_time": row["sort_time"], "taken_utc": row["taken_utc"],
        "camera_make": row["camera_make"], "lens_model": row["lens_model"], "lens_key": row["lens_key"],
        "description": row["description"], "ocr_text": row["ocr_text"], "caption": row["caption"],
        "filename_text": re.sub(r"[_.\-]+", " ", row["original_filename"] or ""), "tags": row.get("tags"),
        "embedding_model": row["embedding_model"],
        "country_code": row["country_code"], "city_key": row["city_key"], "place_text": row["place_text"],
    }
    if row["latitude"] is not None and row["longitude"] is not None:
        doc["location"] = {"lat": row["latitude"], "lon": row["longitude"]}
    vector = vector_of(row["embedding"])
    if vector is not None:
        doc["vectors"] = {vector_field(len(vector)).split(".", 1)[1]: vector}
    return doc


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


class ElasticIndex:
    name = "elasticsearch"

    def __init__(self, settings: Settings, db: Database) -> None:
        self.url = settings.elasticsearch_url
        self.alias = f"{settings.elasticsearch_prefix}-assets"
        self.db = db
        self.client = Elasticsearch(self.url, request_timeout=10, max_retries=0, retry_on_timeout=False)
        self.error: str | None = None  # the last failure, until a catch-up succeeds
        self.indexed = 0
        self.ready = False  # an index stands behind the alias, caught up at least once
        self._known: tuple[str, str] | None = None  # (generation, index) the alias was seen on
        self._lock = threading.Lock()
        # (generation, seq) the last finished catch-up indexed up to: a caller whose write is
        # covered by it needs no round trip of its own (concurrent uploads share one bulk).
        self._covered: tuple[str, int] | None = None
        try:
            with db.transaction() as tx:
                if not db.table_exists(tx, MIRRORS_TABLE):
                    tx.execute(f"CREATE TABLE {MIRRORS_TABLE} (name TEXT PRIMARY KEY, generation TEXT NOT NULL, "
                               "seq BIGINT NOT NULL, index_name TEXT NOT NULL)")
        except Exception:
            # Another process (the server and a worker start together) made it meanwhile.
            with db.reader() as tx:
                if not db.table_exists(tx, MIRRORS_TABLE):
                    self.client.close()
                    raise

    @property
    def healthy(self) -> bool:
        return self.error is None

    # -- following search_documents ------------------------------------------------------------

    def _state(self) -> dict[str, Any] | None:
        return self.db.query_one(f"SELECT generation, seq, index_name FROM {MIRRORS_TABLE} WHERE name = ?",
                                 (self.alias,))

    def _save_state(self, generation: str, seq: int, index_name: str) -> None:
        with self.db.transaction() as tx:
            if not tx.execute(f"UPDATE {MIRRORS_TABLE} SET generation = ?, seq = ?, index_name = ? WHERE name = ?",
                              (generation, seq, index_name, self.alias)):
                tx.execute(f"INSERT INTO {MIRRORS_TABLE} (name, generation, seq, index_name) VALUES (?, ?, ?, ?)",
                           (self.alias, generation, seq, index_name))

    def _alias_target(self) -> str | None:
        try:
            found = self.client.indices.get_alias(name=self.alias)
        except NotFoundError:
            return None
        return next(iter(found), None)

    def _windows(self, after: int, generation: str) -> Iterator[tuple[list[dict[str, Any]], int]]:
        """Rows changed after `after`, in windows that end on a whole `seq`."""
        while True:
            with self.db.reader() as tx:
                if generation_of(tx) != generation:
                    raise RuntimeError("the search tables were swapped for a rebuilt copy meanwhile")
                cut = tx.fetchone("SELECT seq FROM search_documents WHERE seq > ? ORDER BY seq LIMIT 1 OFFSET ?",
                                  (after, WINDOW_ROWS))
                if cut is None:
                    rows = tx.fetchall("SELECT * FROM search_documents WHERE seq > ? ORDER BY seq", (after,))
                else:
                    bound = int(cut["seq"])
                    op = "<" if bound > after + 1 else "<="
                    rows = tx.fetchall(f"SELECT * FROM search_documents WHERE seq > ? AND seq {op} ? ORDER BY seq",
                                       (after, bound))
            if not rows:
                return
            after = int(rows[-1]["seq"])
            yield rows, after

    def _bulk(self, index: str, rows: list[dict[str, Any]], refresh: bool, require_alias: bool = False) -> None:
        actions = ({"_op_type": "index", "_index": index, "_id": r["asset_id"], "_version": int(r["version"]),
                    "_version_type": "external_gte", "_source": document(r)} for r in rows)
        # require_alias: were the alias gone (a wiped node), a write must fail, not auto-create an
        # index of that name with a guessed mapping.
        extra = {"require_alias": True} if require_alias else {}
        _, errors = helpers.bulk(self.client, actions, raise_on_error=False, refresh=refresh,
                                 chunk_size=1000, max_chunk_bytes=20 * 1024 * 1024, **extra)
        # 409: Elasticsearch holds a newer version of that document already, which is the point.
        failed = [e for e in errors if next(iter(e.values())).get("status") != 409]
        if failed:
            raise RuntimeError(f"Elasticsearch refused {len(failed)} documents, e.g. {str(failed[0])[:1000]}")
        self.indexed += len(rows)

    def _covers(self, upto: tuple[str, int]) -> bool:
        covered = self._covered
        return covered is not None and covered[0] == upto[0] and covered[1] >= upto[1]

    def written(self) -> tuple[str, int] | None:
        """The search tables' generation and highest `seq` now: what a catch-up must reach for
        a reader to see every write made so far."""
        with self.db.reader() as tx:
            generation = generation_of(tx)
            top = tx.fetchone("SELECT MAX(seq) AS seq FROM search_documents")
        return (generation, int(top["seq"] or 0) if top else 0) if generation else None

    def catch_up(self, wait: float = -1, upto: tuple[str, int] | None = None) -> int:
        """Index what changed since the last call (or build a new index and swap it in); returns
        the number of documents sent. Raises when Elasticsearch cannot be reached. `wait`: how
        long to wait for another thread's catch-up to finish (-1: as long as it takes); when
        that runs out, nothing is done here (that thread is bringing the index along). `upto`
        (from `written`): nothing is done when a finished catch-up already reached it."""
        if upto is not None and self._covers(upto):
            return 0
        if not self._lock.acquire(timeout=wait):
            return 0
        try:
            if upto is not None and self._covers(upto):
                return 0  # the catch-up we waited for took our write along
            try:
                count = self._catch_up()
            except Exception as exc:
                self._known = None  # look at the alias again next time
                if self.error is None:
                    log.warning("search index: Elasticsearch at %s failed (%s); filters and filename "
                                "search answer from SQL until it is back", self.url, describe(exc))
                self.error = describe(exc)
                raise
            if self.error is not None:
                log.warning("search index: Elasticsearch at %s is back", self.url)
            self.error = None
            self.ready = True
            return count
        finally:
            self._lock.release()

    def _catch_up(self) -> int:
        with self.db.reader() as tx:
            generation = generation_of(tx)
        if generation is None:
            return 0
        state = self._state()
        if state is None or self._known != (generation, state["index_name"]):
            target = self._alias_target()
            if (state is None or state["generation"] != generation or target is None
                    or target != state["index_name"] or not target.startswith(self._name_prefix())):
                return self.rebuild(generation)
            self._known = (generation, target)
        target = state["index_name"]
        sent, seq = 0, int(state["seq"])
        for rows, seq in self._windows(seq, generation):
            self._bulk(self.alias, rows, refresh=True, require_alias=True)
            sent += len(rows)
            self._save_state(generation, seq, target)
        self._covered = (generation, seq)
        return sent

    def rebuild(self, generation: str | None = None) -> int:
        """Build a new index aside from every row, then swap the alias to it."""
        if generation is None:
            with self.db.reader() as tx:
                generation = generation_of(tx) or ""
        name = f"{self._name_prefix()}{generation[:12]}-{uuid.uuid4().hex[:8]}"
        self.client.indices.create(index=name, settings={**INDEX_SETTINGS, "refresh_interval": "-1"},
                                   mappings={**MAPPING, "_meta": {"build": name}})
        started = time.monotonic()
        sent, seq = 0, 0
        try:
            for rows, seq in self._windows(0, generation):
                self._bulk(name, rows, refresh=False)
                sent += len(rows)
            self.client.indices.put_settings(index=name, settings={"refresh_interval": "1s"})
            self.client.indices.refresh(index=name)
            # Deleted under us and re-created by a bulk write with a guessed mapping (a node that
            # auto-creates indices), it would hold part of the documents: never swap that in.
            meta = self.client.indices.get_mapping(index=name)[name]["mappings"].get("_meta", {})
            if meta.get("build") != name:
                raise RuntimeError(f"index {name} was deleted while it was being built; building again")
            old = self.client.indices.get_alias(name=self.alias, ignore_unavailable=True) if self._alias_target() else {}
            actions: list[dict[str, Any]] = [{"remove": {"index": o, "alias": self.alias}} for o in old]
            actions.append({"add": {"index": name, "alias": self.alias}})
            self.client.indices.update_aliases(actions=actions)
        except Exception:
            self.client.options(ignore_status=404).indices.delete(index=name)
            raise
        for o in old:
            self.client.options(ignore_status=404).indices.delete(index=o)
        self._save_state(generation, seq, name)
        self._known = (generation, name)
        log.info("search index: built %s with %d documents in %.1f s and moved %s to it",
                 name, sent, time.monotonic() - started, self.alias)
        try:
            self._drop_leftovers(keep=name)
        except Exception as exc:  # garbage collection only: the next rebuild tries again
            log.warning("search index: could not delete leftover indices (%s)", describe(exc))
        return sent

    def _name_prefix(self) -> str:
        return f"{self.alias}-m{MAPPING_VERSION}-"

    def _drop_leftovers(self, keep: str) -> list[str]:
        """Delete indices of this alias left by rebuilds that never finished (a process killed
        mid-build): named as `rebuild` names them (any mapping version), behind no alias, and
        created more than LEFTOVER_AGE_SECONDS ago — so another replica's build in progress is
        left alone (were it deleted, its own check before the swap refuses the remains).
        Returns the names deleted."""
        ours = re.compile(rf"^{re.escape(self.alias)}-(m\d+-)?[0-9a-f]{{1,12}}-[0-9a-f]{{8}}$")
        found = dict(self.client.options(ignore_status=404).indices.get_alias(index=f"{self.alias}-*"))
        candidates = [name for name, info in found.items()
                      if name != keep and ours.match(name) and not info.get("aliases")]
        if not candidates:
            return []
        # By pattern, not by a list of names: one gone meanwhile would 404 the whole call, and
        # many names would overflow the request line.
        created = dict(self.client.indices.get_settings(index=f"{self.alias}-*", name="index.creation_date",
                                                        ignore_unavailable=True))
        cutoff_ms = (time.time() - LEFTOVER_AGE_SECONDS) * 1000
        leftovers = [name for name in candidates if name in created
                     and int(created[name]["settings"]["index"]["creation_date"]) < cutoff_ms]
        for name in leftovers:
            self.client.options(ignore_status=404).indices.delete(index=name)
        if leftovers:
            log.info("search index: deleted %d index(es) left by unfinished rebuilds: %s",
                     len(leftovers), ", ".join(leftovers))
        return leftovers

    def lag(self) -> int | None:
        state = self._state()
        top = self.db.query_one("SELECT MAX(seq) AS seq FROM search_documents")
        if state is None or top is None:
            return None
        return max(0, int(top["seq"] or 0) - int(state["seq"]))

    def drop(self) -> None:
        """Remove the alias's indices and the position (tests, operators)."""
        self.client.options(ignore_status=404).indices.delete(index=f"{self.alias}-*")
        with self.db.transaction() as tx:
            tx.execute(f"DELETE FROM {MIRRORS_TABLE} WHERE name = ?", (self.alias,))

    # -- queries -----------------------------------------------------------------------------

    def filter(self, owner_id: int, f: AssetFilter, limit: int, offset: int,
               filename_contains: str | None = None) -> tuple[list[tuple[str, float | None]], int] | None:
        """Like `EmbeddedIndex.filter`; None when the page lies deeper than Elasticsearch pages."""
        query = {"bool": {"filter": filter_clauses(owner_id, f, filename_contains)}}
        deep = offset + limit > MAX_WINDOW
        found = self.client.search(
            index=self.alias, query=query, sort=[{"sort_time": "desc"}, {"asset_id": "desc"}],
            from_=0 if deep else offset, size=0 if deep else limit, track_total_hits=True, source=False,
        )
        total = int(found["hits"]["total"]["value"])
        if deep:
            return ([], total) if offset >= total else None
        return [(h["_id"], None) for h in found["hits"]["hits"]], total

    def text(self, owner_id: int, f: AssetFilter, words: list[str], limit: int,
             offset: int) -> tuple[list[tuple[str, float | None]], int] | None:
        """Full-text search ranked by BM25 over the text fields (any word); None when the page
        lies deeper than Elasticsearch pages."""
        if offset + limit > MAX_WINDOW:
            return None
        query = {"bool": {"filter": filter_clauses(owner_id, f),
                          "must": {"multi_match": {"query": " ".join(words), "fields": TEXT_FIELDS,
                                                   "operator": "or"}}}}
        found = self.client.search(index=self.alias, query=query, from_=offset, size=limit,
                                   sort=[{"_score": "desc"}, {"asset_id": "asc"}], track_total_hits=True,
                                   source=False)
        total = int(found["hits"]["total"]["value"])
        return [(h["_id"], float(h["_score"])) for h in found["hits"]["hits"]], total

    def semantic(self, owner_id: int, f: AssetFilter, vector: list[float], model: str,
                 limit: int, offset: int) -> tuple[list[tuple[str, float | None]], int] | None:
        """Filtered kNN: the filter goes into the kNN search itself (Lucene pre-filters the HNSW
        walk), so the top k are the top k of the filtered set. None when k is beyond
        Elasticsearch's limit."""
        field = vector_field(len(vector))
        # Ranked (and counted) are the documents with a vector of this model and the query's length.
        clauses = filter_clauses(owner_id, f) + [{"term": {"embedding_model": model}},
                                                 {"exists": {"field": field}}]
        total = int(self.client.count(index=self.alias, query={"bool": {"filter": clauses}})["count"])
        k = offset + limit
        if offset >= total:
            return [], total
        if k > MAX_KNN:
            return None
        found = self.client.search(
            index=self.alias,
            knn={"field": field, "query_vector": vector, "k": k,
                 "num_candidates": min(MAX_KNN, max(100, 2 * k)), "filter": {"bool": {"filter": clauses}}},
            from_=offset, size=limit, source=False,
        )
        # dot_product scores are (1 + cosine) / 2; answer the cosine itself, as the embedded index does.
        return [(h["_id"], 2 * float(h["_score"]) - 1) for h in found["hits"]["hits"]], total

    def close(self) -> None:
        self.client.close()
