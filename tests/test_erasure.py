"""Erasure by crypto-shredding, end to end: after DELETE /admin/users/{id}?erase=true nothing
readable of the person is left in the API, the export, the admin stream, the Kafka topic's
records, the read models (live and rebuilt) or the search index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

from domain.personal import ERASED, PERSONAL_FIELDS
from domain.versioning import event_classes
from infra.event_catalogue import event_fields
from infra.event_stream import read_events
from infra.parquet_export import export_parquet
from processors.relay import event_value
from projections.registry import PROJECTIONS
from projections.runner import rebuild
from tests.helpers import jpeg, register
from tests.kafka_fixtures import kafka_darkroom

__all__ = ["kafka_darkroom"]  # the fixture, imported for pytest

SECRET_WORDS = ("zanzibar", "zanzibar@example.org", "holiday-zanzibar.jpg", "Zanzibar beach", "Zanzibar trip")


def test_every_personal_field_exists() -> None:
    for name, fields in PERSONAL_FIELDS.items():
        assert name in event_classes(), name
        assert set(fields) <= set(event_fields(event_classes()[name])), name


def _everything_as_text(services: Any, tmp_path: Path) -> dict[str, str]:
    """Every place the person's data could be readable, as text."""
    out: dict[str, str] = {}
    out["export"] = "\n".join(json.dumps(r) for r in read_events(services.app))
    kafka = []
    for n in services.app.recorder.select_notifications(0, 100_000):
        kafka.append(event_value(n.id, n.topic, services.app.mapper.to_sealed_event(n)).decode())
    out["kafka"] = "\n".join(kafka)
    tables = []
    for cls in PROJECTIONS.values():
        for table in cls.tables:
            tables.append(json.dumps(services.db.query(f"SELECT * FROM {table}"), default=str))
    out["read models"] = "\n".join(tables)
    root = tmp_path / f"pq{len(list(tmp_path.iterdir()))}"
    export_parquet(services.app, root)
    import pyarrow.parquet as pq
    out["parquet"] = "\n".join(str(pq.read_table(f).to_pylist()) for f in root.glob("type=*"))
    stored = services.app.recorder.select_notifications(0, 100_000)
    out["stored events"] = "\n".join(bytes(n.state).decode() for n in stored)
    return out


async def test_erasure_end_to_end(client, services, media, tmp_path: Path) -> None:
    admin = await register(client, "admin")
    person = await register(client, "zanzibar")
    other = await register(client, "other")
    up = await person.upload_bytes(jpeg(media, "zanzibar-1"), "holiday-zanzibar.jpg")
    asset_id = up["data"]["asset_id"]
    await person.call("PUT", f"/assets/{asset_id}/description", json={"description": "Zanzibar beach"})
    album = (await person.call("POST", "/albums", json={"album_name": "Zanzibar trip"}, expect=201))["data"]
    await person.call("POST", f"/albums/{album['album_id']}/assets/{asset_id}", json={}, expect=None)
    kept = (await other.upload_bytes(jpeg(media, "other-1"), "mine.jpg"))["data"]["asset_id"]
    stored_asset = services.app.repository.get(UUID(asset_id))
    original = services.storage.path_of(stored_asset.repository_id, stored_asset.storage_path)
    assert original.exists()

    before = _everything_as_text(services, tmp_path)
    assert "holiday-zanzibar.jpg" in before["export"] and "Zanzibar beach" in before["read models"]
    assert not any(w in before["stored events"] for w in SECRET_WORDS[1:])  # sealed at rest
    assert not any(w in before["kafka"] for w in SECRET_WORDS[1:])  # sealed on the topic

    # Bad requests change nothing.
    await person.call("DELETE", f"/admin/users/{person.user_id}?erase=true", expect=403)
    await admin.call("DELETE", "/admin/users/999?erase=true", expect=404)
    await admin.call("DELETE", f"/admin/users/{person.user_id}?erase=maybe", expect=400)
    await admin.call("DELETE", "/admin/users/0?erase=true", expect=400)
    await admin.call("DELETE", f"/admin/users/{admin.user_id}?erase=true", expect=409)

    body = await admin.call("DELETE", f"/admin/users/{person.user_id}?erase=true")
    assert body["data"]["user_id"] == person.user_id and body["data"]["assets"] == 1
    assert body["data"]["albums"] == 1 and body["data"]["files_removed"] >= 1
    assert not original.exists()

    # The person's tokens are dead; the other user is untouched.
    resp = await client.get("/api/v1/assets/liked", headers=person.headers)
    assert resp.status == 401
    await other.call("GET", f"/assets/{kept}")
    await admin.call("GET", f"/assets/{asset_id}", expect=404)

    after = _everything_as_text(services, tmp_path)
    for place, text in after.items():
        for word in SECRET_WORDS:
            assert word not in text, f"{word!r} is still readable in the {place}"
    assert ERASED in after["export"]
    records = [r for r in read_events(services.app) if r["type"] == "User.Registered"
               and r["payload"]["user_id"] == person.user_id]
    assert records[0]["payload"]["username"] == ERASED and records[0]["payload"]["email"] == ERASED
    page = await admin.call("GET", "/admin/events?limit=1000")
    assert not any(w in json.dumps(page) for w in SECRET_WORDS)

    # A rebuild from the log shows no trace either, and the other user's data is whole.
    for cls in PROJECTIONS.values():
        rebuild(services.app, services.db, cls)
    rebuilt = _everything_as_text(services, tmp_path)
    for word in SECRET_WORDS:
        assert word not in rebuilt["read models"]
    assert "mine.jpg" in rebuilt["read models"]
    search = await other.call("POST", "/assets/search", json={"query": "zanzibar", "search_type": "filename"})
    assert search["data"]["total"] == 0 if "total" in search["data"] else not search["data"].get("assets")


def test_erasure_leaves_nothing_in_elasticsearch(tmp_path: Path) -> None:
    """With the search index mirrored to Elasticsearch, the erased person's documents are gone
    from every index of the mirror (the scrubbed tables are mirrored as a new generation)."""
    import random

    import pytest

    from tests.test_search import ES_URL, elastic_services, settle
    if not ES_URL:
        pytest.skip("DARKROOM_ELASTICSEARCH_URL is not set")
    from elasticsearch import Elasticsearch

    from api.routes.erasure import erase
    from tests.search_fixtures import add_synthetic

    with elastic_services(tmp_path) as services:
        admin = services.app.register("admin", "admin@example.org", "x").user.user_id
        person = services.app.register("zanzibar", "zanzibar@example.org", "x").user.user_id
        other = services.app.register("other", "other@example.org", "x").user.user_id
        add_synthetic(services, person, random.Random(1), 1, name="holiday-zanzibar.jpg", extras=False)
        add_synthetic(services, other, random.Random(2), 2, name="mine.jpg", extras=False)
        settle(services)
        alias = services.search.elastic.alias
        with Elasticsearch(ES_URL) as client:
            client.indices.refresh(index=f"{alias}-*")
            before = json.dumps(client.search(index=f"{alias}-*", size=100)["hits"]["hits"])
            assert "zanzibar" in before
            erase(services, admin, person)
            settle(services)
            client.indices.refresh(index=f"{alias}-*")
            after = json.dumps(client.search(index=f"{alias}-*", size=100)["hits"]["hits"])
            assert "zanzibar" not in after and "mine.jpg" in after


def test_the_events_topic_carries_personal_fields_sealed_and_erasure_holds_there(kafka_darkroom) -> None:
    """On a real broker: the relay's records hold no personal field in clear; after the erasure
    the sealed copies on the topic cannot be opened by anyone (the key is gone)."""
    from dataclasses import replace

    from api.routes.erasure import erase
    from domain.personal import PERSONAL_FIELDS
    from tests.kafka_fixtures import BOOTSTRAP, event_records, wait_until
    from tests.scenario import fake_upload

    k = kafka_darkroom()
    services = k.serve()
    admin = services.app.register("kadmin", "kadmin@example.org", "x").user.user_id
    person = services.app.register("zanzibar", "zanzibar@example.org", "x").user.user_id
    up = services.app.upload(replace(fake_upload(person, 1), original_filename="holiday-zanzibar.jpg"))
    services.app.describe(person, up.asset_id, "Zanzibar beach")
    wait_until(lambda: services.relay.position == services.app.recorder.max_notification_id(), 30, "the relay")
    records = event_records(BOOTSTRAP, k.config.events_topic)
    text = json.dumps(records)
    assert "_sealed_" in text and not any(w in text for w in SECRET_WORDS)
    uploaded = next(r for r in records if r["type"] == "Asset.Uploaded" and r["aggregate_id"] == str(up.asset_id))
    opened = dict(uploaded["payload"])
    services.app.mapper.open_fields(opened, "Asset.Uploaded", PERSONAL_FIELDS["Asset.Uploaded"])
    assert opened["original_filename"] == "holiday-zanzibar.jpg"  # a key holder could read it, until...

    erase(services, admin, person)
    wait_until(lambda: services.relay.position == services.app.recorder.max_notification_id(), 30, "the relay")
    records = event_records(BOOTSTRAP, k.config.events_topic)
    assert any(r["type"] == "User.Erased" for r in records)
    assert not any(w in json.dumps(records) for w in SECRET_WORDS)
    reopened = dict(uploaded["payload"])
    services.app.mapper.open_fields(reopened, "Asset.Uploaded", PERSONAL_FIELDS["Asset.Uploaded"])
    assert reopened["original_filename"] == ERASED
