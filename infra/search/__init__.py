"""Search: filters, filename search and semantic search over the search index projection.

`SearchService` answers from Elasticsearch when `settings.elasticsearch_url` is set, and from the
embedded index (`search_documents` in the read-model database, FTS5 + faiss) otherwise. When
Elasticsearch fails, filters and filename search answer from the catalog's plain SQL and
semantic search from the embedded index: degraded (logged, and shown by `/health`), never down.
The mirror catches up when Elasticsearch is back (the projection daemon keeps calling it).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from infra.database import Database
from infra.embedding import Embedder, EmbedderUnavailable, normalise
from infra.search.embedded import EmbeddedIndex
from infra.settings import Settings
from projections.base import chunks
from projections.catalog import CATALOG_COLUMNS, Catalog, asset_from_row
from projections.queries import AssetFilter

log = logging.getLogger("darkroom.search")

Hits = list[tuple[str, float | None]]


def assets_by_id(db: Database, owner_id: int | None, asset_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The owner's live catalog assets among these ids (an index answers ids; the catalog the
    rest); any owner's with `owner_id` None (ids already scoped by the access rule, as those of
    an album shared with the caller). Deleted ones are left out: Elasticsearch may not have the
    delete yet."""
    found: dict[str, dict[str, Any]] = {}
    owner_sql, owner_args = ("owner_id = ? AND ", (owner_id,)) if owner_id is not None else ("", ())
    for part in chunks(list(asset_ids)):
        rows = db.query(f"SELECT {CATALOG_COLUMNS} FROM catalog_assets WHERE {owner_sql}is_deleted = 0 "
                        f"AND asset_id IN ({', '.join('?' * len(part))})", (*owner_args, *part))
        found.update((r["asset_id"], asset_from_row(r)) for r in rows)
    return found


class SearchUnavailable(Exception):
    """Semantic search was asked for and no embedder is configured."""


class SearchService:
    def __init__(self, settings: Settings, db: Database, catalog: Catalog, embedder: Embedder | None) -> None:
        self.db = db
        self.catalog = catalog
        self.embedder = embedder
        self.embedded = EmbeddedIndex(db)
        self.elastic: Any = None
        if settings.elasticsearch_url:
            from infra.search.elastic import ElasticIndex

            self.elastic = ElasticIndex(settings, db)
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def backend(self) -> str:
        return "elasticsearch" if self.elastic is not None else "embedded"

    def start_following(self, interval: float = 0.5) -> None:
        """Follow the search tables into Elasticsearch in a thread of its own (with `serve` and
        `projections run`): retried every couple of seconds while Elasticsearch is down."""
        if self.elastic is None or self._thread is not None:
            return

        def follow() -> None:
            while not self._stop.is_set():
                try:
                    self.elastic.catch_up()
                    self._stop.wait(interval)
                except Exception:  # logged and shown by health; keep trying
                    self._stop.wait(2.0)

        self._thread = threading.Thread(target=follow, name="search-mirror", daemon=True)
        self._thread.start()

    def catch_up_quietly(self) -> None:
        """Bring Elasticsearch up to the search tables (read your writes); a failure only marks
        it down (searches then answer from SQL). While it is down, the following thread (when
        there is one) retries, so commands never wait on a dead node; without one, this retries
        at most every two seconds."""
        if self.elastic is None or time.monotonic() < self._retry_at:
            return
        if self._thread is not None and not (self.elastic.healthy and self.elastic.ready):
            return  # down, or the first index is being built there: SQL answers meanwhile
        try:
            # With a following thread, wait for it a little (its incremental catch-up is quick),
            # never for a whole rebuild of the index (a new generation) that it may be running.
            self.elastic.catch_up(wait=-1 if self._thread is None else 2.0, upto=self.elastic.written())
        except Exception:
            self._retry_at = time.monotonic() + 2.0

    def _use_elastic(self) -> bool:
        if self.elastic is None:
            return False
        if not (self.elastic.ready and self.elastic.healthy):
            self.catch_up_quietly()  # back (or first built) since the last look?
        return bool(self.elastic.ready and self.elastic.healthy)

    def _fail(self, exc: Exception) -> None:
        from elasticsearch import BadRequestError

        from infra.search.elastic import describe

        if isinstance(exc, BadRequestError):  # this query (a glob too complex for Lucene), not the node
            log.info("search: Elasticsearch refused a query (%s); answering it from SQL", describe(exc))
            return
        log.warning("search: Elasticsearch query failed (%s); answering from SQL", describe(exc))
        self.elastic.error = describe(exc)
        self._retry_at = time.monotonic() + 2.0

    def _assets(self, owner_id: int | None, hits: Hits) -> list[dict[str, Any]]:
        found = assets_by_id(self.db, owner_id, [asset_id for asset_id, _ in hits])
        out = []
        for asset_id, score in hits:
            asset = found.get(asset_id)
            if asset is None:
                continue
            if score is not None:
                asset = {**asset, "score": score}
            out.append(asset)
        return out

    def filter(self, owner_id: int, f: AssetFilter, limit: int, offset: int,
               filename_contains: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """A page of the owner's assets that pass the filter (and contain `filename_contains` in
        their filename), newest first, and how many pass."""
        if f.needs_sql:  # stacks, people and tags live in SQL read models only
            hits, total = self.embedded.filter(owner_id, f, limit, offset, filename_contains)
            return self._assets(owner_id, hits), total
        if self._use_elastic():
            try:
                answer = self.elastic.filter(owner_id, f, limit, offset, filename_contains)
            except Exception as exc:
                self._fail(exc)
                answer = None
            if answer is not None:
                return self._assets(owner_id, answer[0]), answer[1]
            if self.elastic.healthy:  # deeper than Elasticsearch pages: the same answer from SQL
                hits, total = self.embedded.filter(owner_id, f, limit, offset, filename_contains)
                return self._assets(owner_id, hits), total
        if self.elastic is not None:  # down: the plain SQL of the catalog, which is always current
            return self.catalog.filter(owner_id, f, limit, offset, filename_contains=filename_contains)
        hits, total = self.embedded.filter(owner_id, f, limit, offset, filename_contains)
        return self._assets(owner_id, hits), total

    def text(self, owner_id: int, f: AssetFilter, query: str, limit: int,
             offset: int, album_id: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """A page of the owner's assets that pass the filter and contain words of `query` (OCR
        text, caption, description, tags, file name), best match first with a `score` (BM25 on
        Elasticsearch and SQLite; ts_rank_cd on PostgreSQL's embedded index), and how many
        matched. With `album_id` (an album the caller may see: the route checked), the album's
        assets instead, whoever owns them; answered from the embedded index, which holds albums."""
        from infra.search.embedded import query_words

        answer = None
        if self._use_elastic() and not f.needs_sql and album_id is None:
            try:
                answer = self.elastic.text(owner_id, f, query_words(query), limit, offset)
            except Exception as exc:
                self._fail(exc)
        if answer is None:
            answer = self.embedded.text(owner_id, f, query, limit, offset, album_id)
        return self._assets(owner_id if album_id is None else None, answer[0]), answer[1]

    def semantic(self, owner_id: int, f: AssetFilter, query: str, limit: int,
                 offset: int, album_id: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """A page of the owner's assets that pass the filter, nearest in meaning to `query`
        first, each with its `score` (cosine similarity), and how many were ranked."""
        if self.embedder is None:
            raise SearchUnavailable("no embedder is configured")
        try:
            vector = normalise(self.embedder.embed_texts([query])[0])
        except EmbedderUnavailable as exc:  # a model that does not load, found on first use
            raise SearchUnavailable(str(exc)) from None
        model = self.embedder.model_id
        answer = None
        if self._use_elastic() and not f.needs_sql and album_id is None:
            try:
                answer = self.elastic.semantic(owner_id, f, vector, model, limit, offset)
            except Exception as exc:
                self._fail(exc)
        if answer is None:
            answer = self.embedded.semantic(owner_id, f, vector, model, limit, offset, album_id)
        return self._assets(owner_id if album_id is None else None, answer[0]), answer[1]

    def health(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "backend": self.backend,
            "semantic": {"status": "ok", "model": self.embedder.model_id} if self.embedder is not None
            else {"status": "off", "note": "no embedder configured: semantic search answers 503"},
        }
        if getattr(self.embedder, "error", None):
            report["semantic"] = {"status": "off", "model": self.embedder.model_id,
                                  "note": f"{self.embedder.error}: semantic search answers 503"}
        if self.elastic is None:
            report["status"] = "ok"
            return report
        report["url"] = self.elastic.url
        report["alias"] = self.elastic.alias
        try:
            report["lag"] = self.elastic.lag()
        except Exception:
            pass
        if self.elastic.healthy and self.elastic.ready:
            report["status"] = "ok"
        elif self.elastic.healthy:
            report["status"] = "starting"
            report["note"] = "the index is being built: filters and filename search answer from SQL"
        else:
            report["status"] = "degraded"
            report["error"] = self.elastic.error
            report["note"] = "Elasticsearch is unreachable: filters and filename search answer from SQL"
        return report

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self.elastic is not None:
            self.elastic.close()
