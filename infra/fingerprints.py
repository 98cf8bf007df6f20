"""Perceptual fingerprints of photos and their grouping into near-duplicates.

A fingerprint is the photo as a 16x16 grey image (256 bytes, from its small thumbnail, so after
EXIF orientation). Two descriptors come from it:

- a 63-bit perceptual hash (the signs of the 8x8 lowest DCT frequencies against their median,
  as pHash does): equal or a few bits apart for resized and re-encoded copies, under ~18 bits for
  light crops, ~30 bits apart for different photos;
- the 256 grey levels, centred and normalised: their dot product (a correlation) is above 0.85
  for the copies above (0.82 is the bar) and below 0.75 for different photos of the corpus, so it confirms a hash match.

A copy rotated by 90, 180 or 270 degrees is found by hashing the rotations of each fingerprint
(rotating the 16x16 grid is exact) and looking them up among the unrotated hashes.

Grouping never compares all pairs: the hashes go into a faiss binary index (exact for small
libraries, HNSW beyond), each rotation asks for its k nearest hashes, and only those candidate
pairs are verified. When both photos have a CLIP embedding, their cosine must agree too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.fft import dctn

SIDE = 16
HASH_RADIUS = 18  # bits: candidates farther apart are not near-duplicates
MIN_CORRELATION = 0.82
MIN_CLIP_COSINE = 0.90
NEIGHBOURS = 8
EXACT_BELOW = 5000  # photos: below this an exact (flat) index, above it HNSW


def grey_of(data: bytes | str) -> np.ndarray:
    raw = bytes.fromhex(data) if isinstance(data, str) else data
    if len(raw) != SIDE * SIDE:
        raise ValueError(f"a fingerprint is {SIDE * SIDE} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(SIDE, SIDE)


def phash(grey: np.ndarray) -> np.ndarray:
    """8 bytes: 63 DCT sign bits and a zero (faiss binary codes are whole bytes)."""
    coefficients = dctn(grey.astype(np.float64), norm="ortho")[:8, :8].flatten()[1:]
    bits = np.append(coefficients > np.median(coefficients), False)
    return np.packbits(bits)


def tiny(grey: np.ndarray) -> np.ndarray:
    values = grey.astype(np.float64).flatten()
    values -= values.mean()
    norm = np.linalg.norm(values)
    return (values / norm if norm > 1e-9 else values).astype(np.float32)


def is_flat(grey: np.ndarray) -> bool:
    """A picture with (almost) no structure (a single colour, a 1-pixel image) matches anything
    by hash and nothing by correlation: it is never grouped."""
    return float(grey.astype(np.float64).std()) < 2.0


@dataclass(frozen=True)
class Group:
    members: list[int]  # indexes into the input, ascending
    similarity: float  # the weakest verified link's correlation


class _Links:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group(greys: list[np.ndarray], embeddings: list[np.ndarray | None] | None = None,
          apart: set[frozenset[int]] | None = None) -> list[Group]:
    """Near-duplicate groups among these fingerprints. `embeddings[i]`: a unit CLIP vector or
    None; `apart`: pairs the owner said are not duplicates (never linked directly)."""
    import faiss

    n = len(greys)
    if n < 2:
        return []
    apart = apart or set()
    flat = np.array([is_flat(g) for g in greys])
    codes = np.stack([phash(g) for g in greys])
    vectors = np.stack([tiny(g) for g in greys])
    if n < EXACT_BELOW:
        index = faiss.IndexBinaryFlat(64)
    else:
        index = faiss.IndexBinaryHNSW(64, 16)
        index.hnsw.efSearch = 64
    index.add(codes)
    k = min(NEIGHBOURS + 1, n)
    links = _Links(n)
    weakest: dict[tuple[int, int], float] = {}
    for turns in range(4):
        rotated = [np.rot90(g, turns) for g in greys] if turns else greys
        queries = codes if not turns else np.stack([phash(g) for g in rotated])
        distances, neighbours = index.search(queries, k)
        rows, cols = np.nonzero((distances <= HASH_RADIUS) & (neighbours >= 0))
        if not len(rows):
            continue
        i, j = rows, neighbours[rows, cols].astype(np.int64)
        keep = (i != j) & ~flat[i] & ~flat[j]
        i, j = i[keep], j[keep]
        query_vectors = vectors if not turns else np.stack([tiny(g) for g in rotated])
        correlation = np.einsum("ij,ij->i", query_vectors[i], vectors[j])
        for a, b, c in zip(i.tolist(), j.tolist(), correlation.tolist()):
            if c < MIN_CORRELATION or frozenset((a, b)) in apart:
                continue
            if embeddings is not None and embeddings[a] is not None and embeddings[b] is not None \
                    and embeddings[a].shape == embeddings[b].shape \
                    and float(embeddings[a] @ embeddings[b]) < MIN_CLIP_COSINE:
                continue  # the picture's meaning differs: a burst of a moving scene, not a copy
            pair = (min(a, b), max(a, b))
            weakest[pair] = max(weakest.get(pair, -1.0), c)
            links.union(a, b)
    members: dict[int, list[int]] = {}
    for a in range(n):
        members.setdefault(links.find(a), []).append(a)
    groups = []
    for root, items in sorted(members.items()):
        if len(items) < 2:
            continue
        inside = [c for (a, b), c in weakest.items() if links.find(a) == root]
        groups.append(Group(items, round(min(inside), 4)))
    return groups
