"""Fixtures: every test that takes `services` or `client` runs on SQLite and on PostgreSQL.

PostgreSQL comes from `DARKROOM_TEST_DATABASE_URL` (set by `make test`, which starts the
server); each test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from api.app import create_app
from infra.bootstrap import Services, bootstrap
from infra.settings import Settings, load_settings

MEDIA = Path(__file__).resolve().parent / "media"
PG_URL = os.environ.get("DARKROOM_TEST_DATABASE_URL", "")


def make_settings(tmp_path: Path, backend: str, schema: str | None = None, **extra: Any) -> Settings:
    settings = load_settings(
        environ={},
        data_dir=str(tmp_path / "data"),
        # A cheap KDF keeps a suite of hundreds of registrations fast; production keeps the default.
        password_memory_kib=1024,
        password_time_cost=1,
        jwt_secret="test-secret-" + uuid.uuid4().hex,
        # The built-in OCR and face models are the product's default; tests that are not about
        # them keep uploads to the core tasks (ML tests turn them on with `model_ocr=...`).
        **({"run_workers": False, "model_ocr": "", "model_face": "", "model_labels": "", "model_species": ""} | extra),
    )
    if backend == "postgres":
        settings.database_url = PG_URL
        settings.database_schema = schema or ""
    return settings


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("DARKROOM_TEST_DATABASE_URL is not set; run the suite with `make test`")
        pytest.skip("DARKROOM_TEST_DATABASE_URL not set (make test sets it)")
    return str(request.param)


@pytest.fixture
def pg_schema(backend: str) -> Iterator[str | None]:
    if backend != "postgres":
        yield None
        return
    name = "t_" + uuid.uuid4().hex[:12]
    yield name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def settings(tmp_path: Path, backend: str, pg_schema: str | None) -> Settings:
    return make_settings(tmp_path, backend, pg_schema)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    s = bootstrap(settings)
    yield s
    s.close()


@pytest.fixture
async def client(services: Services, aiohttp_client: Any) -> AsyncIterator[Any]:
    yield await aiohttp_client(create_app(services))


@pytest.fixture
def media() -> Path:
    if not MEDIA.is_dir():
        pytest.fail(f"test media not found at {MEDIA}; the corpus lives in tests/media (see its README)")
    return MEDIA
