"""Stacks over HTTP on both backends: a RAW file and the JPEG of the same shot (made from the
corpus at test time) stack by themselves with the JPEG in front; manual stacks; the primary;
`collapse_stacks`; `stack` in the asset detail; bad input; rebuild equals live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from projections.registry import PROJECTIONS
from projections.runner import rebuild
from tests.helpers import jpeg, photos, register
from tests.media_edit import with_taken_time
from tests.scenario import settle_jobs

RAW = "raw/nikon_d70_stripped.nef"  # DateTimeOriginal 2004:06:09 16:02:35
JPEG = "photo/nikon_d5000.jpg"
GONE = "0b9a3c4e-1111-4222-8333-944455556666"


async def _visible(user: Any, collapse: bool) -> set[str]:
    data = (await user.call("POST", "/assets/filter", {"filter": {"collapse_stacks": collapse}, "limit": 100}))["data"]
    assert data["total"] == len(data["assets"])
    return {a["asset_id"] for a in data["assets"]}


async def _stack_of(user: Any, asset_id: str) -> Any:
    return (await user.call("GET", f"/assets/{asset_id}"))["data"]["stack"]


async def test_raw_and_jpeg_of_one_shot_stack_by_themselves(client: Any, services: Any, media: Path,
                                                            tmp_path: Path) -> None:
    """Same owner, same base name, taken within a second, one RAW and one not: one stack, the
    JPEG primary. Another base name, a JPEG five seconds later, or another owner's RAW: not."""
    services.start_processing()
    alice, bob = await register(client, "alice"), await register(client, "bob")
    jpg = with_taken_time(media / JPEG, tmp_path / "a" / "DSC_0001.JPG", "2004:06:09 16:02:36")
    later = with_taken_time(media / JPEG, tmp_path / "b" / "dsc_0001.jpeg", "2004:06:09 16:02:41")
    other_name = with_taken_time(media / JPEG, tmp_path / "c" / "DSC_0002.JPG", "2004:06:09 16:02:35")
    raw_id = (await alice.upload(media / RAW, filename="DSC_0001.NEF"))["data"]["asset_id"]
    jpg_id = (await alice.upload(jpg))["data"]["asset_id"]
    later_id = (await alice.upload(later))["data"]["asset_id"]
    other_id = (await alice.upload(other_name))["data"]["asset_id"]
    bobs_raw = (await bob.upload(media / RAW, filename="DSC_0001.NEF"))["data"]["asset_id"]
    settle_jobs(services)

    stack = await _stack_of(alice, raw_id)
    assert stack is not None and stack["automatic"] is True
    assert sorted(stack["asset_ids"]) == sorted([raw_id, jpg_id]) and stack["primary_asset_id"] == jpg_id
    assert await _stack_of(alice, jpg_id) == stack
    for unstacked in (later_id, other_id):
        assert await _stack_of(alice, unstacked) is None
    assert await _stack_of(bob, bobs_raw) is None

    everything = {raw_id, jpg_id, later_id, other_id}
    assert await _visible(alice, False) == everything
    assert await _visible(alice, True) == everything - {raw_id}
    stack_id = stack["stack_id"]
    changed = (await alice.call("PUT", f"/stacks/{stack_id}", {"primary_asset_id": raw_id}))["data"]
    assert changed["primary_asset_id"] == raw_id
    assert await _visible(alice, True) == everything - {jpg_id}

    # Taken apart by hand, an automatic stack is not made again, even when reprocessed.
    await alice.call("DELETE", f"/stacks/{stack_id}")
    assert await _stack_of(alice, raw_id) is None and await _visible(alice, True) == everything
    await alice.call("POST", f"/assets/{jpg_id}/reprocess", {"tasks": ["metadata_asset"]})
    settle_jobs(services)
    assert await _stack_of(alice, raw_id) is None
    await alice.call("PUT", f"/stacks/{stack_id}", {"primary_asset_id": raw_id}, expect=404)


async def test_manual_stacks_and_bad_input(client: Any, services: Any, media: Path) -> None:
    """Stack by hand (201), one stack per asset (409), trashed assets refused (409), unknown or
    another user's assets and stacks 404, malformed bodies 400; rebuilds give the same rows."""
    alice, bob = await register(client, "alice"), await register(client, "bob")
    a, b, c, d = await photos(alice, media, 4)
    (bobs,) = await photos(bob, media, 1)
    made = (await alice.call("POST", "/stacks", {"asset_ids": [a, b, c]}, expect=201))["data"]
    assert made["primary_asset_id"] == a and made["asset_ids"] == [a, b, c] and made["automatic"] is False
    assert (await _stack_of(alice, c))["stack_id"] == made["stack_id"]
    await alice.call("POST", "/stacks", {"asset_ids": [c, d]}, expect=409)
    await alice.call("POST", "/stacks", {"asset_ids": [d, bobs]}, expect=404)
    await alice.call("POST", "/stacks", {"asset_ids": [d, GONE]}, expect=404)
    for body in ({"asset_ids": [d]}, {"asset_ids": [d, d]}, {"asset_ids": [d, "nope"]},
                 {"asset_ids": [d, a], "primary_asset_id": b}, {"asset_ids": "d"}, {},
                 {"asset_ids": [d, a], "colour": "red"}):
        await alice.call("POST", "/stacks", body, expect=400)
    await alice.call("DELETE", f"/assets/{d}")
    await alice.call("POST", "/trash/restore", {"asset_ids": [d]})
    await alice.call("DELETE", f"/assets/{d}")
    e = (await alice.upload_bytes(jpeg(media, "e"), "e.jpg"))["data"]["asset_id"]
    await alice.call("POST", "/stacks", {"asset_ids": [e, d]}, expect=409)  # d is in the trash

    stack_id = made["stack_id"]
    await alice.call("PUT", f"/stacks/{stack_id}", {"primary_asset_id": e}, expect=400)
    await alice.call("PUT", f"/stacks/{stack_id}", {"primary_asset_id": "x"}, expect=400)
    await alice.call("PUT", f"/stacks/{stack_id}", {}, expect=400)
    for method, body in (("PUT", {"primary_asset_id": a}), ("DELETE", None)):
        await bob.call(method, f"/stacks/{stack_id}", body, expect=404)
        await alice.call(method, f"/stacks/{GONE}", body, expect=404)
        await alice.call(method, "/stacks/not-a-uuid", body, expect=404)
    assert (await alice.call("PUT", f"/stacks/{stack_id}", {"primary_asset_id": c}))["data"]["primary_asset_id"] == c
    assert await _visible(alice, True) == {c, e}

    live = {t: sorted(map(repr, services.db.query(f"SELECT * FROM {t}"))) for t in ("stacks", "stack_members")}
    for cls in PROJECTIONS.values():
        rebuild(services.app, services.db, cls)
    assert {t: sorted(map(repr, services.db.query(f"SELECT * FROM {t}"))) for t in live} == live

    # Purging a stacked asset takes its stack apart.
    await alice.call("DELETE", f"/assets/{b}")
    await alice.call("POST", "/trash/empty", {"asset_ids": [b]})
    assert await _stack_of(alice, a) is None and await _visible(alice, True) == {a, c, e}
