"""Health, the OpenAPI document, and the admin event stream over HTTP."""

from __future__ import annotations

from api.registry import PREFIX, ROUTES
from tests.helpers import API, register


async def test_health_reports_each_backend(client, services):
    admin = await register(client, "admin")  # the first account: an admin sees the detail
    resp = await client.get(f"{API}/health", headers=admin.headers)
    body = await resp.json()
    assert resp.status == 200 and body["code"] == 0
    data = body["data"]
    assert data["event_store"]["status"] == "ok"
    assert data["event_store"]["backend"] == ("postgresql" if services.settings.is_postgres else "sqlite")
    assert set(data["projections"]) >= {"catalog", "albums"}
    assert all(p["lag"] == 0 for p in data["projections"].values())
    assert "bus" in data and "search_index" in data


async def test_openapi_document_covers_every_route(client):
    resp = await client.get(f"{API}/openapi.json")
    doc = await resp.json()
    assert resp.status == 200 and doc["openapi"].startswith("3.1")
    for spec in ROUTES:
        assert spec.method.lower() in doc["paths"][PREFIX + spec.path], spec.path
    register_op = doc["paths"][f"{PREFIX}/auth/register"]["post"]
    ref = register_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"username", "email", "password"}
    assert schema["additionalProperties"] is False
    rating = doc["components"]["schemas"]["RatingBody"]["properties"]["rating"]
    assert rating["maximum"] == 5 and rating["minimum"] == 0
    asset_op = doc["paths"][f"{PREFIX}/assets/{{id}}"]["get"]
    envelope, data = asset_op["responses"]["200"]["content"]["application/json"]["schema"]["allOf"]
    assert envelope["$ref"].endswith("/Envelope")
    assert data["properties"]["data"]["$ref"].endswith("/AssetDTO")
    assert register_op["security"] == [] and asset_op["security"] == [{"bearer": []}]


async def test_admin_event_stream_is_cursor_paginated(client, services):
    admin = await register(client, "admin")
    other = await register(client, "other")
    for rating in (1, 2, 3):
        up = await admin.upload_bytes(b"%PDF-1.4\n" + bytes([rating]) * 100, f"doc{rating}.pdf")
        await admin.call("PUT", f"/assets/{up['data']['asset_id']}/rating", {"rating": rating})
    head = services.app.recorder.max_notification_id()

    seen, after = [], 0
    while True:
        page = (await admin.call("GET", f"/admin/events?after={after}&limit=4"))["data"]
        seen.extend(e["position"] for e in page["events"])
        after = page["next_after"]
        if not page["has_more"]:
            break
    assert seen == list(range(1, head + 1))

    typed = (await admin.call("GET", "/admin/events?type=Asset.RatingChanged&limit=100"))["data"]
    assert [e["payload"]["rating"] for e in typed["events"]] == [1, 2, 3]

    forbidden = await other.call("GET", "/admin/events", expect=403)
    assert forbidden["code"] == 403
    for bad in ("after=-1", "limit=0", "after=x", "limit=abc"):
        body = await admin.call("GET", f"/admin/events?{bad}", expect=400)
        assert body["code"] == 400 and "error" in body
    resp = await client.get(f"{API}/admin/events")
    assert resp.status == 401
