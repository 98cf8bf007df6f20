"""The event catalogue: one JSON Schema per event type from the domain, served to admins,
written by the CLI, carried by an AsyncAPI document, and true of every event ever written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from domain.versioning import event_classes
from infra.event_catalogue import asyncapi_document, catalogue
from infra.event_stream import read_events
from tests.golden_log import golden_logs, load_into
from tests.helpers import register
from tests.scenario import busy_library

ROOT = Path(__file__).resolve().parent.parent


def _validators() -> dict[str, Draft202012Validator]:
    return {name: Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
            for name, schema in catalogue()["events"].items()}


def test_every_domain_event_type_has_a_valid_schema() -> None:
    schemas = catalogue()["events"]
    assert set(schemas) == set(event_classes())
    for name, schema in schemas.items():
        Draft202012Validator.check_schema(schema)
        assert schema["description"], name
        assert "originator_topic" not in schema["properties"]["payload"]["properties"], name


@pytest.mark.parametrize("log", golden_logs(), ids=[p.name for p in golden_logs()])
def test_every_event_of_a_golden_log_matches_its_schema(services, log) -> None:
    """Old shapes (upcast on read) and sealed fields (opened, or erased) all validate."""
    load_into(services, log)
    validators = _validators()
    types = set()
    for record in read_events(services.app):
        validators[record["type"]].validate(record)
        assert "originator_topic" not in record["payload"]
        types.add(record["type"])
    assert set(json.loads((log / "manifest.json").read_text())["event_types"]) <= types


def test_every_event_of_a_log_written_now_matches_its_schema(services) -> None:
    owned = busy_library(services, users=2, assets_per_user=4)
    services.app.erase_user(1, max(owned), [], [])  # and an erasure: its event, sealed fields erased
    validators = _validators()
    for record in read_events(services.app):
        validators[record["type"]].validate(record)
        assert "originator_topic" not in record["payload"]


async def test_admins_read_the_catalogue_others_do_not(client) -> None:
    admin = await register(client, "alice")
    other = await register(client, "bob")
    body = await admin.call("GET", "/admin/events/schema")
    assert set(body["data"]["events"]) == set(event_classes())
    assert body["data"]["events"]["Asset.RatingChanged"]["properties"]["payload"]["properties"] == {
        "rating": {"type": "integer"}}
    await other.call("GET", "/admin/events/schema", expect=403)
    resp = await client.get("/api/v1/admin/events/schema")
    assert resp.status == 401
    page = await admin.call("GET", "/admin/events?limit=1000")
    validators = _validators()
    for record in page["data"]["events"]:
        validators[record["type"]].validate(record)
    registered = [r for r in page["data"]["events"] if r["type"] == "User.Registered"]
    assert registered and all("originator_topic" not in r["payload"] for r in registered)
    assert all(r["payload"]["password_hash"] == "***" for r in registered)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_asyncapi_document_describes_the_kafka_topics() -> None:
    doc = asyncapi_document(prefix="acme")
    assert doc["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in doc["channels"].values()}
    assert "acme.events" in addresses and "acme.jobs.metadata_asset" in addresses
    for ref in _refs(doc):  # every reference resolves inside the document
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
    events = doc["channels"]["events"]["messages"]
    assert len(events) == len(event_classes())
    for operation in doc["operations"].values():
        assert operation["action"] in ("send", "receive")


def test_cli_writes_the_catalogue_and_the_asyncapi_document(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "DARKROOM_DATA_DIR": str(tmp_path / "d")}
    out = tmp_path / "catalogue.json"
    done = subprocess.run([sys.executable, "-m", "infra.cli", "events", "schema", "-o", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == catalogue()
    done = subprocess.run([sys.executable, "-m", "infra.cli", "events", "schema", "--asyncapi", "--prefix", "acme"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["channels"]["events"]["address"] == "acme.events"


def test_kafka_event_records_match_the_asyncapi_schemas(services) -> None:
    """What the relay puts on `<prefix>.events` validates against the AsyncAPI document."""
    from processors.relay import event_value

    load_into(services, golden_logs()[0])  # written before personal fields were sealed
    busy_library(services, users=1, assets_per_user=4)  # written now: sealed
    schemas = asyncapi_document()["components"]["schemas"]
    sealed = 0
    for n in services.app.recorder.select_notifications(0, 10_000):
        record = json.loads(event_value(n.id, n.topic, services.app.mapper.to_sealed_event(n)))
        Draft202012Validator(schemas[record["type"].replace(".", "_")]).validate(record)
        sealed += sum(1 for v in record["payload"].values() if isinstance(v, dict) and "_sealed_" in v)
    assert sealed > 0
