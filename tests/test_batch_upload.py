"""Batch and chunked upload through HTTP, on both backends: `POST /assets/batch`, its config and
progress; resumable sessions (out of order, repeated, concurrent chunks), hashes, limits,
isolation between users, expiry, and flat memory for a large chunked file.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from blake3 import blake3

from api.routes.batch import upload_sessions
from infra.upload_sessions import GIB, MIB, batch_config
from tests.helpers import API, User, register

PHOTO = "photo/canon_eos_5d_mark_iii_lens.jpg"  # ~2.2 MB: worth cutting into chunks
SMALL_PHOTO = "photo/apple_iphone_4_gps.jpg"
AUDIO = "audio/aac_itunes_tags.m4a"
DOCUMENT = "document/acrobat_distiller_title_author.pdf"
VIDEO = "video/mpeg4_amr.3gp"

Part = tuple[str, bytes | str, str | None]  # field name, value, filename (None: a text field)


# -- helpers -----------------------------------------------------------------------------------


def b3(content: bytes) -> str:
    return blake3(content).hexdigest()


def cut(content: bytes, n: int) -> list[bytes]:
    """`content` in `n` chunks of equal size but the last, as a client following chunk_size does."""
    size = -(-len(content) // n)
    chunks = [content[i * size:(i + 1) * size] for i in range(n)]
    assert b"".join(chunks) == content and all(chunks)
    return chunks


async def post_batch(user: User, parts: list[Part], headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    writer = aiohttp.MultipartWriter("form-data")
    for name, value, filename in parts:
        payload = writer.append(value if isinstance(value, bytes) else value.encode(),
                                {"Content-Type": "application/octet-stream" if filename else "text/plain"})
        payload.set_content_disposition("form-data", name=name, **({"filename": filename} if filename else {}))
    resp = await user.client.post(f"{API}/assets/batch", data=writer, headers={**user.headers, **(headers or {})})
    return resp.status, await resp.json()


async def batch(user: User, parts: list[Part], expect: int = 200, **kwargs: Any) -> dict[str, Any]:
    status, body = await post_batch(user, parts, **kwargs)
    assert status == expect, (status, body)
    if expect == 200:
        assert body["code"] == 0, body
        return body["data"]
    assert body["code"] != 0 and body["message"], body
    assert "data" not in body, body
    return body


async def send_chunk(user: User, sid: str, index: int, total: int, data: bytes, filename: str = "file.jpg",
                     expect: int = 200, extra: list[Part] | None = None) -> dict[str, Any]:
    body = await batch(user, [(f"chunk_{sid}_{index}_{total}", data, filename), *(extra or [])], expect=expect)
    if expect == 200:
        assert len(body["results"]) == 1, body
        return body["results"][0]
    return body


async def asset_ids(user: User) -> list[str]:
    body = await user.call("GET", f"/assets?owner_id={user.user_id}&limit=100")
    return sorted(a["asset_id"] for a in body["data"]["assets"])


async def original(user: User, asset_id: str) -> bytes:
    resp = await user.client.get(f"{API}/assets/{asset_id}/original", headers=user.headers)
    assert resp.status == 200, resp.status
    return await resp.read()


async def progress(user: User, ids: str | None = None, expect: int = 200) -> dict[str, Any]:
    query = f"?session_ids={ids}" if ids is not None else ""
    body = await user.call("GET", f"/assets/batch/progress{query}", expect=expect)
    return body.get("data", body)


def leftovers(services: Any) -> dict[str, list[str]]:
    """Files a refused request must not leave: staged uploads and stored originals."""
    stored: list[str] = []
    for root in services.storage.repositories.values():
        stored += sorted(str(p) for p in root.rglob("*") if p.is_file())
    return {"staging": sorted(p.name for p in services.storage.staging.iterdir()), "stored": stored}


def session_dir(services: Any, user: User, sid: str) -> Path:
    return services.settings.data_dir / "uploads" / str(user.user_id) / sid


def assert_result(result: dict[str, Any], status: str, content: bytes | None = None) -> None:
    fields = {"session_id", "file_name", "content_hash", "size", "status", "success", "asset_id", "task_id",
              "message", "error"}
    assert fields <= set(result), result
    assert result["status"] == status, result
    assert result["success"] is (status != "failed"), result
    if status in ("queued", "duplicate"):
        assert result["asset_id"] and result["error"] is None, result
    if status == "failed":
        assert result["error"] and result["asset_id"] is None, result
    if content is not None:
        assert result["content_hash"] == b3(content) and result["size"] == len(content), result


# -- singles -----------------------------------------------------------------------------------


async def test_several_singles_in_one_request_become_assets(client, services, media):
    alice = await register(client, "alice")
    files = {"p1": SMALL_PHOTO, "a-2": AUDIO, "D3": DOCUMENT}
    data = await batch(alice, [(f"single_{sid}", (media / rel).read_bytes(), Path(rel).name)
                               for sid, rel in files.items()])
    results = data["results"]
    assert [r["session_id"] for r in results] == list(files)
    for result, rel in zip(results, files.values()):
        content = (media / rel).read_bytes()
        assert_result(result, "queued", content)
        assert result["file_name"] == Path(rel).name
        asset = (await alice.call("GET", f"/assets/{result['asset_id']}"))["data"]
        assert asset["hash"] == b3(content) and asset["original_filename"] == Path(rel).name
        assert await original(alice, result["asset_id"]) == content
    assert sorted(await asset_ids(alice)) == sorted(r["asset_id"] for r in results)
    assert leftovers(services)["staging"] == []
    # The same file again is a duplicate naming the existing asset; singles are not sessions.
    again = await batch(alice, [("single_x", (media / SMALL_PHOTO).read_bytes(), "again.jpg")])
    assert_result(again["results"][0], "duplicate")
    assert again["results"][0]["asset_id"] == results[0]["asset_id"]
    assert (await progress(alice))["sessions"] == []


async def test_one_bad_file_fails_alone(client, services, media):
    """Unsupported content, an empty file and a wrong hash fail their own result only."""
    alice = await register(client, "alice")
    photo = (media / SMALL_PHOTO).read_bytes()
    audio = (media / AUDIO).read_bytes()
    data = await batch(alice, [
        ("single_text", b"just some text, not a photo\n" * 10, "notes.txt"),
        ("single_good", photo, "good.jpg"),
        ("single_empty", b"", "empty.jpg"),
        ("single_audio", audio, "song.m4a"),
        ("hash_audio", "0" * 64, None),
    ])
    by_sid = {r["session_id"]: r for r in data["results"]}
    assert_result(by_sid["text"], "failed")
    assert "415" in by_sid["text"]["message"]
    assert_result(by_sid["empty"], "failed")
    assert_result(by_sid["audio"], "failed")
    assert "does not match" in by_sid["audio"]["error"]
    assert_result(by_sid["good"], "queued", photo)
    assert await asset_ids(alice) == [by_sid["good"]["asset_id"]]
    assert leftovers(services)["staging"] == []


async def test_x_content_hash_applies_to_the_one_single_file(client, media):
    alice = await register(client, "alice")
    photo = (media / SMALL_PHOTO).read_bytes()
    good = await batch(alice, [("single_a", photo, "a.jpg")], headers={"X-Content-Hash": b3(photo).upper()})
    assert_result(good["results"][0], "queued", photo)
    other = (media / DOCUMENT).read_bytes()
    bad = await batch(alice, [("single_b", other, "b.pdf")], headers={"X-Content-Hash": b3(photo)})
    assert_result(bad["results"][0], "failed")
    assert "X-Content-Hash" in bad["results"][0]["error"]
    # With two singles (or only chunks) the header names no single file: 400, nothing stored.
    before = await asset_ids(alice)
    body = await batch(alice, [("single_c", other, "c.pdf"), ("single_d", (media / AUDIO).read_bytes(), "d.m4a")],
                       expect=400, headers={"X-Content-Hash": b3(other)})
    assert "X-Content-Hash" in body["error"]
    await batch(alice, [("single_e", photo, "e.jpg")], expect=400, headers={"X-Content-Hash": "zz"})
    assert await asset_ids(alice) == before


async def test_unknown_repository_is_400_and_stores_nothing(client, services, media):
    alice = await register(client, "alice")
    content = (media / PHOTO).read_bytes()
    before = leftovers(services)
    body = await batch(alice, [("single_a", (media / SMALL_PHOTO).read_bytes(), "a.jpg"),
                               ("chunk_b_0_2", content[:1000], "b.jpg"),
                               ("repository_id", "no-such-repository", None)], expect=400)
    assert "repository_id" in body["error"]
    assert await asset_ids(alice) == []
    assert leftovers(services) == before
    assert (await progress(alice))["sessions"] == []
    assert not (services.settings.data_dir / "uploads" / str(alice.user_id) / "b").exists()


# -- chunked sessions --------------------------------------------------------------------------


async def test_chunks_out_of_order_and_repeated_make_one_identical_asset(client, services, media):
    alice = await register(client, "alice")
    content = (media / PHOTO).read_bytes()
    chunks = cut(content, 5)
    sid = "photo-1"
    sequence = [3, 0, 4, 0, 1, 2]  # out of order, chunk 0 twice (same bytes)
    expected_received = [1, 2, 3, 3, 4]
    for i, index in enumerate(sequence[:-1]):
        result = await send_chunk(alice, sid, index, 5, chunks[index], filename="canon.jpg")
        assert_result(result, "partial")
        assert result["message"] == f"received {expected_received[i]} of 5 chunks", result
        assert result["asset_id"] is None and result["content_hash"] is None
    assert await asset_ids(alice) == []
    last = await send_chunk(alice, sid, 2, 5, chunks[2], filename="canon.jpg")
    assert_result(last, "queued", content)
    assert last["file_name"] == "canon.jpg"

    assert await asset_ids(alice) == [last["asset_id"]]
    asset = (await alice.call("GET", f"/assets/{last['asset_id']}"))["data"]
    assert asset["hash"] == b3(content) and asset["file_size"] == len(content)
    assert asset["type"] == "PHOTO"
    assert await original(alice, last["asset_id"]) == content

    state = await progress(alice, sid)
    assert state["summary"] == {"total_sessions": 1, "active_sessions": 0, "completed_files": 1,
                                "failed_sessions": 0, "overall_progress": 1.0}
    session = state["sessions"][0]
    assert (session["status"], session["progress"], session["received_chunks"], session["total_chunks"]) == \
        ("completed", 1.0, 5, 5)
    assert session["bytes_done"] == session["bytes_total"] == len(content)
    assert session["filename"] == "canon.jpg" and session["last_activity"]
    # The parts are gone once the file is assembled; nothing is left in staging.
    assert list(session_dir(services, alice, sid).glob("*.part")) == []
    assert leftovers(services)["staging"] == []


async def test_a_request_may_carry_several_chunks_and_sessions(client, media):
    alice = await register(client, "alice")
    photo, audio = (media / PHOTO).read_bytes(), (media / AUDIO).read_bytes()
    p, a = cut(photo, 3), cut(audio, 2)
    first = await batch(alice, [("chunk_p_2_3", p[2], "p.jpg"), ("chunk_a_0_2", a[0], "a.m4a"),
                                ("chunk_p_0_3", p[0], "p.jpg"), ("single_s", (media / VIDEO).read_bytes(), "s.3gp")])
    assert [(r["session_id"], r["status"]) for r in first["results"]] == \
        [("p", "partial"), ("a", "partial"), ("s", "queued")]
    assert first["results"][0]["message"] == "received 2 of 3 chunks"
    assert first["results"][0]["size"] == len(p[0]) + len(p[2])
    second = await batch(alice, [("chunk_a_1_2", a[1], "a.m4a"), ("hash_a", b3(audio), None),
                                 ("chunk_p_1_3", p[1], "p.jpg"), ("hash_p", b3(photo), None)])
    by_sid = {r["session_id"]: r for r in second["results"]}
    assert_result(by_sid["a"], "queued", audio)
    assert_result(by_sid["p"], "queued", photo)
    assert len(await asset_ids(alice)) == 3


async def test_missing_chunk_stays_partial_and_shows_in_progress(client, services, media):
    alice = await register(client, "alice")
    content = (media / PHOTO).read_bytes()
    chunks = cut(content, 4)
    for index in (0, 1, 3):
        assert_result(await send_chunk(alice, "gap", index, 4, chunks[index]), "partial")
    assert await asset_ids(alice) == []
    state = await progress(alice)
    [session] = state["sessions"]
    assert session["session_id"] == "gap" and session["status"] == "uploading"
    assert (session["received_chunks"], session["total_chunks"]) == (3, 4)
    done = len(chunks[0]) + len(chunks[1]) + len(chunks[3])
    assert session["bytes_done"] == done
    assert session["bytes_total"] == len(content)  # equal chunks and the last one in: exact
    assert session["progress"] == pytest.approx(done / len(content), abs=1e-3)
    assert state["summary"]["active_sessions"] == 1 and state["summary"]["completed_files"] == 0
    assert 0 < state["summary"]["overall_progress"] < 1
    # Without the last chunk the total is an estimate from the chunk sizes.
    await send_chunk(alice, "early", 0, 4, chunks[0])
    early = (await progress(alice, "early"))["sessions"][0]
    assert early["bytes_total"] == 4 * len(chunks[0]) and early["progress"] == 0.25
    # Filtering: only the named sessions, unknown ids are simply absent; a bad id is 400.
    assert [s["session_id"] for s in (await progress(alice, "gap,nope"))["sessions"]] == ["gap"]
    assert (await progress(alice, "bad_id", expect=400))["_status"] == 400
    # The session's files are on disk: a part per chunk and the manifest.
    assert sorted(p.name for p in session_dir(services, alice, "gap").glob("*.part")) == \
        ["0.part", "1.part", "3.part"]


async def test_wrong_hash_fails_the_session_and_creates_nothing(client, services, media):
    alice = await register(client, "alice")
    content = (media / PHOTO).read_bytes()
    chunks = cut(content, 3)
    await send_chunk(alice, "h", 0, 3, chunks[0], extra=[("hash_h", b3(b"something else"), None)])
    await send_chunk(alice, "h", 2, 3, chunks[2])
    result = await send_chunk(alice, "h", 1, 3, chunks[1])
    assert_result(result, "failed")
    assert "hash_h" in result["error"] and "does not match" in result["error"]
    assert result["content_hash"] == b3(content)
    assert await asset_ids(alice) == []
    assert leftovers(services) == {"staging": [], "stored": []}
    session = (await progress(alice, "h"))["sessions"][0]
    assert session["status"] == "failed" and session["error"]
    assert (await progress(alice))["summary"]["failed_sessions"] == 1
    # A failed session is finished: more chunks are a conflict.
    await send_chunk(alice, "h", 1, 3, chunks[1], expect=409)
    # A malformed hash field is a 400 for the request.
    await send_chunk(alice, "h2", 0, 3, chunks[0], extra=[("hash_h2", "not-hex", None)], expect=400)
    # A hash for a session that does not exist is a 400.
    await batch(alice, [("hash_ghost", b3(content), None)], expect=400)


async def test_oversize_is_413_for_singles_and_sessions(client, services, media):
    alice = await register(client, "alice")
    content = (media / PHOTO).read_bytes()
    services.settings.max_upload_bytes = 100_000
    before = leftovers(services)
    body = await batch(alice, [("single_ok", (media / VIDEO).read_bytes(), "v.3gp"),
                               ("single_big", content, "big.jpg")], expect=413)
    assert "100000" in body["message"]
    # A session whose chunks add up past the limit: the chunk that crosses it is refused.
    assert_result(await send_chunk(alice, "s", 0, 3, content[:60_000]), "partial")
    await send_chunk(alice, "s", 1, 3, content[60_000:120_000], expect=413)
    # ... also within one request.
    await batch(alice, [("chunk_t_0_2", content[:60_000], "t.jpg"), ("chunk_t_1_2", content[60_000:120_000], "t.jpg")],
                expect=413)
    assert await asset_ids(alice) == []
    assert leftovers(services) == before
    [session] = (await progress(alice))["sessions"]
    assert (session["session_id"], session["received_chunks"], session["bytes_done"]) == ("s", 1, 60_000)


@pytest.mark.parametrize("name", ["chunk_x", "chunk_s_a_b", "single_", "chunk_s_3_2", "chunk_s_0_0",
                                  "chunk_s_0_100001", "chunk__0_1", "single_a_b", "single_a.b", "file", "hash_",
                                  "chunk_s_-1_2", "chunk_s_0_2_3x"])
async def test_bad_field_names_are_400(client, services, media, name):
    alice = await register(client, "alice")
    photo = (media / SMALL_PHOTO).read_bytes()
    before = leftovers(services)
    body = await batch(alice, [("single_fine", photo, "fine.jpg"), (name, photo, "x.jpg")], expect=400)
    assert body["error"], body
    assert await asset_ids(alice) == []
    assert leftovers(services) == before
    assert (await progress(alice))["sessions"] == []


async def test_other_request_level_400s(client, media):
    alice = await register(client, "alice")
    photo = (media / PHOTO).read_bytes()
    await batch(alice, [], expect=400)
    await batch(alice, [("single_a", photo, "a.jpg"), ("single_a", photo, "a.jpg")], expect=400)
    await batch(alice, [("chunk_a_0_2", photo[:10], "a.jpg"), ("chunk_a_0_2", photo[:10], "a.jpg")], expect=400)
    await batch(alice, [("chunk_a_0_2", photo[:10], "a.jpg"), ("chunk_a_1_3", photo[10:20], "a.jpg")], expect=400)
    await batch(alice, [("single_a", photo, "a.jpg"), ("chunk_a_0_2", photo[:10], "a.jpg")], expect=400)
    # A later chunk that disagrees with the session's total.
    await send_chunk(alice, "t", 0, 2, photo[:10])
    await send_chunk(alice, "t", 1, 3, photo[10:20], expect=400)
    # A single_ cannot reuse the id of a chunked session.
    await batch(alice, [("single_t", photo, "t.jpg")], expect=409)
    resp = await alice.client.post(f"{API}/assets/batch", json={"x": 1}, headers=alice.headers)
    assert resp.status == 400
    assert await asset_ids(alice) == []


async def test_chunk_after_completion_is_409(client, media):
    alice = await register(client, "alice")
    content = (media / PHOTO).read_bytes()
    chunks = cut(content, 2)
    await send_chunk(alice, "done", 0, 2, chunks[0])
    assert_result(await send_chunk(alice, "done", 1, 2, chunks[1]), "queued", content)
    body = await send_chunk(alice, "done", 1, 2, chunks[1], expect=409)
    assert "completed" in body["message"]
    await send_chunk(alice, "done", 0, 2, chunks[0], expect=409)
    await batch(alice, [("hash_done", b3(content), None)], expect=409)
    assert len(await asset_ids(alice)) == 1


async def test_repeated_chunk_with_other_bytes_is_409(client, media):
    alice = await register(client, "alice")
    content = (media / PHOTO).read_bytes()
    chunks = cut(content, 3)
    await send_chunk(alice, "r", 1, 3, chunks[1])
    body = await send_chunk(alice, "r", 1, 3, chunks[0][: len(chunks[1])], expect=409)
    assert "different content" in body["message"]
    await send_chunk(alice, "r", 1, 3, chunks[1][:-1], expect=409)
    # The chunk kept is the first one: the file still comes out right.
    await send_chunk(alice, "r", 0, 3, chunks[0])
    result = await send_chunk(alice, "r", 2, 3, chunks[2])
    assert_result(result, "queued", content)
    assert await original(alice, result["asset_id"]) == content


async def test_sessions_are_private_to_their_owner(client, services, media):
    alice = await register(client, "alice")
    bob = await register(client, "bobby")
    content = (media / PHOTO).read_bytes()
    chunks = cut(content, 3)
    await send_chunk(alice, "shared-id", 0, 3, chunks[0])
    await send_chunk(alice, "shared-id", 1, 3, chunks[1])
    assert (await progress(bob))["sessions"] == []
    assert (await progress(bob, "shared-id"))["sessions"] == []
    assert (await progress(bob))["summary"]["total_sessions"] == 0
    # Bob's chunk under the same id starts his own session; it does not complete Alice's file.
    mine = await send_chunk(bob, "shared-id", 2, 3, chunks[2])
    assert_result(mine, "partial")
    assert mine["message"] == "received 1 of 3 chunks"
    # A different total is fine for him: it is not Alice's session.
    assert_result(await send_chunk(bob, "other", 0, 7, chunks[0]), "partial")
    assert await asset_ids(alice) == [] and await asset_ids(bob) == []
    [hers] = (await progress(alice))["sessions"]
    assert hers["received_chunks"] == 2
    assert {s["session_id"]: s["received_chunks"] for s in (await progress(bob))["sessions"]} == \
        {"shared-id": 1, "other": 1}
    # Alice completes her own file.
    result = await send_chunk(alice, "shared-id", 2, 3, chunks[2])
    assert_result(result, "queued", content)
    assert await asset_ids(bob) == []
    await bob.call("GET", f"/assets/{result['asset_id']}/original", expect=404)


async def test_expiry_removes_idle_sessions(client, services, media):
    alice = await register(client, "alice")
    content = (media / PHOTO).read_bytes()
    chunks = cut(content, 3)
    await send_chunk(alice, "idle", 0, 3, chunks[0])
    await send_chunk(alice, "done", 0, 1, (media / SMALL_PHOTO).read_bytes())
    sessions = upload_sessions(services)
    ttl = services.settings.upload_session_ttl_seconds
    assert ttl == 24 * 3600
    assert sessions.expire(time.time()) == 0  # nothing idle yet
    # The batch handler expires opportunistically, at most once a minute: it just did.
    assert sessions.maybe_expire(time.time() + ttl + 60) == 0
    assert len((await progress(alice))["sessions"]) == 2
    assert sessions.expire(time.time() + ttl + 60) == 2  # finished ones expire too
    assert (await progress(alice))["sessions"] == []
    assert not session_dir(services, alice, "idle").exists()
    # The id is free again: a chunk starts a new session.
    assert_result(await send_chunk(alice, "idle", 1, 3, chunks[1]), "partial")
    assert (await progress(alice, "idle"))["sessions"][0]["received_chunks"] == 1
    # The TTL is a setting.
    services.settings.upload_session_ttl_seconds = 5
    assert sessions.expire(time.time() + 6) == 1


async def test_config_numbers_are_positive_and_consistent(client):
    alice = await register(client, "alice")
    config = (await alice.call("GET", "/assets/batch/config"))["data"]
    assert set(config) == {"chunk_size", "max_concurrent", "max_in_flight_requests", "memory_buffer",
                           "merge_concurrency"}
    assert all(isinstance(v, int) and v > 0 for v in config.values()), config
    assert config["chunk_size"] in (2 * MIB, 4 * MIB, 8 * MIB)
    assert config["max_in_flight_requests"] * config["chunk_size"] <= config["memory_buffer"]
    assert config["merge_concurrency"] <= config["max_concurrent"]
    assert config["max_in_flight_requests"] <= 2 * config["max_concurrent"]
    resp = await client.get(f"{API}/assets/batch/config")
    assert resp.status == 401


def test_config_formula_by_machine_size():
    big = batch_config(64 * GIB, 32 * GIB, 32)
    assert big == {"chunk_size": 8 * MIB, "max_concurrent": 8, "max_in_flight_requests": 16,
                   "memory_buffer": 512 * MIB, "merge_concurrency": 4}
    mid = batch_config(4 * GIB, 1 * GIB, 2)
    assert mid["chunk_size"] == 4 * MIB and mid["max_concurrent"] == 2 and mid["merge_concurrency"] == 1
    assert mid["memory_buffer"] == 64 * MIB and mid["max_in_flight_requests"] == 4
    small = batch_config(1 * GIB, 100 * MIB, 1)
    assert small["chunk_size"] == 2 * MIB
    assert small["memory_buffer"] == 8 * MIB and small["max_in_flight_requests"] == 4


async def test_parallel_chunks_make_exactly_one_asset(client, services, media):
    alice = await register(client, "alice")
    content = (media / PHOTO).read_bytes()
    chunks = cut(content, 8)
    results = await asyncio.gather(*(send_chunk(alice, "par", i, 8, c) for i, c in enumerate(chunks)))
    statuses = sorted(r["status"] for r in results)
    assert statuses == ["partial"] * 7 + ["queued"], results
    [done] = [r for r in results if r["status"] == "queued"]
    assert_result(done, "queued", content)
    assert await asset_ids(alice) == [done["asset_id"]]
    assert await original(alice, done["asset_id"]) == content
    session = (await progress(alice, "par"))["sessions"][0]
    assert session["status"] == "completed" and session["received_chunks"] == 8
    # Twice in parallel again (a new session) with every chunk sent twice: still one (duplicate) file.
    again = await asyncio.gather(*(post_batch(alice, [(f"chunk_par2_{i % 8}_8", c, "p.jpg")])
                                   for i, c in enumerate(chunks + chunks)))
    outcomes = sorted(r[1]["data"]["results"][0]["status"] if r[0] == 200 else str(r[0]) for r in again)
    assert outcomes.count("duplicate") == 1, outcomes
    assert set(outcomes) <= {"duplicate", "partial", "409"}, outcomes
    assert await asset_ids(alice) == [done["asset_id"]]


# -- memory ------------------------------------------------------------------------------------


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def _wav_chunk(index: int, size: int, total_size: int) -> bytes:
    """Chunk `index` of a generated WAV file: a RIFF header, then pseudo-random sound bytes."""
    data = blake3(b"darkroom batch memory test").digest(length=size, seek=index * size)
    if index == 0:
        header = (b"RIFF" + (total_size - 8).to_bytes(4, "little") + b"WAVEfmt "
                  + (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (2).to_bytes(2, "little")
                  + (44100).to_bytes(4, "little") + (176400).to_bytes(4, "little")
                  + (4).to_bytes(2, "little") + (16).to_bytes(2, "little")
                  + b"data" + (total_size - 44).to_bytes(4, "little"))
        data = header + data[len(header):]
    return data


async def test_large_chunked_upload_keeps_memory_flat(client, services):
    """64 MiB in 8 MiB chunks: the server (in this process) streams parts to disk and assembles
    in 1 MiB pieces, so the peak RSS grows by far less than the file (the test's own 8 MiB
    chunk and the client's send buffer included)."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc (Linux)")
    alice = await register(client, "alice")
    chunk_size, n = 8 * MIB, 8
    total_size = chunk_size * n
    hasher = blake3()
    await send_chunk(alice, "warm-up", 0, 2, b"x" * 1024, filename="w.wav")  # warm the code paths
    reset = _reset_peak_rss()
    before = _peak_rss_kib()
    result: dict[str, Any] = {}
    for index in [1, 3, 5, 7, 0, 2, 4, 6]:
        chunk = _wav_chunk(index, chunk_size, total_size)
        result = await send_chunk(alice, "big", index, n, chunk, filename="big.wav")
        del chunk
    growth_mib = (_peak_rss_kib() - before) / 1024
    assert result["status"] == "queued", result
    assert result["size"] == total_size
    for index in range(n):
        hasher.update(_wav_chunk(index, chunk_size, total_size))
    assert result["content_hash"] == hasher.hexdigest()
    assert growth_mib < 48, f"peak RSS grew by {growth_mib:.1f} MiB (VmHWM reset: {reset})"
    # The stored original is byte-identical (streamed back and hashed).
    resp = await client.get(f"{API}/assets/{result['asset_id']}/original", headers=alice.headers)
    assert resp.status == 200
    check = blake3()
    async for piece in resp.content.iter_chunked(MIB):
        check.update(piece)
    assert check.hexdigest() == result["content_hash"]
    asset = (await alice.call("GET", f"/assets/{result['asset_id']}"))["data"]
    assert (asset["type"], asset["file_size"]) == ("AUDIO", total_size)


# -- the one-file form (what a generated client sends) ------------------------------------------


def form(sid: str, data: bytes, filename: str = "file.jpg", index: int | None = None, total: int | None = None,
         file_first: bool = False, **text: str) -> list[Part]:
    """A BatchUploadForm request; generated clients put required fields first, so `file` may lead."""
    fields: list[Part] = [("session_id", sid, None)]
    if index is not None:
        fields.append(("chunk_index", str(index), None))
    if total is not None:
        fields.append(("chunk_total", str(total), None))
    fields += [(name, value, None) for name, value in text.items()]
    file_part: Part = ("file", data, filename)
    return [file_part, *fields] if file_first else [*fields, file_part]


async def test_the_form_stores_a_whole_file_and_chunks_in_any_field_order(client, media):
    alice = await register(client, "alice")
    small = (media / SMALL_PHOTO).read_bytes()
    whole = (await batch(alice, form("whole-1", small, "small.jpg", file_first=True,
                                     content_hash=b3(small))))["results"]
    assert [(r["session_id"], r["status"], r["content_hash"]) for r in whole] == [("whole-1", "queued", b3(small))]
    assert await original(alice, whole[0]["asset_id"]) == small

    content = (media / PHOTO).read_bytes()
    chunks = cut(content, 3)
    first = (await batch(alice, form("big-1", chunks[2], "big.jpg", index=2, total=3, file_first=True)))["results"]
    assert first[0]["status"] == "partial"
    await batch(alice, form("big-1", chunks[0], "big.jpg", index=0, total=3, content_hash=b3(content)))
    last = (await batch(alice, form("big-1", chunks[1], "big.jpg", index=1, total=3)))["results"][0]
    assert last["status"] == "queued" and last["content_hash"] == b3(content)
    assert await original(alice, last["asset_id"]) == content


@pytest.mark.parametrize("parts, field", [
    ([("file", b"x" * 10, "a.jpg")], "session_id"),
    ([("session_id", "s-1", None)], "file"),
    ([("session_id", "s_1", None), ("file", b"x", "a.jpg")], "session_id"),
    ([("session_id", "s-1", None), ("chunk_index", "0", None), ("file", b"x", "a.jpg")], "chunk_index"),
    ([("session_id", "s-1", None), ("chunk_index", "3", None), ("chunk_total", "3", None),
      ("file", b"x", "a.jpg")], None),
    ([("session_id", "s-1", None), ("chunk_index", "x", None), ("chunk_total", "3", None),
      ("file", b"x", "a.jpg")], "chunk_index"),
    ([("session_id", "s-1", None), ("content_hash", "abc", None), ("file", b"x", "a.jpg")], "content_hash"),
    ([("session_id", "s-1", None), ("session_id", "s-2", None), ("file", b"x", "a.jpg")], "session_id"),
    ([("session_id", "s-1", None), ("file", b"x", "a.jpg"), ("file", b"y", "b.jpg")], "file"),
    ([("session_id", "s-1", None), ("file", b"x", "a.jpg"), ("single_s-2", b"y", "b.jpg")], "session_id"),
], ids=["no-session", "no-file", "bad-session-id", "index-without-total", "index-past-total", "index-not-a-number",
        "bad-hash", "session-twice", "file-twice", "mixed-with-named-fields"])
async def test_a_malformed_form_is_400_and_stores_nothing(client, services, media, parts, field):
    alice = await register(client, "alice")
    body = await batch(alice, parts, expect=400)
    if field is not None:
        assert field in body["error"], body
    assert await asset_ids(alice) == []
    assert (await alice.call("GET", "/assets/batch/progress"))["data"]["sessions"] == []
    assert list(services.storage.staging.glob("*")) == []
