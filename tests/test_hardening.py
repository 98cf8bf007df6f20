"""Inputs that once reached the read models or headers and broke them for everybody."""

from __future__ import annotations

import pytest

from infra.bus import InProcessBus
from processors.relay import JobRelay
from tests.helpers import API, register
from tests.scenario import fake_upload


async def test_metadata_values_must_be_flat_text_numbers_or_booleans(client, media):
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    asset = (await alice.upload(media / "photo" / "nikon_d5000.jpg"))["data"]["asset_id"]
    deep: object = "x"
    for _ in range(700):
        deep = [deep]
    for bad in ({"description": ["x"]}, {"description": {"a": 1}}, {"camera_make": deep},
                {"camera_make": {"nested": True}}, {"title": "a\x00b"}, {"description": "x" * 10001}):
        body = await alice.call("PUT", f"/assets/{asset}", {"specific_metadata": bad}, expect=400)
        assert body["error"].startswith("field 'specific_metadata.")
    ok = await alice.call("PUT", f"/assets/{asset}", {"specific_metadata": {"camera_make": "Nikon", "iso_speed": 200}})
    assert ok["data"]["specific_metadata"]["iso_speed"] == 200
    # The read models still follow for everybody.
    up = await bob.upload(media / "photo" / "kodak_dx4330.jpg")
    listed = await bob.call("GET", "/assets?type=PHOTO")
    assert [a["asset_id"] for a in listed["data"]["assets"]] == [up["data"]["asset_id"]]


async def test_control_characters_are_refused_in_text_and_stripped_from_file_names(client, media):
    alice = await register(client, "alice")
    asset = (await alice.upload(media / "photo" / "nikon_d5000.jpg"))["data"]["asset_id"]
    await alice.call("PUT", f"/assets/{asset}/description", {"description": "nul\x00here"}, expect=400)
    await alice.call("PUT", f"/assets/{asset}/description", {"description": "two\nlines\tfine"})
    await alice.call("POST", "/albums", {"album_name": "bad\x00name"}, expect=400)
    await alice.call("POST", "/albums", {"album_name": "bad\nname"}, expect=400)
    await alice.call("POST", "/albums", {"album_name": "ok", "description": "nul\x00"}, expect=400)

    # A raw multipart body: the RFC 5987 form lets a client smuggle CR, LF and NUL into a name.
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename*=UTF-8''evil%0D%0AX-Injected%3A%201%00.jpg\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    body += (media / "photo" / "kodak_dx4330.jpg").read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    up = await alice.call("POST", "/assets", data=body, expect=201,
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert up["data"]["file_name"] == "evilX-Injected: 1.jpg"
    resp = await client.get(f"{API}/assets/{up['data']['asset_id']}/original", headers=alice.headers)
    assert resp.status == 200 and "X-Injected" not in resp.headers
    assert "filename*=UTF-8''evilX-Injected%3A%201.jpg" in resp.headers["Content-Disposition"]


async def test_numbers_past_bigint_are_400_not_500(client, services):
    alice = await register(client, "alice")
    huge = str(2**63)
    for path in (f"/assets?type=PHOTO&offset={huge}", f"/albums?offset={huge}",
                 f"/assets/rating/5?offset={huge}", f"/admin/events?after={huge}"):
        body = await alice.call("GET", path, expect=400)
        assert "too large" in body["error"]
    from projections.jobs import encode_cursor
    await alice.call("GET", f"/admin/river/jobs?cursor={encode_cursor(2**63)}", expect=400)


def test_relay_recovery_republishes_every_waiting_job(services):
    owner = services.app.register("many", "many@example.org", "x").user.user_id
    for n in range(560):  # two jobs each: more than one page of recovery
        services.app.upload(fake_upload(owner, n))
    services.wait_for(services.app.recorder.max_notification_id())
    bus = InProcessBus()
    assert JobRelay(services.app, services.jobs, bus).recover() == 1120
    assert bus.pending() == 1120


@pytest.mark.parametrize("path", ["/assets", "/assets/batch"])
@pytest.mark.parametrize("body", [
    b"--B\r\n37978--B--\r\n",  # a part with no headers at all (schemathesis found a 500 here)
    b'--B\r\nContent-Disposition: form-data; name="x\x13\x0f"\r\n\r\nvalue\r\n--B--\r\n',  # control bytes
    b"--B\r\nContent-Disposition: form-data; name=\"file\"\r\nBroken header line\r\n\r\nx\r\n--B--\r\n",
], ids=["no-headers", "control-bytes-in-name", "header-without-colon"])
async def test_a_malformed_multipart_body_is_400_not_500(client, path, body):
    alice = await register(client, "alice")
    resp = await alice.call("POST", path, data=body, expect=400,
                            headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert resp["code"] == 400 and resp["error"]
    assert (await alice.call("GET", f"/assets?owner_id={alice.user_id}"))["data"]["assets"] == []
