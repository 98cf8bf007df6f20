"""Nearest neighbours over the embeddings stored in `search_documents`, with faiss.

Why faiss (measured on 100k unit vectors of 128 dimensions, 2 cores; see the report of the search
issue): it is the one of the candidates that searches an HNSW graph *with a filter* from Python
(`IDSelectorBitmap`: 0.3 ms for a 10% filter), which filtered kNN needs without post-filtering;
usearch's Python API has no filter, sqlite-vec needs `enable_load_extension`, which this Python's
sqlite3 lacks, and hnswlib's filter is a Python callback per visited node.

The stored rows are the truth; this is a cache in each process that reads them. It follows the
table by `seq` (only rows changed since the last look are read), and starts over when the table
is swapped for a rebuilt copy (a new generation). Slots are append-only: a changed vector takes a
new slot and the old one is simply never selected again.

A query scores the candidate set exactly when it is small enough (a matrix product over at most
`EXACT_LIMIT` vectors: about 1 ms for 25k x 64, 20 ms for 200k x 512), and walks the HNSW graph
restricted to the candidates' slots otherwise, as Elasticsearch does for its filtered kNN. The
graph is built on the first query that needs it (measured: 25 s for 100k x 64 on 2 cores, which
is why the exact scan reaches as far as it does).
"""

from __future__ import annotations

import threading
from typing import Any

import faiss
import numpy as np

EXACT_LIMIT = 200_000


class VectorIndex:
    """Vectors of one model from one generation of the search tables."""

    def __init__(self, generation: str, model: str) -> None:
        self.generation = generation
        self.model = model
        self.seq = 0
        self.dimension = 0
        self.slot_of: dict[int, int] = {}  # doc_id -> current slot
        self._matrix = np.zeros((0, 0), dtype="float32")
        self._count = 0
        self._graph: Any = None
        self._graphed = 0  # slots already added to the graph
        self.lock = threading.Lock()

    def add(self, rows: list[tuple[int, Any]], seq: int) -> None:
        """Rows (doc_id, unit vector) changed up to `seq`."""
        if rows:
            if not self.dimension:
                self.dimension = len(rows[0][1])
                self._matrix = np.zeros((max(1024, len(rows)), self.dimension), dtype="float32")
            need = self._count + len(rows)
            if need > len(self._matrix):
                grown = np.zeros((max(need, 2 * len(self._matrix)), self.dimension), dtype="float32")
                grown[: self._count] = self._matrix[: self._count]
                self._matrix = grown
            for doc_id, vector in rows:
                if len(vector) != self.dimension:
                    continue  # another dimension cannot be compared; a model id names one size
                slot = self.slot_of.get(doc_id)
                if slot is not None and np.array_equal(self._matrix[slot], vector):
                    continue  # the row changed for another reason (a rating): same vector, same slot
                self._matrix[self._count] = vector
                self.slot_of[doc_id] = self._count
                self._count += 1
        self.seq = max(self.seq, seq)

    def _ensure_graph(self) -> Any:
        if self._graph is None:
            self._graph = faiss.IndexHNSWFlat(self.dimension, 32, faiss.METRIC_INNER_PRODUCT)
            self._graph.hnsw.efConstruction = 64
        if self._graphed < self._count:
            self._graph.add(self._matrix[self._graphed : self._count])
            self._graphed = self._count
        return self._graph

    def nearest(self, query: list[float], doc_ids: list[int], k: int) -> list[tuple[int, float]]:
        """The `k` candidates (by doc_id) nearest to the unit vector `query`, best first, with
        their cosine similarity. Candidates without a vector here are skipped."""
        if k <= 0 or not doc_ids or not self._count:
            return []
        q = np.asarray(query, dtype="float32")
        if q.shape != (self.dimension,):
            raise ValueError(f"the query has {q.shape[0]} dimensions, the stored vectors {self.dimension}")
        slots = np.fromiter((self.slot_of.get(d, -1) for d in doc_ids), dtype="int64", count=len(doc_ids))
        ids = np.asarray(doc_ids, dtype="int64")
        keep = slots >= 0
        slots, ids = slots[keep], ids[keep]
        if len(slots) <= EXACT_LIMIT:
            scores = self._matrix[slots] @ q
            # Best first; equal scores by doc id, so both backends and reruns agree.
            order = np.lexsort((ids, -scores))[:k]
            return [(int(ids[i]), float(scores[i])) for i in order]
        graph = self._ensure_graph()
        bitmap = np.zeros((self._count + 7) // 8, dtype="uint8")
        np.bitwise_or.at(bitmap, slots >> 3, (1 << (slots & 7)).astype("uint8"))
        selector = faiss.IDSelectorBitmap(self._count, faiss.swig_ptr(bitmap))
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(128, 2 * k))
        distances, found = graph.search(q[None, :], k, params=params)
        doc_of = {slot: doc for slot, doc in zip(slots.tolist(), ids.tolist())}
        return [(doc_of[int(s)], float(d)) for s, d in zip(found[0], distances[0]) if s >= 0]

