"""HTTP details: HEAD wherever GET is, ETags of derived files that change with the file, nosniff
and a safe Content-Disposition on originals, an access log line per request with its id."""

from __future__ import annotations

import asyncio
import logging
import re

from tests.helpers import API, register
from tests.scenario import settle_jobs


async def test_head_answers_like_get_without_a_body(client, services, media):
    alice = await register(client, "alice")
    up = await alice.upload(media / "photo" / "kodak_dx4330.jpg")
    asset_id = up["data"]["asset_id"]
    for path in (f"/assets/{asset_id}/original", f"/assets/{asset_id}", "/albums", "/auth/me", "/health"):
        get = await client.get(API + path, headers=alice.headers)
        head = await client.head(API + path, headers=alice.headers)
        assert head.status == get.status == 200, path
        assert await head.read() == b""
        assert head.headers["Content-Type"] == get.headers["Content-Type"]
        assert head.headers.get("Content-Length") == get.headers.get("Content-Length"), path
    head = await client.head(f"{API}/assets/{asset_id}/original", headers=alice.headers)
    assert head.headers["ETag"] == f'"{up["data"]["content_hash"]}"'
    assert (await client.head(f"{API}/assets/{asset_id}/original")).status == 401


async def test_originals_are_not_sniffed_and_name_themselves_safely(client, media):
    alice = await register(client, "alice")
    content = (media / "photo" / "kodak_dx4330.jpg").read_bytes()
    boundary = "b0undary"  # raw, so the name arrives as written (aiohttp's client escapes it)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            "filename*=UTF-8''a%22b%3Bc.jpg\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    body += content + f"\r\n--{boundary}--\r\n".encode()
    up = await alice.call("POST", "/assets", data=body, expect=201,
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    resp = await client.get(f"{API}/assets/{up['data']['asset_id']}/original", headers=alice.headers)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith('inline; filename="a_b_c.jpg"'), disposition
    assert "filename*=UTF-8''a%22b%3Bc.jpg" in disposition
    pdf = (media / "document" / "google_docs_titled.pdf").read_bytes()
    up = await alice.upload_bytes(pdf, "doc.pdf")
    resp = await client.get(f"{API}/assets/{up['data']['asset_id']}/original", headers=alice.headers)
    assert resp.headers["Content-Disposition"].startswith("attachment;")  # never rendered as a page


async def test_thumbnail_etag_changes_when_the_file_is_rewritten(client, services, media):
    alice = await register(client, "alice")
    asset_id = (await alice.upload(media / "photo" / "kodak_dx4330.jpg"))["data"]["asset_id"]
    await asyncio.get_running_loop().run_in_executor(None, services.start_processing)
    await asyncio.get_running_loop().run_in_executor(None, settle_jobs, services)
    url = f"{API}/assets/{asset_id}/thumbnail?size=small"
    first = await client.get(url, headers=alice.headers)
    assert first.status == 200 and "immutable" not in first.headers["Cache-Control"]
    etag = first.headers["ETag"]
    assert (await client.get(url, headers={**alice.headers, "If-None-Match": etag})).status == 304
    # A reprocess writes the thumbnail again: the old ETag no longer matches.
    await alice.call("POST", f"/assets/{asset_id}/reprocess", {"tasks": ["thumbnail_asset"]})
    await asyncio.get_running_loop().run_in_executor(None, settle_jobs, services)
    again = await client.get(url, headers={**alice.headers, "If-None-Match": etag})
    assert again.status == 200 and again.headers["ETag"] != etag


async def test_request_id_is_echoed_or_made_and_logged_with_latency(client, caplog):
    caplog.set_level(logging.INFO, logger="darkroom.access")
    resp = await client.get(f"{API}/health", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"
    made = (await client.get(f"{API}/health")).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    forged = (await client.get(f"{API}/health", headers={"X-Request-Id": "x\tinjected line"})).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", forged)
    lines = [r.getMessage() for r in caplog.records if r.name == "darkroom.access"]
    assert any(re.match(r'abc-123 \S+ "GET /api/v1/health" 200 \d+ \d+\.\dms', line) for line in lines), lines
    failed = await client.get(f"{API}/assets/not-a-uuid")
    assert failed.status == 401 and failed.headers["X-Request-Id"]
