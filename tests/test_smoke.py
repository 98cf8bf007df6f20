"""A first scenario through the whole stack, on both backends."""

from tests.helpers import register


async def test_register_upload_rate_album(client, media):
    alice = await register(client, "alice")
    up = await alice.upload(media / "photo" / "apple_iphone_4_gps.jpg")
    asset_id = up["data"]["asset_id"]
    rated = await alice.call("PUT", f"/assets/{asset_id}/rating", {"rating": 4})
    assert rated["data"]["rating"] == 4
    album = await alice.call("POST", "/albums", {"album_name": "Rome"}, expect=201)
    album_id = album["data"]["album_id"]
    await alice.call("POST", f"/albums/{album_id}/assets/{asset_id}")
    listed = await alice.call("GET", f"/albums/{album_id}/assets")
    assert [a["asset_id"] for a in listed["data"]["assets"]] == [asset_id]
