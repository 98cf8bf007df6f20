"""Small scenario helpers for HTTP tests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

API = "/api/v1"


class User:
    """A registered user and their tokens, for driving the API."""

    def __init__(self, client: Any, data: dict[str, Any]) -> None:
        self.client = client
        self.token = data["token"]
        self.refresh_token = data["refreshToken"]
        self.user_id = data["user"]["user_id"]
        self.username = data["user"]["username"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, json: Any = None, expect: int | None = 200,
                   **kwargs: Any) -> dict[str, Any]:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        resp = await self.client.request(method, API + path, json=json, headers=headers, **kwargs)
        body = await resp.json()
        if expect is not None:
            assert resp.status == expect, (resp.status, body)
        body["_status"] = resp.status
        return body

    async def upload(self, path: Path, expect: int | None = 201, filename: str | None = None,
                     headers: dict[str, str] | None = None) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("file", path.read_bytes(), filename=filename or path.name,
                       content_type="application/octet-stream")
        return await self.call("POST", "/assets", data=form, expect=expect, headers=headers or {})

    async def upload_bytes(self, content: bytes, filename: str, expect: int | None = 201) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("file", content, filename=filename, content_type="application/octet-stream")
        return await self.call("POST", "/assets", data=form, expect=expect)


async def register(client: Any, username: str, password: str = "correct horse battery") -> User:
    resp = await client.post(f"{API}/auth/register", json={
        "username": username, "email": f"{username}@example.org", "password": password,
    })
    body = await resp.json()
    assert resp.status == 201, body
    return User(client, body["data"])


def jpeg(media: Path, tag: str) -> bytes:
    """A small valid JPEG whose trailing bytes (and so its BLAKE3 hash) differ per tag."""
    return (media / "photo" / "apple_iphone_xr_1x1px_gps.jpg").read_bytes() + tag.encode()


async def photos(user: User, media: Path, n: int) -> list[str]:
    """Upload n distinct photos for `user`; their asset ids in upload order."""
    ids = []
    for i in range(n):
        up = await user.upload_bytes(jpeg(media, f"{user.username}-{i}"), f"p{i}.jpg")
        assert up["data"]["status"] != "duplicate", up
        ids.append(up["data"]["asset_id"])
    assert len(set(ids)) == n
    return ids


async def processed(user: User, asset_ids: list[str], timeout: float = 60) -> None:
    """Wait until none of the assets is still `processing` (their tasks ran)."""
    deadline = time.monotonic() + timeout
    pending = list(asset_ids)
    while pending and time.monotonic() < deadline:
        states = [(await user.call("GET", f"/assets/{a}"))["data"]["status"]["state"] for a in pending]
        pending = [a for a, s in zip(pending, states) if s == "processing"]
        await asyncio.sleep(0.2)
    assert not pending, f"still processing: {pending}"
