"""External library benchmark: scan rate against a bare walk, and the watcher's latency.

    python bench/library_scan.py [--files 10000] [--per-folder 100] [--database-url postgresql://...]

Each figure is printed beside a baseline measured in the same run on the same machine:
  1. the bare walk: `os.scandir` recursion with a `stat` of every entry, the least any scan does;
  2. a first scan of the tree (every file sniffed, hashed and indexed as an asset with its jobs):
     files/s against the bare walk (informative: it is bound by hashing and the event store);
  3. an unchanged rescan (the common case: a nightly or watcher-triggered scan finding nothing
     new): files/s against the bare walk — aim >= 0.5;
  4. the watcher: seconds from a new file written into a watched library to its asset in the
     catalog (median of 5), with the scanner and the watcher running as in `darkroom serve`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.bootstrap import bootstrap  # noqa: E402
from infra.bus import InProcessBus  # noqa: E402
from infra.settings import load_settings  # noqa: E402
from processors.library_scan import run_scan  # noqa: E402
from processors.relay import JobRelay  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1] / "tests" / "media"
JPEG = (MEDIA / "photo" / "apple_iphone_xr_1x1px_gps.jpg").read_bytes()


def make_tree(root: Path, files: int, per_folder: int) -> None:
    for i in range(files):
        folder = root / f"{i // (per_folder * 10):03d}" / f"{i // per_folder:05d}"
        if i % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"IMG_{i:06d}.jpg").write_bytes(JPEG + str(i).encode())


def bare_walk(root: Path) -> int:
    """The baseline: visit every entry with os.scandir and stat it."""
    count, stack = 0, [str(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif st.st_size >= 0:
                    count += 1
    return count


def best_of(runs: int, fn):  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--per-folder", type=int, default=100)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        roots = work / "roots"
        tree = roots / "tree"
        tree.mkdir(parents=True)
        make_tree(tree, args.files, args.per_folder)
        settings = load_settings(environ={}, data_dir=str(work / "data"), run_workers=False,
                                 library_roots=str(roots), password_memory_kib=1024, password_time_cost=1)
        if args.database_url:
            settings.database_url = args.database_url
            settings.database_schema = "bench_" + os.urandom(4).hex()
        services = bootstrap(settings)
        try:
            from commands.application import Darkroom  # noqa: F401  (registered users need the app)

            session = services.app.register("bench", "bench@example.org", services.passwords.hash("bench pass"))
            owner = session.user.user_id
            library_id, _ = services.app.create_library(owner, "tree", owner, tree.resolve(), [], False)

            walk_s = best_of(3, lambda: bare_walk(tree))
            print(f"files: {args.files} in folders of {args.per_folder} ({services.settings.database_url and 'postgres' or 'sqlite'})")
            print(f"bare walk (scandir + stat): {walk_s * 1000:.1f} ms = {args.files / walk_s:,.0f} files/s (baseline)")

            def scan() -> float:
                """One scan job as the scanner runs it: claim, walk and compare, record the
                findings and the completion. Queueing it and the read models catching up after
                (the projection daemon's work, in its own thread in `serve`) are not timed."""
                job_id, _ = services.app.queue_library_scan(library_id)
                for runner in services.runners.values():
                    runner.catch_up()
                start = time.perf_counter()
                assert run_scan(services, job_id, "bench") == "completed"
                took = time.perf_counter() - start
                for runner in services.runners.values():
                    runner.catch_up()
                return took

            first_s = scan()
            first = services.db.query_one("SELECT scan FROM libraries WHERE library_id = ?", (library_id,))
            print(f"first scan (sniff, hash, index {args.files} assets + jobs): {first_s:.1f} s = "
                  f"{args.files / first_s:,.0f} files/s, ratio {walk_s / first_s:.3f}  [{first and first['scan']}]")

            # Interleaved, best of 5 each: the machine is shared, so both sides see the same load.
            walks, rescans = [], []
            for _ in range(5):
                walks.append(best_of(1, lambda: bare_walk(tree)))
                rescans.append(scan())
            walk_s, rescan_s = min(walks), min(rescans)
            print(f"bare walk again, interleaved with the rescans: {walk_s * 1000:.1f} ms (baseline)")
            print(f"unchanged rescan: {rescan_s * 1000:.1f} ms = {args.files / rescan_s:,.0f} files/s, "
                  f"ratio {walk_s / rescan_s:.2f} (aim >= 0.5)")

            # The watcher, as serve runs it: relay -> bus -> scanner, and the watcher queueing scans.
            watched = roots / "watched"
            (watched / "inbox").mkdir(parents=True)
            watched_id, _ = services.app.create_library(owner, "watched", owner, watched.resolve(), [], True)
            for runner in services.runners.values():
                runner.catch_up()
            services.start_daemon()
            services.bus = InProcessBus()
            services.relay = JobRelay(services.app, services.jobs, services.bus)
            services.relay.start()
            services.start_libraries()
            time.sleep(4)  # the watcher reads its libraries every few seconds
            latencies = []
            for i in range(5):
                relative = f"inbox/new_{i}.jpg"
                started = time.perf_counter()
                (watched / relative).write_bytes(JPEG + f"watched {i}".encode())
                while time.perf_counter() - started < 30:
                    row = services.db.query_one("SELECT asset_id FROM library_files WHERE library_id = ? AND "
                                                "relative_path = ?", (watched_id, relative))
                    if row and services.db.query_one("SELECT 1 AS x FROM catalog_assets WHERE asset_id = ?",
                                                     (row["asset_id"],)):
                        break
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - started)
                time.sleep(0.5)
            print(f"watcher: new file to catalog in {statistics.median(latencies):.2f} s median "
                  f"(min {min(latencies):.2f}, max {max(latencies):.2f}; debounce 0.2 s)")
        finally:
            services.close()
            if args.database_url:
                import psycopg
                from psycopg import sql

                with psycopg.connect(args.database_url, autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                        sql.Identifier(settings.database_schema)))


if __name__ == "__main__":
    main()
