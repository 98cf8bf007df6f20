"""Small scenario helpers for HTTP tests."""

from __future__ import annotations

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
