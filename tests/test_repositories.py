"""Storage repositories: the default one, a registered one, and an unknown id."""

from __future__ import annotations

import json

import aiohttp
import pytest

from api.app import create_app
from infra.bootstrap import bootstrap
from infra.settings import SettingsError, load_settings
from infra.storage import DEFAULT_REPOSITORY_ID
from tests.conftest import make_settings
from tests.helpers import API, register


async def test_upload_into_a_registered_repository(tmp_path, backend, pg_schema, aiohttp_client, media):
    nas = tmp_path / "nas"
    settings = make_settings(tmp_path, backend, pg_schema, repositories=json.dumps({"nas": str(nas)}))
    services = bootstrap(settings)
    try:
        client = await aiohttp_client(create_app(services))
        alice = await register(client, "alice")
        photo = media / "photo" / "nikon_d5000.jpg"
        form = aiohttp.FormData()
        form.add_field("repository_id", "nas")
        form.add_field("file", photo.read_bytes(), filename=photo.name)
        up = await alice.call("POST", "/assets", data=form, expect=201)
        asset = (await alice.call("GET", f"/assets/{up['data']['asset_id']}"))["data"]
        assert asset["repository_id"] == "nas"
        stored = nas / asset["storage_path"]
        assert stored.read_bytes() == photo.read_bytes()
        resp = await client.get(f"{API}/assets/{asset['asset_id']}/original", headers=alice.headers)
        assert resp.status == 200 and await resp.read() == photo.read_bytes()
        other = media / "photo" / "kodak_dx4330.jpg"
        default = await alice.upload(other)
        shown = (await alice.call("GET", f"/assets/{default['data']['asset_id']}"))["data"]
        assert shown["repository_id"] == DEFAULT_REPOSITORY_ID
    finally:
        services.close()


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"x": 3}', '{"": "/tmp"}'])
def test_a_bad_repositories_setting_is_a_clear_error(tmp_path, raw):
    from infra.storage import Storage

    with pytest.raises(SettingsError, match="DARKROOM_REPOSITORIES"):
        Storage(load_settings(environ={"DARKROOM_DATA_DIR": str(tmp_path), "DARKROOM_REPOSITORIES": raw}))
