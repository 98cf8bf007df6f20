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

Grouping never compares all pairs of a large library: the hashes go into a faiss binary index
(a flat one for small libraries, a multi-index hash beyond), each rotation asks for the hashes
within HASH_RADIUS bits, and only those candidate pairs are verified. When both photos have a CLIP embedding, their cosine must agree too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.fft import dctn

SIDE = 16
HASH_RADIUS = 18  # bits: candidates farther apart are not near-duplicates
MIN_CORRELATION = 0.82
MIN_CLIP_COSINE = 0.90
# Below this many photos every hash is compared (in C: 20k photos, 4 rotations, ~1 s); above, a
# multi-index hash (4 tables of 16 bits) gives as candidates only the hashes that share a whole
# 16-bit quarter with the query: every pair within 3 bits, and most within 18 (measured: 99.6% of
# planted noisy copies at 100k, bench/library.py). Lightly cropped copies are the ones it may miss.
EXACT_BELOW = 20_000


def grey_of(data: bytes | str) -> np.ndarray:
    raw = bytes.fromhex(data) if isinstance(data, str) else data
    if len(raw) != SIDE * SIDE:
        raise ValueError(f"a fingerprint is {SIDE * SIDE} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(SIDE, SIDE)


def phash(grey: np.ndarray) -> np.ndarray:
    """8 bytes: 63 DCT sign bits and a zero (faiss binary codes are whole bytes)."""
    return phashes(grey[None])[0]


def low_frequencies(greys: np.ndarray) -> np.ndarray:
    """The 8x8 lowest DCT-II coefficients of each fingerprint: (n, 8, 8)."""
    return dctn(greys.astype(np.float32), axes=(1, 2), norm="ortho")[:, :8, :8]


def rotate_frequencies(coefficients: np.ndarray, turns: int) -> np.ndarray:
    """The coefficients of the fingerprints turned by 90 degrees `turns` times (as np.rot90),
    without a new transform: rot90 is a column flip then a transpose, and flipping an axis
    multiplies frequency u of that axis by (-1)^u."""
    signs = np.where(np.arange(8) % 2, -1.0, 1.0).astype(coefficients.dtype)
    out = coefficients
    for _ in range(turns % 4):
        out = np.swapaxes(out * signs[None, None, :], 1, 2)
    return out


def codes_of(coefficients: np.ndarray) -> np.ndarray:
    """Hash bytes from low-frequency coefficients: the 63 non-DC signs against their median."""
    flat = coefficients.reshape(len(coefficients), 64)[:, 1:]
    bits = flat > np.median(flat, axis=1, keepdims=True)
    return np.packbits(np.concatenate([bits, np.zeros((len(flat), 1), dtype=bool)], axis=1), axis=1)


def phashes(greys: np.ndarray) -> np.ndarray:
    """`phash` of a stack of fingerprints (n, 16, 16) at once: (n, 8) bytes."""
    return codes_of(low_frequencies(greys))


def tiny(grey: np.ndarray) -> np.ndarray:
    return tinies(grey[None])[0]


def tinies(greys: np.ndarray) -> np.ndarray:
    """The fingerprints' grey levels centred and normalised: (n, 256) float32."""
    values = greys.reshape(len(greys), -1).astype(np.float64)
    values -= values.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return (values / np.where(norms > 1e-9, norms, 1.0)).astype(np.float32)


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
    stack = np.stack(greys)
    flat = stack.reshape(n, -1).std(axis=1) < 2.0  # see is_flat
    frequencies = low_frequencies(stack)
    codes = codes_of(frequencies)
    vectors = tinies(stack)
    grid = np.arange(SIDE * SIDE).reshape(SIDE, SIDE)
    if n < EXACT_BELOW:
        index = faiss.IndexBinaryFlat(64)
    else:
        index = faiss.IndexBinaryMultiHash(64, 4, 16)
        index.nflip = 0
    index.add(codes)
    links = _Links(n)
    weakest: dict[tuple[int, int], float] = {}
    for turns in range(4):
        queries = codes if not turns else codes_of(rotate_frequencies(frequencies, turns))
        limits, _, found = index.range_search(queries, HASH_RADIUS + 1)  # radius is exclusive
        rows = np.repeat(np.arange(n), np.diff(limits).astype(np.int64))
        cols = found.astype(np.int64)
        if not len(rows):
            continue
        i, j = rows, cols
        keep = (i != j) & ~flat[i] & ~flat[j]
        i, j = i[keep], j[keep]
        # A turned fingerprint's grey levels are the same values in another order.
        turned = vectors[i] if not turns else vectors[i][:, np.rot90(grid, turns).ravel()]
        correlation = np.einsum("ij,ij->i", turned, vectors[j])
        strong = correlation >= MIN_CORRELATION
        for a, b, c in zip(i[strong].tolist(), j[strong].tolist(), correlation[strong].tolist()):
            if apart and frozenset((a, b)) in apart:
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
    weakest_of: dict[int, float] = {}
    for (a, _), c in weakest.items():
        root = links.find(a)
        weakest_of[root] = min(weakest_of.get(root, 1.0), c)
    return [Group(items, round(weakest_of[root], 4))
            for root, items in sorted(members.items()) if len(items) >= 2]
