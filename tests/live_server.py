"""A real `darkroom serve` process for end-to-end tests, and a small synchronous HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from multidict import CIMultiDict

API = "/api/v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, data_dir: Path, database_url: str = "", schema: str = "", **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("DARKROOM_")}
        environ.update({
            "DARKROOM_DATA_DIR": str(data_dir), "DARKROOM_PORT": str(self.port),
            "DARKROOM_DATABASE_URL": database_url, "DARKROOM_DATABASE_SCHEMA": schema,
            "DARKROOM_PASSWORD_MEMORY_KIB": "1024", "DARKROOM_PASSWORD_TIME_COST": "1",
            # Built-in OCR and faces off unless a test asks for them (they are not what most test).
            "DARKROOM_MODEL_OCR": "", "DARKROOM_MODEL_FACE": "", "DARKROOM_MODEL_LABELS": "", "DARKROOM_MODEL_SPECIES": "",
            **env,
        })
        self.log = open(data_dir.parent / f"server-{self.port}.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "infra.cli", "serve"], env=environ,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {Path(self.log.name).read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def request(self, method: str, path: str, token: str | None = None, json_body: Any = None,
                files: dict[str, Path] | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        async def go() -> tuple[int, dict[str, str], bytes]:
            h = dict(headers or {})
            if token:
                h["Authorization"] = f"Bearer {token}"
            data = None
            if files:
                data = aiohttp.FormData()
                for field, file_path in files.items():
                    data.add_field(field, file_path.read_bytes(), filename=file_path.name,
                                   content_type="application/octet-stream")
            async with aiohttp.ClientSession() as session:
                async with session.request(method, self.base + API + path, json=json_body, data=data,
                                           headers=h, timeout=aiohttp.ClientTimeout(total=120)) as resp:
                    return resp.status, CIMultiDict(resp.headers), await resp.read()
        return asyncio.run(go())

    def json(self, method: str, path: str, token: str | None = None, expect: int | None = 200, **kw: Any) -> dict[str, Any]:
        status, _, body = self.request(method, path, token, **kw)
        data = json.loads(body)
        if expect is not None:
            assert status == expect, (status, data)
        return data


@contextlib.contextmanager
def live_on_backend(backend: str, data_dir: Path, prefix: str, **env: str) -> Iterator[LiveServer]:
    """A `darkroom serve` on SQLite (backend "sqlite") or on a fresh PostgreSQL schema of
    DARKROOM_TEST_DATABASE_URL, dropped afterwards. Without that URL the PostgreSQL variant skips,
    and fails under CI (where `make test` always sets it)."""
    import psycopg
    import pytest
    from psycopg import sql

    pg_url = os.environ.get("DARKROOM_TEST_DATABASE_URL", "")
    schema = ""
    if backend == "postgres":
        if not pg_url:
            if os.environ.get("CI"):
                pytest.fail("DARKROOM_TEST_DATABASE_URL is not set; run the suite with `make test`")
            pytest.skip("DARKROOM_TEST_DATABASE_URL not set (make test sets it)")
        schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    server = LiveServer(data_dir, pg_url if schema else "", schema, **env)
    try:
        yield server
    finally:
        server.stop()
        if schema:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
