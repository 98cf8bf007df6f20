"""The embedded search index: `search_documents` in the read-model database.

Filters are the catalog's SQL (`projections.queries.filter_conditions`, the same columns), so the
answers are the plain SQL path's by construction; what this adds is speed where SQL alone scans:

- on SQLite a substring of three or more characters (filename `contains`, the filename search,
  the literal runs of a glob) is first looked up in the FTS5 trigram table `search_text`;
- prefixes and suffixes are range scans over `filename_lower` and `filename_reversed`.

Those conditions are implied by the exact ones they sit beside, so they only narrow the scan.
Semantic search takes the candidates that pass the filter from SQL and ranks them with
`infra.search.vectors` (the whole filter first, then the top k: pages are never short).
Full-text search ranks the words of file name, description, OCR text, caption and tags: BM25 of
the FTS5 table `search_words` on SQLite, `ts_rank_cd` over a GIN-indexed tsvector on PostgreSQL.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import numpy as np

from infra.database import Database, Transaction
from infra.search.vectors import VectorIndex
from projections.queries import AssetFilter, _NEVER, filename_condition, filter_conditions, parse_glob
from projections.search_index import generation_of, words_sql

# BM25 column weights, in the order of projections.search_index.WORD_COLUMNS: a word in the file
# name or the user's own description says more than one of many OCR'd words.
BM25_WEIGHTS = (2.0, 2.0, 1.0, 1.0, 1.0, 1.0)
MAX_QUERY_WORDS = 32


def query_words(query: str) -> list[str]:
    """The words of a full-text query (lower case, at most MAX_QUERY_WORDS, each once)."""
    # Letters and digits; `_` separates words (file names), as FTS5 and Elasticsearch split them.
    return list(dict.fromkeys(re.findall(r"[^\W_]+", query.lower())))[:MAX_QUERY_WORDS]


def _prefix_range(where: list[str], params: list[Any], column: str, prefix: str) -> None:
    """`column` starts with `prefix`, as a range scan: from the prefix up to (not including) the
    prefix with its last character moved one up, the first text after all that start with it
    (text compares by code point: BINARY on UTF-8). A prefix that ends in the last code point
    has no such bound and gets no range (the exact condition beside it still holds)."""
    if not prefix or prefix[-1] == "\U0010ffff":
        return
    after = ord(prefix[-1]) + 1
    if 0xD800 <= after <= 0xDFFF:  # surrogates are no characters (and not encodable): skip them
        after = 0xE000
    where.append(f"{column} >= ? AND {column} < ?")
    params += [prefix, prefix[:-1] + chr(after)]


# A substring found in at most this many documents (of all owners) is looked up through FTS5
# first; a commoner one is found faster by scanning the owner's assets in listing order.
FTS_SELECTIVE = 2000


def _fts_phrase(text: str) -> str:
    return 'filename_lower : "' + text.replace('"', '""') + '"'


def _literal_runs(tokens: list[tuple[Any, ...]]) -> list[str]:
    runs, current = [], ""
    for token in tokens:
        if token[0] == "lit":
            current += token[1]
        else:
            runs.append(current)
            current = ""
    runs.append(current)
    return [r for r in runs if len(r) >= 3]


def _prefix(tokens: list[tuple[Any, ...]]) -> str:
    out = ""
    for token in tokens:
        if token[0] != "lit":
            break
        out += token[1]
    return out


class EmbeddedIndex:
    name = "embedded"

    def __init__(self, db: Database) -> None:
        self.db = db
        self._vectors: dict[tuple[str, int], VectorIndex] = {}
        self._lock = threading.Lock()

    # -- filters -----------------------------------------------------------------------------

    def _where(self, owner_id: int, f: AssetFilter, filename_contains: str | None,
               tx: Transaction | None = None, album_id: int | None = None) -> tuple[list[str], list[Any]]:
        if album_id is None:
            where = ["owner_id = ?", "is_deleted = 0"]
            params: list[Any] = [owner_id]
        else:  # within an album the caller may see (checked by the access rule): any owner's assets
            where = ["asset_id IN (SELECT asset_id FROM album_assets WHERE album_id = ?)", "is_deleted = 0"]
            params = [album_id]
            if f.owner_id is not None:
                where.append("owner_id = ?")
                params.append(f.owner_id)
        conditions, values = filter_conditions(f, self.db.dialect)
        where += conditions
        params += values
        needles: list[tuple[str, str]] = []
        if f.filename_mode is not None and f.filename_value is not None:
            needles.append((f.filename_mode, f.filename_value.lower()))
        if filename_contains is not None:
            sql, values = filename_condition("contains", filename_contains, self.db.dialect)
            where.append(sql)
            params += values
            needles.append(("contains", filename_contains.lower()))
        if self.db.dialect == "sqlite" and tx is not None and album_id is None:
            phrases: list[str] = []
            for mode, needle in needles:
                phrases += self._accelerate(mode, needle, where, params)
            if phrases:
                query = " AND ".join(phrases)
                probe = tx.fetchone("SELECT COUNT(*) AS n FROM (SELECT rowid FROM search_text "
                                    "WHERE search_text MATCH ? LIMIT ?)", (query, FTS_SELECTIVE + 1))
                if probe is not None and int(probe["n"]) <= FTS_SELECTIVE:
                    # Start from the few FTS rowids: `+` keeps SQLite off the owner indexes.
                    where[0], where[1] = "+owner_id = ?", "+is_deleted = 0"
                    where.append("doc_id IN (SELECT rowid FROM search_text WHERE search_text MATCH ?)")
                    params.append(query)
        return where, params

    @staticmethod
    def _accelerate(mode: str, needle: str, where: list[str], params: list[Any]) -> list[str]:
        """Add range conditions for prefixes and suffixes; return the FTS5 phrases that every
        match contains (literal runs of three or more characters)."""
        runs: list[str] = []
        if mode == "contains":
            runs = [needle] if len(needle) >= 3 else []
        elif mode == "startswith":
            _prefix_range(where, params, "filename_lower", needle)
        elif mode == "endswith":
            _prefix_range(where, params, "filename_reversed", needle[::-1])
        elif mode == "matches":
            tokens = parse_glob(needle)
            if any(t[0] == _NEVER for t in tokens):
                return []
            runs = _literal_runs(tokens)
            prefix = _prefix(tokens)
            if prefix:
                _prefix_range(where, params, "filename_lower", prefix)
                runs = []  # the prefix range narrows well enough
        return [_fts_phrase(r) for r in runs]

    def filter(self, owner_id: int, f: AssetFilter, limit: int, offset: int,
               filename_contains: str | None = None) -> tuple[list[tuple[str, float | None]], int]:
        """One page of (asset_id, None) newest first, and the total that pass."""
        if f.owner_id is not None and f.owner_id != owner_id:
            return [], 0
        with self.db.reader() as tx:
            if tx.dialect == "postgres":
                tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            where, params = self._where(owner_id, f, filename_contains, tx)
            clause = " AND ".join(where)
            counted = tx.fetchone(f"SELECT COUNT(*) AS n FROM search_documents WHERE {clause}", params)
            total = int(counted["n"]) if counted else 0
            rows = []
            if offset < total:
                rows = tx.fetchall(
                    f"SELECT asset_id FROM search_documents WHERE {clause} "
                    "ORDER BY sort_time DESC, asset_id DESC LIMIT ? OFFSET ?", (*params, limit, offset))
        return [(r["asset_id"], None) for r in rows], total

    # -- full text ---------------------------------------------------------------------------

    def text(self, owner_id: int, f: AssetFilter, query: str, limit: int,
             offset: int, album_id: int | None = None) -> tuple[list[tuple[str, float | None]], int]:
        """One page of (asset_id, score) best match first (any of the query's words; more and
        rarer words rank higher), and how many matched. With `album_id`, among that album's assets
        instead of the owner's."""
        words = query_words(query)
        if not words or album_id is None and f.owner_id is not None and f.owner_id != owner_id:
            return [], 0
        where, params = self._where(owner_id, f, None, album_id=album_id)
        clause = " AND ".join(where)
        with self.db.reader() as tx:
            if tx.dialect == "postgres":
                tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                terms = " | ".join("'" + w.replace("'", "''") + "'" for w in words)
                source = (f"(SELECT asset_id, ts_rank_cd({words_sql()}, q) AS score FROM search_documents, "
                          f"to_tsquery('simple', ?) q WHERE {words_sql()} @@ q AND {clause}) hits")
                args: list[Any] = [terms, *params]
            else:
                match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
                weights = ", ".join(str(w) for w in BM25_WEIGHTS)
                # The filter runs on the documents alone (FTS5 columns share their names).
                source = (f"(SELECT d.asset_id AS asset_id, -w.rank AS score FROM "
                          f"(SELECT asset_id, doc_id FROM search_documents WHERE {clause}) d JOIN "
                          f"(SELECT rowid AS doc_id, bm25(search_words, {weights}) AS rank FROM search_words "
                          f"WHERE search_words MATCH ?) w ON w.doc_id = d.doc_id) hits")
                args = [*params, match]
            counted = tx.fetchone(f"SELECT COUNT(*) AS n FROM {source}", args)
            total = int(counted["n"]) if counted else 0
            rows = tx.fetchall(f"SELECT asset_id, score FROM {source} ORDER BY score DESC, asset_id "
                               "LIMIT ? OFFSET ?", (*args, limit, offset)) if offset < total else []
        return [(r["asset_id"], float(r["score"])) for r in rows], total

    # -- semantic ----------------------------------------------------------------------------

    def _vector_index(self, tx: Transaction, model: str, dimension: int) -> VectorIndex:
        """The vectors of `model` with the query's `dimension` (a model id may have named vectors
        of another length before: those are not comparable with this query)."""
        generation = generation_of(tx) or ""
        with self._lock:
            index = self._vectors.get((model, dimension))
            if index is None or index.generation != generation:
                index = self._vectors[(model, dimension)] = VectorIndex(generation, model, dimension)
        with index.lock:
            top = tx.fetchone("SELECT MAX(seq) AS seq FROM search_documents")
            head = int(top["seq"] or 0) if top else 0
            if head > index.seq:
                rows = tx.fetchall(
                    "SELECT doc_id, owner_id, is_deleted, embedding_model, embedding FROM search_documents "
                    "WHERE seq > ? AND seq <= ? ORDER BY seq", (index.seq, head))
                index.update([
                    (int(r["doc_id"]), int(r["owner_id"]), bool(r["is_deleted"]),
                     np.frombuffer(bytes(r["embedding"]), dtype="<f4")
                     if r["embedding"] is not None and r["embedding_model"] == model else None)
                    for r in rows], head)
        return index

    def semantic(self, owner_id: int, f: AssetFilter, vector: list[float], model: str,
                 limit: int, offset: int, album_id: int | None = None) -> tuple[list[tuple[str, float | None]], int]:
        """One page of (asset_id, cosine similarity) best first among the assets that pass the
        filter and have an embedding of `model`, and how many those are. With `album_id`, among
        that album's assets instead of the owner's."""
        if album_id is None and f.owner_id is not None and f.owner_id != owner_id:
            return [], 0
        with self.db.reader() as tx:
            if tx.dialect == "postgres":
                tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            where, params = self._where(owner_id, f, None, tx, album_id)
            index = self._vector_index(tx, model, len(vector))
            if len(where) == 2 and album_id is None:  # no filter but the owner's: the vector index knows those slots
                with index.lock:
                    slots = index.owner_slots(owner_id)
                    total = len(slots)
                    best = index.nearest_slots(vector, slots, offset + limit)[offset:]
            else:
                where.append("embedding_model = ?")
                params.append(model)
                doc_ids = [int(r["doc_id"]) for r in tx.fetchall(
                    f"SELECT doc_id FROM search_documents WHERE {' AND '.join(where)}", params)]
                with index.lock:
                    # Ranked (and counted) are the candidates with a vector of the query's length.
                    slots = index.slots_of(doc_ids)
                    total = len(slots)
                    best = index.nearest_slots(vector, slots, offset + limit)[offset:]
            asset_of: dict[int, str] = {}
            if best:
                asset_of = {int(r["doc_id"]): r["asset_id"] for r in tx.fetchall(
                    f"SELECT doc_id, asset_id FROM search_documents WHERE doc_id IN ({', '.join('?' * len(best))})",
                    [d for d, _ in best])}
        return [(asset_of[d], score) for d, score in best if d in asset_of], total
