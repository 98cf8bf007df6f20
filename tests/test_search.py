"""Search: the embedded index, Elasticsearch and the plain SQL of the catalog give the same answers;
semantic search ranks by meaning within the filter; rebuilds never show a half-built index; with
Elasticsearch down the answers come from SQL and the index catches up when it is back.

Elasticsearch tests need DARKROOM_ELASTICSEARCH_URL (`make services` / `scripts/services.sh up`
writes it into .services.env); each test uses an index prefix of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from api.app import create_app
from infra.bootstrap import Services, bootstrap
from infra.settings import Settings
from projections.queries import AssetFilter, date_bound
from projections.runner import rebuild
from projections.search_index import SearchIndexProjection
from tests.conftest import make_settings
from tests.fake_embedder import vector_for
from tests.helpers import register
from tests.scenario import fake_upload
from tests.search_fixtures import add_synthetic, build_library, record_ml_text

ES_URL = os.environ.get("DARKROOM_ELASTICSEARCH_URL", "")
needs_es = pytest.mark.skipif(not ES_URL, reason="DARKROOM_ELASTICSEARCH_URL is not set: run "
                              "`scripts/services.sh up` (make services) and source .services.env")
INDEXES = ["embedded", pytest.param("elasticsearch", marks=needs_es)]


def search_settings(tmp_path: Path, backend: str, schema: str | None, *, es: bool, **extra: Any) -> Settings:
    return make_settings(
        tmp_path, backend, schema, embedder="tests.fake_embedder:factory",
        elasticsearch_url=ES_URL if es else "",
        elasticsearch_prefix="test-" + uuid.uuid4().hex[:12], **extra,
    )


def drop_es(services: Services) -> None:
    """Remove the test's indices (with a client of its own: the app may have closed the service's)."""
    if services.search.elastic is not None:
        from elasticsearch import Elasticsearch

        with Elasticsearch(ES_URL) as client:
            client.options(ignore_status=404).indices.delete(index=f"{services.search.elastic.alias}-*")


@contextmanager
def elastic_services(tmp_path: Path) -> Iterator[Services]:
    """Services on SQLite mirroring to Elasticsearch; the test's indices are dropped after."""
    services = bootstrap(search_settings(tmp_path, "sqlite", None, es=True))
    try:
        yield services
    finally:
        drop_es(services)
        services.close()


def one_asset_mirrored(services: Services) -> tuple[int, Any, str]:
    """Alice with one photo, mirrored: (her id, the Elasticsearch index, the tables' generation)."""
    owner = services.app.register("alice", "alice@example.org", "x").user.user_id
    add_synthetic(services, owner, random.Random(1), 1, name="a.jpg", extras=False)
    settle(services)
    generation = services.db.query_one("SELECT generation FROM search_generation")["generation"]
    return owner, services.search.elastic, generation


def settle(services: Services) -> None:
    # wait_for gives up after the read wait (5 s) and answers False: a 4000-asset library on two
    # busy cores can take longer, and the test then compared a half-built index (seen twice).
    head = services.app.recorder.max_notification_id() or 0
    assert services.wait_for(head, timeout=300), "read models did not catch up in 300 s"
    if services.search.elastic is not None:
        services.search.elastic.catch_up()


# -- the same answers from three places ---------------------------------------------------------

LIBRARY_SIZE = 4000


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A few thousand synthetic assets (and the corpus's names) for two users, on SQLite, indexed
    in the embedded index and (when configured) in Elasticsearch."""
    settings = search_settings(tmp_path_factory.mktemp("library"), "sqlite", None, es=bool(ES_URL))
    services = bootstrap(settings)
    alice = services.app.register("alice", "alice@example.org", "x").user.user_id
    bob = services.app.register("bob", "bob@example.org", "x").user.user_id
    build_library(services, [alice, bob, alice], LIBRARY_SIZE)
    settle(services)
    names = [r["original_filename"] for r in services.db.query("SELECT original_filename FROM catalog_assets")]
    yield services, [alice, bob], names
    drop_es(services)
    services.close()


FILENAME_ALPHABET = "abcdgijmnopsx_0123.%\\*?[]!^-ß "


@st.composite
def fragments(draw: Any, names: list[str]) -> str:
    """Text for filename conditions: pieces of real names (so they select something), or odd text."""
    if draw(st.booleans()):
        name = draw(st.sampled_from(names))
        start = draw(st.integers(0, len(name)))
        end = draw(st.integers(start, min(len(name), start + 8)))
        text = name[start:end]
        return text.upper() if draw(st.booleans()) else text
    return draw(st.text(alphabet=FILENAME_ALPHABET, max_size=5))


@st.composite
def globs(draw: Any, names: list[str]) -> str:
    name = draw(st.sampled_from(names)).lower()
    out = []
    for ch in name:
        roll = draw(st.integers(0, 9))
        if roll == 0:
            out.append("?")
        elif roll == 1:
            if not out or out[-1] != "*":
                out.append("*")
        elif roll == 2 and ch.isalnum():
            out.append(draw(st.sampled_from([f"[{ch}x]", f"[!{ch}]", "[a-m]", "[0-9]", f"[^{ch}]", "[]]"])))
        else:
            out.append(ch)
    return "".join(out)


@st.composite
def filters(draw: Any, names: list[str], owners: list[int]) -> tuple[AssetFilter, str | None]:
    def maybe(strategy: Any) -> Any:
        return draw(st.one_of(st.none(), strategy))

    mode = maybe(st.sampled_from(["contains", "startswith", "endswith", "matches"]))
    value = None
    if mode == "matches":
        value = draw(globs(names))
    elif mode is not None:
        value = draw(fragments(names))
    taken_from = taken_to = None
    if draw(st.booleans()):
        year = draw(st.integers(2004, 2025))
        taken_from = date_bound(f"{year}-{draw(st.integers(1, 12)):02d}-01", end=False)
        if draw(st.booleans()):
            taken_to = date_bound(f"{year + draw(st.integers(0, 6))}-06-30", end=True)
    f = AssetFilter(
        repository_id=maybe(st.sampled_from(["default", "archive", "nope"])),
        type=maybe(st.sampled_from(["PHOTO", "VIDEO", "AUDIO", "DOCUMENT"])),
        owner_id=maybe(st.sampled_from(owners)),
        raw=maybe(st.booleans()),
        rating=maybe(st.integers(0, 5)),
        liked=maybe(st.booleans()),
        filename_mode=mode, filename_value=value,
        taken_from=taken_from, taken_to=taken_to,
        camera_make=maybe(st.sampled_from(["nikon", "NIKON CORPORATION", "Canon", "sony", "Apple", "Leica"])),
        lens=maybe(st.sampled_from(["af nikkor 50mm f/1.8d", "FE 24-70mm F2.8 GM", "none"])),
    )
    query = maybe(fragments(names))
    return f, query


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_embedded_elasticsearch_and_sql_agree(library: Any, data: Any) -> None:
    services, owners, names = library
    f, query = data.draw(filters(names, owners))
    owner = data.draw(st.sampled_from(owners))
    limit = data.draw(st.sampled_from([5, 50, 100]))
    offset = data.draw(st.sampled_from([0, 0, 3, 40]))
    reference, total = services.catalog.filter(owner, f, limit, offset, filename_contains=query)
    expected = [a["asset_id"] for a in reference]
    hits, embedded_total = services.search.embedded.filter(owner, f, limit, offset, query)
    assert ([h for h, _ in hits], embedded_total) == (expected, total), "embedded index"
    if services.search.elastic is not None:
        answer = services.search.elastic.filter(owner, f, limit, offset, query)
        assert answer is not None
        assert ([h for h, _ in answer[0]], answer[1]) == (expected, total), "Elasticsearch"


@pytest.mark.parametrize("index", INDEXES)
def test_prefixes_and_suffixes_next_to_the_last_code_point(tmp_path: Path, index: str) -> None:
    """U+10FFFF is a legal character of a file name; next to a prefix or a suffix it must not fall
    outside the range scans the embedded index narrows prefix and suffix searches with."""
    services = bootstrap(search_settings(tmp_path, "sqlite", None, es=index == "elasticsearch"))
    try:
        owner = services.app.register("alice", "alice@example.org", "x").user.user_id
        rng = random.Random(3)
        for n, name in enumerate(["abc\U0010ffffx.jpg", "x\U0010ffffz.jpg", "abc.jpg", "yz.jpg"]):
            add_synthetic(services, owner, rng, n, name=name, extras=False)
        settle(services)
        for mode, value, expected in (("startswith", "abc", 2), ("endswith", "z.jpg", 2),
                                      ("matches", "abc*", 2), ("startswith", "abc\U0010ffff", 1),
                                      ("startswith", "\ud7ff", 0)):
            f = AssetFilter(filename_mode=mode, filename_value=value)
            assert services.catalog.filter(owner, f, 10, 0)[1] == expected, (mode, value)
            assert services.search.filter(owner, f, 10, 0)[1] == expected, (mode, value)
            assert services.search.embedded.filter(owner, f, 10, 0)[1] == expected, (mode, value)
    finally:
        drop_es(services)
        services.close()


def test_the_library_is_not_trivial(library: Any) -> None:
    """The property above compares real selections: many assets pass, many do not."""
    services, owners, _ = library
    everything = services.catalog.filter(owners[0], AssetFilter(), 1, 0)[1]
    nikon = services.catalog.filter(owners[0], AssetFilter(camera_make="nikon"), 1, 0)[1]
    globbed = services.catalog.filter(owners[0], AssetFilter(filename_mode="matches", filename_value="img_*.jpg"), 1, 0)[1]
    assert everything > 1000 and 50 < nikon < everything and 10 < globbed < everything


# -- semantic search -----------------------------------------------------------------------------

PICTURES = {  # name: (words of the picture, rating)
    "cat_on_beach.jpg": ({"cat": 1.0, "beach": 1.0}, 5),
    "cat.jpg": ({"cat": 1.0}, 3),
    "cat_at_night.jpg": ({"cat": 1.0, "night": 0.6}, 5),
    "dog_on_beach.jpg": ({"dog": 1.0, "beach": 0.9}, 5),
    "mountain.jpg": ({"mountain": 1.0, "cat": 0.1}, 1),
    "city_night.jpg": ({"city": 1.0, "night": 1.0, "beach": 0.05}, 5),
    "no_vector.jpg": (None, 5),
}


@pytest.fixture(params=INDEXES)
def index(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def semantic_services(tmp_path: Path, backend: str, pg_schema: str | None, index: str) -> Any:
    services = bootstrap(search_settings(tmp_path, backend, pg_schema, es=index == "elasticsearch"))
    yield services
    drop_es(services)
    services.close()


def picture_library(services: Services, owner_id: int) -> dict[str, str]:
    rng = random.Random(3)
    ids = {}
    for n, (name, (words, rating)) in enumerate(PICTURES.items()):
        asset_id = add_synthetic(services, owner_id, rng, 1000 + n, name=name, extras=False,
                                 vector=vector_for(words) if words else None)
        services.app.rate(owner_id, uuid.UUID(asset_id), rating)
        ids[name] = asset_id
    return ids


async def test_semantic_search_ranks_by_meaning_within_the_filter(semantic_services: Services, aiohttp_client: Any) -> None:
    services = semantic_services
    client = await aiohttp_client(create_app(services))
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    ids = picture_library(services, alice.user_id)
    bob_ids = picture_library(services, bob.user_id)
    settle(services)
    if services.search.elastic is not None:
        assert services.search.elastic.healthy and services.search.elastic.ready
    name_of = {v: k for k, v in ids.items()}

    async def semantic(user: Any, query: str, flt: dict[str, Any] | None = None, **page: Any) -> dict[str, Any]:
        body = {"query": query, "search_type": "semantic", **({"filter": flt} if flt else {}), **page}
        return (await user.call("POST", "/assets/search", body))["data"]

    data = await semantic(alice, "cat")
    ranked = [name_of[a["asset_id"]] for a in data["assets"]]
    assert ranked[:4] == ["cat.jpg", "cat_at_night.jpg", "cat_on_beach.jpg", "mountain.jpg"]
    assert set(ranked[4:]) == {"dog_on_beach.jpg", "city_night.jpg"}  # both at 0: no cat in them
    scores = [a["score"] for a in data["assets"]]
    assert scores == sorted(scores, reverse=True) and abs(scores[0] - 1.0) < 1e-3
    assert abs(scores[1] - 1 / 1.36 ** 0.5) < 1e-3
    assert data["total"] == 6  # every picture with a vector; the one without is not ranked

    data = await semantic(alice, "cat on a beach", {"rating": 5})
    assert [name_of[a["asset_id"]] for a in data["assets"]] == [
        "cat_on_beach.jpg", "cat_at_night.jpg", "dog_on_beach.jpg", "city_night.jpg"]
    assert data["total"] == 4

    # Pages: the filter is applied before ranking, so a page is never short.
    first = await semantic(alice, "beach", {"rating": 5}, limit=2)
    second = await semantic(alice, "beach", {"rating": 5}, limit=2, offset=2)
    assert len(first["assets"]) == len(second["assets"]) == 2
    assert [name_of[a["asset_id"]] for a in first["assets"] + second["assets"]] == [
        "cat_on_beach.jpg", "dog_on_beach.jpg", "city_night.jpg", "cat_at_night.jpg"]
    assert (await semantic(alice, "beach", {"rating": 5}, offset=10))["assets"] == []

    # Isolation: Bob's identical pictures never show up for Alice, and the other way round.
    bob_data = await semantic(bob, "cat")
    assert {a["asset_id"] for a in bob_data["assets"]} <= set(bob_ids.values())
    assert not {a["asset_id"] for a in data["assets"]} & set(bob_ids.values())
    assert (await semantic(alice, "cat", {"owner_id": bob.user_id}))["total"] == 0

    # Within an album alice shares with bob: her album's pictures only, ranked the same, for both.
    album = (await alice.call("POST", "/albums", {"album_name": "cats"}, expect=201))["data"]["album_id"]
    for name in ("cat_on_beach.jpg", "mountain.jpg", "dog_on_beach.jpg"):
        await alice.call("POST", f"/albums/{album}/assets/{ids[name]}")
    await alice.call("POST", f"/albums/{album}/members", {"username": "bob", "role": "viewer"}, expect=201)
    settle(services)
    for user in (alice, bob):
        data = await semantic(user, "cat", {"album_id": album})
        assert [name_of[a["asset_id"]] for a in data["assets"]] == [
            "cat_on_beach.jpg", "mountain.jpg", "dog_on_beach.jpg"] and data["total"] == 3
    assert [name_of[a["asset_id"]] for a in (await semantic(bob, "cat", {"album_id": album, "rating": 5}))["assets"]] \
        == ["cat_on_beach.jpg", "dog_on_beach.jpg"]

    # A deleted picture leaves the ranking.
    services.app.delete_asset(alice.user_id, uuid.UUID(ids["cat.jpg"]))
    settle(services)
    data = await semantic(alice, "cat")
    assert name_of[data["assets"][0]["asset_id"]] == "cat_at_night.jpg" and data["total"] == 5


async def test_vectors_of_another_dimension_never_stall_the_mirror_nor_fail_a_search(
    semantic_services: Services, aiohttp_client: Any,
) -> None:
    """Vectors of another length: an older model's (another id), or the same model id with other
    dimensions (a model directory replaced by a bigger model of the same name). Elasticsearch keeps
    following and semantic search ranks the query's own dimension only, before and after."""
    services = semantic_services
    client = await aiohttp_client(create_app(services))
    alice = await register(client, "alice")
    rng = random.Random(4)
    add_synthetic(services, alice.user_id, rng, 1, name="old.jpg", extras=False,
                  vector=[1.0, 0.0, 0.0], model="old-model")
    add_synthetic(services, alice.user_id, rng, 2, name="same_name.jpg", extras=False, vector=[0.0, 1.0, 0.0])
    settle(services)

    async def semantic(query: str, flt: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"query": query, "search_type": "semantic", **({"filter": flt} if flt else {})}
        return (await alice.call("POST", "/assets/search", body))["data"]

    assert (await semantic("cat"))["total"] == 0
    cat = add_synthetic(services, alice.user_id, rng, 3, name="cat.jpg", extras=False, vector=vector_for({"cat": 1.0}))
    settle(services)  # Elasticsearch takes the longer vector too
    if services.search.elastic is not None:
        assert services.search.elastic.healthy and services.search.elastic.lag() == 0
    for flt in (None, {"type": "PHOTO"}):
        data = await semantic("cat", flt)
        assert [a["asset_id"] for a in data["assets"]] == [cat] and data["total"] == 1


def test_a_page_deeper_than_the_candidates_is_empty_on_the_vector_graph(monkeypatch: Any) -> None:
    """Past the exact scan's reach the graph answers; an absurd page depth (the API allows an
    offset up to 2**62) is an empty page, not an overflow in faiss."""
    import numpy as np

    from infra.search import vectors

    monkeypatch.setattr(vectors, "EXACT_LIMIT", 0)
    index = vectors.VectorIndex("g", "m")
    rng = np.random.default_rng(0)
    rows = []
    for doc in range(50):
        v = rng.normal(size=8).astype("float32")
        rows.append((doc, 1, False, v / np.linalg.norm(v)))
    index.update(rows, 1)
    slots = index.owner_slots(1)
    assert [d for d, _ in index.nearest_slots(rows[7][3], slots, 3)][0] == 7
    for k in (60, 2**31 + 5, 2**62 + 20):
        assert len(index.nearest_slots(rows[7][3], slots, k)) == 50


async def test_semantic_search_without_an_embedder_is_503(tmp_path: Path, aiohttp_client: Any) -> None:
    services = bootstrap(make_settings(tmp_path, "sqlite"))
    try:
        client = await aiohttp_client(create_app(services))
        alice = await register(client, "alice")
        body = await alice.call("POST", "/assets/search", {"query": "cat", "search_type": "semantic"}, expect=503)
        assert "embedder" in body["message"]
        health = (await client.get("/api/v1/health")).status
        assert health == 200
    finally:
        services.close()


@pytest.mark.parametrize("body", [
    {"query": "x", "search_type": "fuzzy"},
    {"query": "", "search_type": "filename"},
    {"search_type": "semantic"},
    {"query": "x", "search_type": "semantic", "filter": {"rating": 9}},
    {"query": "x", "search_type": "semantic", "filter": {"filename": {"mode": "like", "value": "a"}}},
    {"query": "x", "search_type": "filename", "filter": {"date": {"from": "yesterday"}}},
    {"query": "x", "search_type": "semantic", "limit": 0},
    {"query": "x", "search_type": "semantic", "offset": -1},
])
async def test_bad_search_input_is_400(tmp_path: Path, aiohttp_client: Any, body: dict[str, Any]) -> None:
    services = bootstrap(search_settings(tmp_path, "sqlite", None, es=False))
    try:
        client = await aiohttp_client(create_app(services))
        alice = await register(client, "alice")
        answer = await alice.call("POST", "/assets/search", body, expect=400)
        assert answer["code"] != 0 and answer.get("error")
        await alice.call("POST", "/assets/filter", {"filter": body.get("filter", {"rating": 9}) or {"rating": 9}}, expect=400)
    finally:
        services.close()


# -- what gets indexed ---------------------------------------------------------------------------


@pytest.mark.parametrize("index", INDEXES)
def test_documents_carry_the_text_of_the_asset(tmp_path: Path, index: str) -> None:
    services = bootstrap(search_settings(tmp_path, "sqlite", None, es=index == "elasticsearch"))
    try:
        owner = services.app.register("alice", "alice@example.org", "x").user.user_id
        asset_id = add_synthetic(services, owner, random.Random(1), 1, name="Receipt_2020.JPG", extras=False)
        services.app.describe(owner, uuid.UUID(asset_id), "Lunch in Lisbon")
        record_ml_text(services, asset_id, ocr="TOTAL 12.50 EUR", caption="a plate of grilled sardines")
        settle(services)
        row = services.db.query_one("SELECT * FROM search_documents WHERE asset_id = ?", (asset_id,))
        assert row["ocr_text"] == "TOTAL 12.50 EUR" and row["caption"] == "a plate of grilled sardines"
        assert row["description"] == "Lunch in Lisbon" and row["filename_reversed"] == "gpj.0202_tpiecer"
        text = services.db.query("SELECT rowid FROM search_text WHERE search_text MATCH ?", ('caption : "sardines"',))
        assert [r["rowid"] for r in text] == [row["doc_id"]]
        if services.search.elastic is not None:
            client = services.search.elastic.client
            found = client.search(index=services.search.elastic.alias, query={"match": {"ocr_text": "eur"}})
            assert [h["_id"] for h in found["hits"]["hits"]] == [asset_id]
            assert found["hits"]["hits"][0]["_source"]["caption"] == "a plate of grilled sardines"
    finally:
        drop_es(services)
        services.close()


@needs_es
def test_a_huge_metadata_value_does_not_stall_the_mirror(tmp_path: Path) -> None:
    """EXIF strings have no length limit (a crafted file's lens name of 40 KB); Lucene refuses a
    keyword term over 32 KB, which must not stop Elasticsearch following for good."""
    with elastic_services(tmp_path) as services:
        app = services.app
        owner = app.register("alice", "alice@example.org", "x").user.user_id
        outcome = app.upload(dataclasses.replace(fake_upload(owner, 1), original_filename="huge.jpg"))
        ticket = app.start_job(outcome.task_id, "test-worker")
        assert ticket is not None
        huge = "Lens " + "\u00e9" * 20_000
        assert app.complete_job(outcome.task_id, ticket.attempt, {
            "width": 10, "height": 10, "duration": None, "taken_time": None, "taken_time_local": None,
            "specific_metadata": {"camera_make": huge, "lens_model": huge}})
        add_synthetic(services, owner, random.Random(1), 2, name="after.jpg", extras=False)
        settle(services)
        elastic = services.search.elastic
        assert elastic.healthy and elastic.lag() == 0
        assert elastic.filter(owner, AssetFilter(), 10, 0)[1] == 2


@needs_es
def test_an_index_made_with_an_older_mapping_is_rebuilt_not_written_to(tmp_path: Path) -> None:
    from infra.search.elastic import MIRRORS_TABLE

    with elastic_services(tmp_path) as services:
        owner, elastic, generation = one_asset_mirrored(services)
        old = f"{elastic.alias}-{generation[:12]}-0ld0ld00"  # named as before mapping versions
        elastic.client.indices.create(index=old, mappings={"dynamic": "strict", "properties": {"asset_id": {"type": "keyword"}}})
        elastic.client.indices.update_aliases(actions=[
            {"remove": {"index": elastic._alias_target(), "alias": elastic.alias}},
            {"add": {"index": old, "alias": elastic.alias}}])
        with services.db.transaction() as tx:
            tx.execute(f"UPDATE {MIRRORS_TABLE} SET index_name = ? WHERE name = ?", (old, elastic.alias))
        elastic._known = None  # a server started on the upgraded code
        add_synthetic(services, owner, random.Random(2), 2, name="b.jpg", extras=False, vector=vector_for({"cat": 1.0}))
        settle(services)
        assert elastic._alias_target().startswith(elastic._name_prefix())
        assert elastic.healthy and elastic.filter(owner, AssetFilter(), 10, 0)[1] == 2


@needs_es
def test_a_rebuild_deletes_indices_left_by_unfinished_rebuilds_and_nothing_else(tmp_path: Path, monkeypatch: Any) -> None:
    from infra.search import elastic as elastic_module

    with elastic_services(tmp_path) as services:
        owner, elastic, generation = one_asset_mirrored(services)
        killed_mid_build = f"{elastic._name_prefix()}{generation[:12]}-deadbeef"
        older_mapping = f"{elastic.alias}-{generation[:12]}-0123abcd"
        not_ours = f"{elastic.alias}-notes"
        aliased = f"{elastic.alias}-m1-{generation[:12]}-feedf00d"
        for name in (killed_mid_build, older_mapping, not_ours, aliased):
            elastic.client.indices.create(index=name)
        elastic.client.indices.put_alias(index=aliased, name=f"{elastic.alias}-someone-elses")
        everything = {killed_mid_build, older_mapping, not_ours, aliased}
        elastic.rebuild()  # young leftovers may be another replica's build in progress: kept
        assert set(elastic.client.indices.get_alias(index=f"{elastic.alias}-*")) == everything | {elastic._alias_target()}
        monkeypatch.setattr(elastic_module, "LEFTOVER_AGE_SECONDS", 0.0)  # now they are old
        elastic.rebuild()
        left = set(elastic.client.indices.get_alias(index=f"{elastic.alias}-*"))
        assert left == {elastic._alias_target(), not_ours, aliased}
        assert elastic.filter(owner, AssetFilter(), 10, 0)[1] == 1


@needs_es
def test_an_index_deleted_while_it_is_built_is_never_swapped_in(tmp_path: Path) -> None:
    """Another replica's clean-up (or an operator) deletes the index being built; the next bulk
    write re-creates it with a guessed mapping (the node auto-creates indices). The swap refuses
    it: the alias stays on the good index."""
    with elastic_services(tmp_path) as services:
        owner = services.app.register("alice", "alice@example.org", "x").user.user_id
        for n in range(3):
            add_synthetic(services, owner, random.Random(n), n, name=f"{n}.jpg", extras=False)
        settle(services)
        elastic = services.search.elastic
        good = elastic._alias_target()
        real_bulk = elastic._bulk

        def bulk_after_a_deletion(index: str, rows: list[dict[str, Any]], refresh: bool, require_alias: bool = False) -> None:
            if index != elastic.alias:  # the build's own writes
                elastic.client.options(ignore_status=404).indices.delete(index=index)
            real_bulk(index, rows, refresh, require_alias)

        elastic._bulk = bulk_after_a_deletion
        with pytest.raises(RuntimeError, match="was deleted while it was being built"):
            elastic.rebuild()
        elastic._bulk = real_bulk
        assert elastic._alias_target() == good
        assert set(elastic.client.indices.get_alias(index=f"{elastic.alias}-*")) == {good}
        assert elastic.filter(owner, AssetFilter(), 10, 0)[1] == 3


@needs_es
def test_an_older_document_never_overwrites_a_newer_one(tmp_path: Path) -> None:
    with elastic_services(tmp_path) as services:
        owner = services.app.register("alice", "alice@example.org", "x").user.user_id
        asset_id = add_synthetic(services, owner, random.Random(1), 1, name="a.jpg", extras=False)
        settle(services)
        old = services.db.query_one("SELECT * FROM search_documents WHERE asset_id = ?", (asset_id,))
        services.app.rate(owner, uuid.UUID(asset_id), 4)
        settle(services)
        elastic = services.search.elastic
        elastic._bulk(elastic.alias, [old], refresh=True)  # a late, older write (a retry, a lagging mirror)
        doc = elastic.client.get(index=elastic.alias, id=asset_id)
        assert doc["_source"]["rating"] == 4 and doc["_version"] > int(old["version"])


# -- rebuild under load --------------------------------------------------------------------------


@pytest.mark.parametrize("index", INDEXES)
def test_rebuild_while_searching(tmp_path: Path, index: str) -> None:
    services = bootstrap(search_settings(tmp_path, "sqlite", None, es=index == "elasticsearch"))
    try:
        owner = services.app.register("alice", "alice@example.org", "x").user.user_id
        rng = random.Random(5)
        for n in range(600):
            add_synthetic(services, owner, rng, n, vector=vector_for({"cat": rng.random(), "dog": rng.random()}))
        settle(services)
        f = AssetFilter(filename_mode="contains", filename_value="img")
        expected = services.catalog.filter(owner, f, 20, 0)
        expected_all = services.catalog.filter(owner, AssetFilter(), 1, 0)[1]
        generation = services.db.query_one("SELECT generation FROM search_generation")["generation"]
        failures: list[str] = []
        answers = 0
        stop = threading.Event()

        def search() -> None:
            nonlocal answers
            while not stop.is_set():
                try:
                    assets, total = services.search.filter(owner, f, 20, 0)
                    _, everything = services.search.filter(owner, AssetFilter(), 1, 0)
                    ranked, ranked_total = services.search.semantic(owner, AssetFilter(), "cat", 5, 0)
                    if ([a["asset_id"] for a in assets], total) != ([a["asset_id"] for a in expected[0]], expected[1]):
                        failures.append(f"filter answered {total} assets, expected {expected[1]}")
                    if everything != expected_all or len(ranked) != 5:
                        failures.append(f"a partial index: {everything} of {expected_all}, {len(ranked)} ranked")
                    answers += 1
                except Exception as exc:  # noqa: BLE001 - any failure is the finding
                    failures.append(repr(exc))

        threads = [threading.Thread(target=search) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            rebuild(services.app, services.db, SearchIndexProjection, batch_size=200)
            if services.search.elastic is not None:
                before = services.search.elastic._alias_target()
                services.search.elastic.catch_up()  # a new generation: a new index aside, then the swap
                assert services.search.elastic._alias_target() != before
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not failures, failures[:5]
        assert answers > 0
        assert services.db.query_one("SELECT generation FROM search_generation")["generation"] != generation
    finally:
        drop_es(services)
        services.close()


@needs_es
def test_searches_and_commands_never_wait_for_the_first_build_of_the_index(tmp_path: Path) -> None:
    """While the following thread builds the first index (a long job on a big library), health
    says `starting` and filters answer from SQL: neither a search nor a command's read-your-writes
    waits for the build."""
    services = bootstrap(search_settings(tmp_path, "sqlite", None, es=True))
    elastic = services.search.elastic
    try:
        owner = services.app.register("alice", "alice@example.org", "x").user.user_id
        rng = random.Random(2)
        for n in range(5):
            add_synthetic(services, owner, rng, n, extras=False, name=f"IMG_{n:04d}.JPG")
        for runner in services.runners.values():
            runner.catch_up()
        assert not elastic.ready
        answers: list[Any] = []
        with elastic._lock:  # the following thread is in the middle of the first build
            services.search.start_following(interval=0.05)
            assert services.search.health()["status"] == "starting"

            def search() -> None:
                answers.append(services.search.filter(owner, AssetFilter(), 10, 0)[1])
                position = services.app.rate(owner, uuid.UUID(add_synthetic(
                    services, owner, rng, 9, extras=False, name="late.jpg")), 3)
                answers.append(services.wait_for(position))

            searching = threading.Thread(target=search)
            searching.start()
            searching.join(timeout=5)
            waited = searching.is_alive()
        searching.join()
        assert not waited, "a search or a command waited for the index build"
        assert answers == [5, True]
    finally:
        drop_es(services)
        services.close()


def test_processes_starting_at_once_both_get_the_mirror_table(tmp_path: Path, backend: str, pg_schema: str | None) -> None:
    """The server and a worker start together on a fresh database: both look for
    `search_mirrors`, one creates it; the other must start too, not fail on the table."""
    from infra.search.elastic import ElasticIndex

    services = bootstrap(search_settings(tmp_path, backend, pg_schema, es=False))
    try:
        settings = dataclasses.replace(services.settings, elasticsearch_url="http://127.0.0.1:9")
        ElasticIndex(settings, services.db).close()  # the other process, a moment earlier
        real = services.db.table_exists
        looks: list[str] = []

        def looked_before_it_was_made(tx: Any, name: str) -> bool:
            looks.append(name)
            return False if len(looks) == 1 else real(tx, name)

        services.db.table_exists = looked_before_it_was_made  # type: ignore[method-assign]
        ElasticIndex(settings, services.db).close()
    finally:
        services.close()


@needs_es
def test_a_deleted_asset_never_shows_while_elasticsearch_lags(tmp_path: Path) -> None:
    """The mirror may be behind the SQL read models (the following thread in a long rebuild lets
    a command wait for it only briefly): a hit Elasticsearch still has for a deleted asset is not
    an asset any more."""
    with elastic_services(tmp_path) as services:
        owner = services.app.register("alice", "alice@example.org", "x").user.user_id
        rng = random.Random(6)
        ids = [add_synthetic(services, owner, rng, n, extras=False, name=f"cat_{n}.jpg",
                             vector=vector_for({"cat": 1.0, "dog": n / 10})) for n in range(3)]
        settle(services)
        services.app.delete_asset(owner, uuid.UUID(ids[0]))
        for runner in services.runners.values():  # the SQL read models apply it; the mirror not yet
            runner.catch_up()
        assert services.search.elastic.lag() > 0
        assets, _ = services.search.filter(owner, AssetFilter(), 10, 0)
        ranked, _ = services.search.semantic(owner, AssetFilter(), "cat", 10, 0)
        assert ids[0] not in [a["asset_id"] for a in assets + ranked]


# -- Elasticsearch down --------------------------------------------------------------------------


@needs_es
async def test_elasticsearch_down_answers_from_sql_and_catches_up(
    tmp_path: Path, backend: str, pg_schema: str | None, aiohttp_client: Any, caplog: Any,
) -> None:
    from elasticsearch import Elasticsearch

    services = bootstrap(search_settings(tmp_path, backend, pg_schema, es=True))
    try:
        client = await aiohttp_client(create_app(services))
        alice = await register(client, "alice")
        rng = random.Random(9)
        for n in range(30):
            add_synthetic(services, alice.user_id, rng, n, extras=False, name=f"IMG_{n:04d}.JPG")
        settle(services)
        elastic = services.search.elastic
        live = elastic.client
        assert (await client.get("/api/v1/health")).status == 200

        elastic.client = Elasticsearch("http://127.0.0.1:9", request_timeout=2, max_retries=0)  # nothing listens
        for n in range(30, 40):
            add_synthetic(services, alice.user_id, rng, n, extras=False, name=f"IMG_{n:04d}.JPG")
        # What a command's handler does before answering: the SQL read models apply it at once,
        # and the try to bring Elasticsearch along fails.
        assert services.wait_for(services.app.recorder.max_notification_id() or 0)
        assert not elastic.healthy
        body = {"query": "img_003", "search_type": "filename"}
        data = (await alice.call("POST", "/assets/search", body))["data"]
        assert data["total"] == 10  # IMG_0030..IMG_0039: written while Elasticsearch was down
        data = (await alice.call("POST", "/assets/filter", {"filter": {"filename": {"mode": "endswith", "value": "9.jpg"}}}))["data"]
        assert data["total"] == 4
        health = await client.get("/api/v1/health", headers=alice.headers)  # alice: the admin
        report = (await health.json())["data"]
        assert health.status == 503 and report["search_index"]["status"] == "degraded"
        assert "Elasticsearch" in report["search_index"]["note"] and report["search_index"]["lag"] > 0
        assert any("answer from SQL" in r.getMessage() or "answering from SQL" in r.getMessage() for r in caplog.records)

        elastic.client = live  # back: the server's following thread catches up on its own
        deadline = time.monotonic() + 15
        while not (elastic.healthy and elastic.lag() == 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert elastic.healthy and elastic.lag() == 0
        data = (await alice.call("POST", "/assets/search", body))["data"]
        assert data["total"] == 10
        answer = elastic.filter(alice.user_id, AssetFilter(), 100, 0)
        assert answer is not None and answer[1] == 40  # caught up: served from Elasticsearch again
        assert (await client.get("/api/v1/health")).status == 200
    finally:
        drop_es(services)
        services.close()


@needs_es
def test_projections_status_shows_the_elasticsearch_mirror(tmp_path: Path) -> None:
    from tests.test_cli import darkroom

    with elastic_services(tmp_path) as services:
        owner = services.app.register("alice", "alice@example.org", "x").user.user_id
        add_synthetic(services, owner, random.Random(3), 5, extras=False)
        settle(services)
        out = darkroom(services.settings, "projections", "status").stdout
        line = [x for x in out.splitlines() if x.startswith("elasticsearch mirror")]
        assert line and services.search.elastic.alias in line[0] and "0 documents behind" in line[0], out

