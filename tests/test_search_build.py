"""The search index rebuilt aside (bulk load, FTS5 filled from the documents in one pass after
it, indexes after the load) holds what following the log live holds, FTS rowids included, and
answers every kind of search the same; events that arrive while it is built are applied on the
complete tables as live applies them."""

from __future__ import annotations

from typing import Any

import pytest

from infra.search.embedded import EmbeddedIndex
from projections.queries import AssetFilter
from projections.runner import POSITIONS_TABLE, ProjectionRunner, head_position, rebuild
from projections.search_index import SearchIndexProjection
from tests.scenario import busy_library


def search_tables(services: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rows = services.db.query("SELECT * FROM search_documents ORDER BY asset_id")
    for row in rows:
        row.pop("seq")  # counts writes, so it follows the batching, not the events
    out["search_documents"] = rows
    if services.db.dialect == "sqlite":
        for table in ("search_text", "search_words"):
            out[table] = services.db.query(f"SELECT rowid, * FROM {table} ORDER BY rowid")
    return out


def answers(services: Any, owners: list[int]) -> list[Any]:
    index = EmbeddedIndex(services.db)
    out = []
    for owner in owners:
        for query in ("invoice", "late words", "about", "img", "lisbon portugal", "harbour", "img_0003 jpg"):
            out.append(index.text(owner, AssetFilter(), query, 100, 0))
        for needle in ("img_00", "001", "jpg"):
            out.append(index.filter(owner, AssetFilter(), 100, 0, filename_contains=needle))
        out.append(index.filter(owner, AssetFilter(filename_mode="endswith", filename_value="5.jpg"), 100, 0))
        out.append(index.filter(owner, AssetFilter(camera_make="canon"), 100, 0))
        out.append(index.semantic(owner, AssetFilter(), [1.0, 0.5, -0.25], "clip-test", 100, 0))
    return out


def enrich(services: Any, ids: list[Any], start: int) -> None:
    """What processors add to search documents: OCR text, captions, labels, places, vectors."""
    app = services.app
    for n, asset_id in enumerate(ids):
        asset = app.repository.get(asset_id)
        if (n + start) % 2 == 0:
            asset.record_text(model="ocr-test", text=f"Invoice {n + start} harbour", lines=[])
        if (n + start) % 3 == 0:
            asset.record_caption(model="caption-test", caption=f"a boat in the harbour {n}")
        if (n + start) % 4 == 0:
            asset.record_labels(model="labels-test", labels=[{"label": "boat", "score": 0.9}])
        if (n + start) % 5 == 0:
            asset._locate(latitude=38.7, longitude=-9.1,
                          place={"city": "Lisbon", "region": "Lisboa", "country": "Portugal", "country_code": "PT"})
        app.save(asset)
        app.record_embedding(asset_id, "clip-test", [0.5, -1.0, n + 0.25])


@pytest.mark.parametrize("max_states", [3, 20_000])
def test_the_search_index_built_aside_answers_as_following_live(services: Any, max_states: int) -> None:
    app = services.app
    owned = busy_library(services, users=2, assets_per_user=12)
    owners = sorted(owned)
    for user_id, ids in owned.items():
        enrich(services, ids[:8], user_id)
    user, ids = owners[0], owned[owners[0]]
    app.restore_asset(user, ids[-1])  # deleted by busy_library: back in FTS5
    app.purge_asset(owners[1], owned[owners[1]][-1])  # a tombstone: nothing of it searchable

    late: list[int] = []

    def progress(done: int, total: int) -> None:
        # The bulk load has read the whole log: what happens now reaches the copy aside in the
        # catch-up under the lock, on documents (and FTS rows) loaded back from its tables.
        if done == total and not late:
            late.append(done)
            app.describe(user, ids[0], "late words")  # text changed on a loaded document
            app.delete_asset(user, ids[1])  # leaves FTS5
            app.restore_asset(user, ids[-2])  # comes back
            enrich(services, ids[8:10], 1)  # new text on documents that had none
            app.rate(user, ids[3], 5)  # no text change

    rebuild(app, services.db, SearchIndexProjection, batch_size=13, progress=progress, max_states=max_states)
    assert late and head_position(app) > late[0]  # some events came after the bulk load
    built, built_answers = search_tables(services), answers(services, owners)
    assert any(r["ocr_text"] for r in built["search_documents"])

    # The same log followed live from an empty index, batch by batch.
    with services.db.transaction() as tx:
        SearchIndexProjection().drop_tables(tx)
        tx.execute(f"DELETE FROM {POSITIONS_TABLE} WHERE name = ?", (SearchIndexProjection.name,))
    runner = ProjectionRunner(app, services.db, SearchIndexProjection(), batch_size=7)
    runner.ensure_tables()
    runner.catch_up()
    assert search_tables(services) == built
    assert answers(services, owners) == built_answers
    assert any(hits for hits, _ in built_answers)
