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
    """Vectors of one model and one dimension from one generation of the search tables.

    The dimension is part of what the index holds, not learnt once from the first vector: a model
    id may name vectors of another length over time (a model directory replaced by a bigger model
    of the same name), and a query of the new length must neither fail nor miss the new vectors.
    Vectors of another length are simply not in this index (0: the first vector decides)."""

    def __init__(self, generation: str, model: str, dimension: int = 0) -> None:
        self.generation = generation
        self.model = model
        self.seq = 0
        self.dimension = dimension
        self.slot_of: dict[int, int] = {}  # doc_id -> current slot
        self._matrix = np.zeros((0, 0), dtype="float32")
        # Per slot: its document, owner, and whether it is the document's current, undeleted vector
        # (so a query with no filter but the owner needs no SQL at all).
        self._doc = np.zeros(0, dtype="int64")
        self._owner = np.zeros(0, dtype="int64")
        self._live = np.zeros(0, dtype=bool)
        self._count = 0
        self._graph: Any = None
        self._graphed = 0  # slots already added to the graph
        self.lock = threading.Lock()

    def _grow(self, need: int) -> None:
        if need <= len(self._matrix):
            return
        size = max(need, 2 * len(self._matrix), 1024)
        matrix = np.zeros((size, self.dimension), dtype="float32")
        if self._count:
            matrix[: self._count] = self._matrix[: self._count]
        self._matrix = matrix
        for name, dtype in (("_doc", "int64"), ("_owner", "int64"), ("_live", bool)):
            grown = np.zeros(size, dtype=dtype)
            grown[: self._count] = getattr(self, name)[: self._count]
            setattr(self, name, grown)

    def update(self, rows: list[tuple[int, int, bool, Any]], seq: int) -> None:
        """Rows changed up to `seq`: (doc_id, owner_id, deleted, unit vector of this model or None)."""
        for doc_id, owner_id, deleted, vector in rows:
            slot = self.slot_of.get(doc_id)
            if vector is None or (self.dimension and len(vector) != self.dimension):
                if slot is not None:  # no vector of this model any more
                    self._live[slot] = False
                    del self.slot_of[doc_id]
                continue
            if not self.dimension:
                self.dimension = len(vector)
            if slot is not None and np.array_equal(self._matrix[slot], vector):
                self._live[slot] = not deleted  # changed for another reason (a rating, a delete)
                continue
            if slot is not None:
                self._live[slot] = False
            self._grow(self._count + 1)
            slot = self._count
            self._matrix[slot] = vector
            self._doc[slot], self._owner[slot], self._live[slot] = doc_id, owner_id, not deleted
            self.slot_of[doc_id] = slot
            self._count += 1
        self.seq = max(self.seq, seq)

    def owner_slots(self, owner_id: int) -> Any:
        """The slots of the owner's undeleted documents."""
        n = self._count
        return np.nonzero((self._owner[:n] == owner_id) & self._live[:n])[0]

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
        return self.nearest_slots(query, self.slots_of(doc_ids), k)

    def slots_of(self, doc_ids: list[int]) -> Any:
        """The slots of those documents that have a vector here."""
        slots = np.fromiter((self.slot_of.get(d, -1) for d in doc_ids), dtype="int64", count=len(doc_ids))
        return slots[slots >= 0]

    def nearest_slots(self, query: list[float], slots: Any, k: int) -> list[tuple[int, float]]:
        # No more than there are candidates: a deep page asks for a k (offset + limit) that faiss
        # can neither allocate nor take as an int.
        k = min(k, len(slots))
        if k <= 0 or not self._count:
            return []
        q = np.asarray(query, dtype="float32")
        if q.shape != (self.dimension,):
            raise ValueError(f"the query has {q.shape[0]} dimensions, the stored vectors {self.dimension}")
        ids = self._doc[slots]
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

