"""Search benchmark: 100k synthetic assets, latency of filter, filename and semantic search on the
embedded index and on Elasticsearch against plain SQL for the same filter, and index build rate.

    python bench/search.py [--assets 100000] [--owners 4] [--dim 64] [--queries 300]
    # Elasticsearch: DARKROOM_ELASTICSEARCH_URL (source .services.env); skipped when unset

Everything is printed beside a baseline measured in the same run on the same machine:
  1. build rate (docs/s): the search index rebuilt from the stored events of 100k assets
     (upload, metadata, rating, like, embedding) into `search_documents` + FTS5, vs inserting the
     same finished rows into a bare table (no indexes, no FTS) in one transaction; and the
     Elasticsearch mirror building its index from those rows (versions, windows of rows from
     SQL, alias swap) vs `helpers.bulk` of the same documents into an index of the same mapping;
  2. p50/p99 of filter, filename search (substring, prefix, suffix, glob) and semantic search
     (filtered kNN), each vs the catalog's plain SQL for the same filter (for semantic: the SQL
     that selects the same filtered set, which ranking then adds to).

The events are made in memory and stored with the recorder's bulk insert (writing 100k assets
through the commands would take the run minutes longer and measure the event store, which
bench/event_store.py does); the projections are then rebuilt from the log.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain.asset import Asset  # noqa: E402
from infra.database import Database  # noqa: E402
from infra.embedding import normalise  # noqa: E402
from infra.search.embedded import EmbeddedIndex  # noqa: E402
from infra.settings import load_settings  # noqa: E402
from projections.catalog import Catalog, CatalogProjection  # noqa: E402
from projections.queries import AssetFilter, date_bound  # noqa: E402
from commands import Darkroom  # noqa: E402
from infra.eventstore import eventstore_env  # noqa: E402
from infra.personal_data import KeyStore, saving_for  # noqa: E402
from projections.runner import ensure_positions_table, rebuild  # noqa: E402
from projections.search_index import DOCUMENT_COLUMNS, SearchIndexProjection  # noqa: E402

MAKES = ["NIKON CORPORATION", "Nikon", "Canon", "SONY", "Apple", "FUJIFILM", None]
LENSES = ["AF Nikkor 50mm f/1.8D", "EF-S18-55mm f/3.5-5.6 IS II", "FE 24-70mm F2.8 GM", None]
PATTERNS = ["IMG_{:05d}.JPG", "DSC_{:05d}.NEF", "PXL_2021{:05d}.mp4", "Scan {:05d}.pdf", "holiday-{:05d}.png"]
TYPES = {"JPG": ("image/jpeg", "PHOTO"), "NEF": ("image/x-nikon-nef", "PHOTO"), "mp4": ("video/mp4", "VIDEO"),
         "pdf": ("application/pdf", "DOCUMENT"), "png": ("image/png", "PHOTO")}


def synthetic_events(count: int, owners: int, dim: int, seed: int = 1) -> list[Any]:
    rng = random.Random(seed)
    now = datetime(2024, 1, 1, tzinfo=timezone.utc)
    events: list[Any] = []
    for n in range(count):
        asset_id = uuid.uuid4()
        name = rng.choice(PATTERNS).format(rng.randrange(100000))
        mime, kind = TYPES[name.rsplit(".", 1)[1]]
        version = 1
        events.append(Asset.Uploaded(
            originator_id=asset_id, originator_version=version, timestamp=now,
            originator_topic="domain.asset:Asset", owner_id=1 + n % owners, original_filename=name,
            file_size=1000 + n, mime_type=mime, content_hash=f"{n:064x}", asset_type=kind,
            repository_id=rng.choice(["default", "archive"]), storage_path=f"originals/{n}", upload_time=now,
        ))
        taken = f"{rng.randint(2005, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00"
        version += 1
        events.append(Asset.MetadataExtracted(
            originator_id=asset_id, originator_version=version, timestamp=now, width=100, height=80,
            duration=None, taken_time=taken, taken_time_local=taken,
            specific_metadata={"camera_make": rng.choice(MAKES), "lens_model": rng.choice(LENSES)},
        ))
        if rng.random() < 0.6:
            version += 1
            events.append(Asset.RatingChanged(originator_id=asset_id, originator_version=version,
                                              timestamp=now, rating=rng.randint(1, 5)))
        if rng.random() < 0.3:
            version += 1
            events.append(Asset.LikeChanged(originator_id=asset_id, originator_version=version,
                                            timestamp=now, liked=True))
        version += 1
        events.append(Asset.EmbeddingRecorded(originator_id=asset_id, originator_version=version, timestamp=now,
                                              model="bench", vector=[rng.gauss(0, 1) for _ in range(dim)]))
    return events


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def timed(fn: Callable[[], Any], args: list[Any]) -> tuple[float, float]:
    samples = []
    for a in args:
        start = time.perf_counter()
        fn(*a)
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


def row(label: str, ours: tuple[float, float], base: tuple[float, float], base_label: str) -> None:
    print(f"  {label:<34} p50 {ours[0]:7.2f} ms  p99 {ours[1]:7.2f} ms   | {base_label} p50 {base[0]:7.2f} ms  "
          f"p99 {base[1]:7.2f} ms   ratio p50 {ours[0] / base[0]:5.2f}  p99 {ours[1] / base[1]:5.2f}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--owners", type=int, default=4)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    es_url = os.environ.get("DARKROOM_ELASTICSEARCH_URL", "")
    work = Path(tempfile.mkdtemp(prefix="darkroom-bench-search-"))
    settings = load_settings(environ={}, data_dir=str(work), elasticsearch_url=es_url,
                             elasticsearch_prefix="bench-" + uuid.uuid4().hex[:8])
    db = Database(settings)
    ensure_positions_table(db)
    print(f"{args.assets} assets, {args.owners} owners, {args.dim}-dimension vectors; SQLite in {work}")

    started = time.perf_counter()
    events = synthetic_events(args.assets, args.owners, args.dim)
    print(f"made {len(events)} events in {time.perf_counter() - started:.1f} s")

    # -- build rates -------------------------------------------------------------------------
    # The events go into the event store as they would have been appended, then each projection
    # is built as `darkroom projections rebuild` builds it (bulk read, fast decode, indexes after).
    app = Darkroom(env=eventstore_env(settings))
    # Personal fields are sealed with their owner's key as `Darkroom.save` seals them (and the
    # rebuild opens them, as a real one does).
    keys = KeyStore(Database(settings))
    keys.ensure_table()
    app.mapper.keys = keys  # type: ignore[attr-defined]
    owners = {e.originator_id: e.owner_id for e in events if isinstance(e, Asset.Uploaded)}
    started = time.perf_counter()
    with saving_for(owners):
        for i in range(0, len(events), 10_000):
            app.recorder.insert_events([app.mapper.to_stored_event(e) for e in events[i:i + 10_000]])
    print(f"stored them in {time.perf_counter() - started:.1f} s")
    del events
    started = time.perf_counter()
    replayed = rebuild(app, db, CatalogProjection)
    print(f"catalog rebuilt from {replayed} events in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    rebuild(app, db, SearchIndexProjection)
    projection_s = time.perf_counter() - started
    rows = db.query(f"SELECT {', '.join(DOCUMENT_COLUMNS)} FROM search_documents")
    with db.transaction() as tx:
        tx.execute("CREATE TABLE bare_documents AS SELECT * FROM search_documents WHERE 0")
    started = time.perf_counter()
    with db.transaction() as tx:
        tx.executemany(f"INSERT INTO bare_documents ({', '.join(DOCUMENT_COLUMNS)}) VALUES "
                       f"({', '.join('?' * len(DOCUMENT_COLUMNS))})", [tuple(r.values()) for r in rows])
    bare_s = time.perf_counter() - started
    n = len(rows)
    print("\nbuild rate (docs/s)")
    print(f"  embedded: rebuild from the log    {n / projection_s:9.0f}   | bare insert of the rows {n / bare_s:9.0f}"
          f"   ratio {bare_s / projection_s:.2f}")

    elastic = None
    if es_url:
        from elasticsearch import helpers

        from infra.search.elastic import INDEX_SETTINGS, MAPPING, ElasticIndex, document

        elastic = ElasticIndex(settings, db)
        started = time.perf_counter()
        elastic.catch_up()  # no index yet: builds one aside from every row and swaps the alias
        mirror_s = time.perf_counter() - started
        bare_index = elastic.alias + "-bare"
        elastic.client.indices.create(index=bare_index, settings={**INDEX_SETTINGS, "refresh_interval": "-1"},
                                      mappings=MAPPING)
        docs = [document(r) for r in rows]
        started = time.perf_counter()
        helpers.bulk(elastic.client, ({"_index": bare_index, "_id": r["asset_id"], "_source": d}
                                      for r, d in zip(rows, docs)), chunk_size=1000, refresh=False)
        elastic.client.indices.refresh(index=bare_index)
        bulk_s = time.perf_counter() - started
        elastic.client.indices.delete(index=bare_index)
        print(f"  Elasticsearch: mirror build       {n / mirror_s:9.0f}   | bare helpers.bulk      {n / bulk_s:9.0f}"
              f"   ratio {bulk_s / mirror_s:.2f}")
    del rows

    # -- latency -----------------------------------------------------------------------------
    catalog, embedded = Catalog(db), EmbeddedIndex(db)
    rng = random.Random(7)

    def some_filter() -> AssetFilter:
        choice = rng.randrange(5)
        if choice == 0:
            return AssetFilter(camera_make=rng.choice(["nikon", "canon", "sony"]))
        if choice == 1:
            return AssetFilter(rating=rng.randint(1, 5), liked=rng.choice([True, None]))
        if choice == 2:
            year = rng.randint(2005, 2023)
            return AssetFilter(taken_from=date_bound(f"{year}-01-01", end=False), taken_to=date_bound(f"{year}-12-31", end=True))
        if choice == 3:
            return AssetFilter(type=rng.choice(["PHOTO", "VIDEO", "DOCUMENT"]), repository_id="archive")
        return AssetFilter()

    def filename_filter() -> AssetFilter:
        digits = f"{rng.randrange(1000):03d}"
        mode, value = rng.choice([("contains", digits + "1"), ("startswith", "img_0" + digits[:2]),
                                  ("endswith", digits[-2:] + ".nef"), ("matches", f"dsc_?{digits}*.nef")])
        return AssetFilter(filename_mode=mode, filename_value=value)

    owners = list(range(1, args.owners + 1))
    filter_args = [(rng.choice(owners), some_filter(), 20, rng.choice([0, 0, 100])) for _ in range(args.queries)]
    filename_args = [(rng.choice(owners), filename_filter(), 20, 0) for _ in range(args.queries)]
    search_args = [(rng.choice(owners), AssetFilter(), 20, 0, f"{rng.randrange(1000):03d}") for _ in range(args.queries)]
    vectors = [normalise([rng.gauss(0, 1) for _ in range(args.dim)]) for _ in range(args.queries)]
    semantic_args = [(o, f, v, "bench", 20, 0) for (o, f, _, _), v in zip(filter_args, vectors)]
    semantic_sql_args = [(o, f, 20, 0) for (o, f, _, _) in filter_args]

    def sql(owner: int, f: AssetFilter, limit: int, offset: int, contains: str | None = None) -> Any:
        return catalog.filter(owner, f, limit, offset, filename_contains=contains)

    started = time.perf_counter()
    embedded.semantic(1, AssetFilter(), vectors[0], "bench", 20, 0)  # loads the vectors, builds the graph
    print(f"\nembedded vector cache warm-up (load {n} vectors; no HNSW graph below 200k candidates): {time.perf_counter() - started:.1f} s")

    print(f"\nlatency over {args.queries} queries each (SQL = catalog_assets with the same filter)")
    base_filter = timed(sql, filter_args)
    base_filename = timed(sql, filename_args)
    base_search = timed(sql, search_args)
    base_semantic = timed(sql, semantic_sql_args)
    row("embedded filter", timed(embedded.filter, filter_args), base_filter, "SQL")
    row("embedded filename modes", timed(embedded.filter, filename_args), base_filename, "SQL")
    row("embedded filename search", timed(embedded.filter, search_args), base_search, "SQL")
    row("embedded semantic (filtered kNN)", timed(embedded.semantic, semantic_args), base_semantic, "SQL")
    if elastic is not None:
        row("Elasticsearch filter", timed(elastic.filter, filter_args), base_filter, "SQL")
        row("Elasticsearch filename modes", timed(elastic.filter, filename_args), base_filename, "SQL")
        row("Elasticsearch filename search", timed(elastic.filter, search_args), base_search, "SQL")
        row("Elasticsearch semantic (kNN)", timed(elastic.semantic, semantic_args), base_semantic, "SQL")
        elastic.drop()
        elastic.close()
    else:
        print("  (Elasticsearch skipped: DARKROOM_ELASTICSEARCH_URL is not set)")
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
