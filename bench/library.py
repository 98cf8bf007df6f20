"""Library features benchmark: near-duplicate grouping, reverse geocoding, purge.

    python bench/library.py [--fingerprints 100000] [--all-pairs 10000] [--geocode 100000] [--purge-files 100]

Each measurement is printed beside a baseline measured in the same run on the same machine:
  1. duplicate grouping (`infra.fingerprints.group`: a faiss binary index over the perceptual
     hashes of every rotation, then verification of the candidate pairs only) over N synthetic
     fingerprints with 5% planted copies (noisy, some rotated by 90 degrees): seconds, peak memory
     and recall of the planted pairs; against the all-pairs comparison (every pair's Hamming
     distance for every rotation, then the same verification) on the smaller M, and group() on
     the same M;
  2. reverse geocoding: microseconds per photo (`infra.geocoding.ReverseGeocoder.place`) after the
     one-off load, against a bare k-d tree query of the same points (the floor);
  3. purge: MB/s of `Purger.purge` (event, file removal, FilesRemoved event) over files of real
     assets in the trash, against `rm` of a same-sized set of files.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from uuid import UUID

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.fingerprints import HASH_RADIUS, MIN_CORRELATION, group, phashes, tinies  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic(n: int, seed: int = 3) -> tuple[list[np.ndarray], set[tuple[int, int]]]:
    """n smooth random pictures (low-frequency noise, like photos' structure), the last 5% noisy
    copies of earlier ones (a third of them rotated by 90 degrees). Answers the planted pairs."""
    rng = np.random.default_rng(seed)
    originals = n - n // 20
    coarse = rng.integers(0, 256, size=(originals, 8, 8)).astype(np.float64)
    greys = [np.clip(np.kron(c, np.ones((2, 2))) + rng.normal(0, 12, (16, 16)), 0, 255).astype(np.uint8)
             for c in coarse]
    planted = set()
    for k in range(n - originals):
        source = int(rng.integers(0, originals))
        copy = np.clip(greys[source].astype(np.float64) + rng.normal(0, 6, (16, 16)), 0, 255).astype(np.uint8)
        if k % 3 == 0:
            copy = np.rot90(copy)
        planted.add((source, originals + k))
        greys.append(np.ascontiguousarray(copy))
    return greys, planted


def all_pairs(greys: list[np.ndarray]) -> set[tuple[int, int]]:
    """Every pair, every rotation: Hamming distance by popcount, then the same correlation check."""
    n = len(greys)
    stack = np.stack(greys)
    codes = phashes(stack).view(np.uint64).ravel()
    vectors = tinies(stack)
    found: set[tuple[int, int]] = set()
    for turns in range(4):
        rotated = np.rot90(stack, turns, axes=(1, 2))
        qcodes = phashes(rotated).view(np.uint64).ravel()
        qvectors = tinies(rotated)
        for start in range(0, n, 512):
            block = qcodes[start:start + 512, None] ^ codes[None, :]
            distance = np.unpackbits(block.view(np.uint8), axis=1).reshape(len(block), n, 64).sum(axis=2)
            rows, cols = np.nonzero(distance <= HASH_RADIUS)
            rows = rows + start
            keep = rows != cols
            rows, cols = rows[keep], cols[keep]
            corr = np.einsum("ij,ij->i", qvectors[rows], vectors[cols])
            for a, b in zip(rows[corr >= MIN_CORRELATION].tolist(), cols[corr >= MIN_CORRELATION].tolist()):
                found.add((min(a, b), max(a, b)))
    return found


def grouped_pairs(greys: list[np.ndarray]) -> tuple[float, float, float, set[tuple[int, int]]]:
    """Timed on its own; the Python peak (tracemalloc, which slows Python down) in a second run."""
    before = rss_mb()
    t = time.perf_counter()
    groups = group(greys)
    seconds = time.perf_counter() - t
    grown = rss_mb() - before
    tracemalloc.start()
    group(greys)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    pairs = set()
    for g in groups:
        for a in g.members:
            for b in g.members:
                if a < b:
                    pairs.add((a, b))
    return seconds, peak / 2**20, grown, pairs


def bench_duplicates(n: int, m: int) -> None:
    print(f"-- duplicate grouping ({n} fingerprints, 5% planted copies; all pairs on {m})")
    greys, planted = synthetic(n)
    seconds, peak, rss, pairs = grouped_pairs(greys)
    recall = len(planted & pairs) / len(planted)
    print(f"group() on {n:>7}: {seconds:7.2f} s   python peak {peak:7.1f} MiB   max RSS grew {rss:7.1f} MiB"
          f"   planted pairs found {recall:.1%}   groups' pairs {len(pairs)}")
    small, small_planted = synthetic(m, seed=5)
    seconds_s, peak_s, _, pairs_s = grouped_pairs(small)
    t = time.perf_counter()
    reference = all_pairs(small)
    ref_seconds = time.perf_counter() - t
    tracemalloc.start()
    all_pairs(small[: len(small) // 4])
    _, peak_ref = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_ref /= 2**20
    print(f"group() on {m:>7}: {seconds_s:7.2f} s   python peak {peak_s:7.1f} MiB   planted found "
          f"{len(small_planted & pairs_s) / len(small_planted):.1%}")
    print(f"all pairs {m:>7}: {ref_seconds:7.2f} s   python peak {peak_ref:7.1f} MiB (on a quarter)   planted found "
          f"{len(small_planted & reference) / len(small_planted):.1%}   ratio all-pairs/group() "
          f"{ref_seconds / seconds_s:5.1f}x")
    print(f"   (all pairs on {n} would take ~{ref_seconds * (n / m) ** 2:.0f} s: quadratic)")


def bench_geocoding(count: int) -> None:
    from infra.geocoding import ReverseGeocoder, unit_vectors

    print(f"-- reverse geocoding ({count} positions)")
    geocoder = ReverseGeocoder()
    t = time.perf_counter()
    geocoder.place(48.85, 2.35)
    load = time.perf_counter() - t
    rng = random.Random(1)
    points = [(rng.uniform(-60, 70), rng.uniform(-180, 180)) for _ in range(count)]
    t = time.perf_counter()
    named = sum(1 for lat, lon in points if geocoder.place(lat, lon) is not None)
    per = (time.perf_counter() - t) / count
    tree = geocoder._tree
    t = time.perf_counter()
    for lat, lon in points:
        tree.query(unit_vectors(np.array([lat]), np.array([lon]))[0])
    floor = (time.perf_counter() - t) / count
    print(f"load {load:.2f} s once; place(): {per * 1e6:6.1f} us/photo ({named / count:.0%} near a town) "
          f"vs bare k-d tree query {floor * 1e6:6.1f} us ({per / floor:.2f}x)")


def bench_purge(files: int, size_mb: float) -> None:
    from commands.assets import NewUpload
    from infra.bootstrap import bootstrap
    from infra.settings import load_settings
    from processors.purge import Purger

    print(f"-- purge ({files} files of {size_mb} MB)")
    with tempfile.TemporaryDirectory(prefix="darkroom-bench-") as tmp:
        services = bootstrap(load_settings(environ={}, data_dir=str(Path(tmp) / "data"), run_workers=False,
                                           jwt_secret="bench"))
        try:
            payload = os.urandom(int(size_mb * 2**20))
            ids = []
            for k in range(files):
                content_hash = f"{k:064x}"
                path = services.storage.relative_original_path(1, content_hash, ".jpg")
                target = services.storage.path_of(services.storage.repository(None), path)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(payload[:-8] + k.to_bytes(8, "big"))
                outcome = services.app.upload(NewUpload(1, f"p{k}.jpg", len(payload), "image/jpeg", content_hash,
                                                        "PHOTO", services.storage.repository(None), path))
                services.app.delete_asset(1, outcome.asset_id)
                ids.append(outcome.asset_id)
            for runner in services.runners.values():
                runner.catch_up()
            os.sync()
            purger = Purger(services)
            t = time.perf_counter()
            freed = sum(purger.purge(1, UUID(str(a))) for a in ids)
            purge_s = time.perf_counter() - t
            baseline = Path(tmp) / "rm"
            baseline.mkdir()
            paths = []
            for k in range(files):
                p = baseline / f"{k}.jpg"
                p.write_bytes(payload)
                paths.append(str(p))
            os.sync()
            t = time.perf_counter()
            subprocess.run(["rm", "-f", *paths], check=True)
            rm_s = time.perf_counter() - t
            mb = freed / 2**20
            print(f"Purger.purge: {mb / purge_s:8.1f} MB/s ({purge_s / files * 1000:.1f} ms/asset: two events, "
                  f"the ledger, the unlink)   rm: {mb / rm_s:8.1f} MB/s   ratio rm/purge {purge_s / rm_s:.1f}x")
        finally:
            services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fingerprints", type=int, default=100_000)
    parser.add_argument("--all-pairs", type=int, default=10_000)
    parser.add_argument("--geocode", type=int, default=100_000)
    parser.add_argument("--purge-files", type=int, default=100)
    parser.add_argument("--purge-mb", type=float, default=2.0)
    args = parser.parse_args()
    bench_duplicates(args.fingerprints, args.all_pairs)
    bench_geocoding(args.geocode)
    bench_purge(args.purge_files, args.purge_mb)


if __name__ == "__main__":
    main()
