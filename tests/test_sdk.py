"""Clients generated from the live OpenAPI document work, in Python and in TypeScript.

What it proves, against a real `darkroom serve` (the embedded default, and PostgreSQL when
DARKROOM_TEST_DATABASE_URL is set):

- `openapi-python-client` turns `GET /api/v1/openapi.json` into an SDK without one warning (an
  operation, parameter, body or response it cannot express would be a warning and is missing from
  the SDK), with the committed settings in tests/sdk/openapi-python-client.yaml;
- that SDK, and nothing else, drives the main user journey with typed results: register, upload a
  photo, upload another one in chunks through the batch endpoint, rate, create an album, add the
  asset to it, list, download the original byte for byte, filter and search by file name;
- `openapi-typescript` (pinned in tests/sdk/package-lock.json) turns the same document into types
  that the committed tests/sdk/usage.ts uses, and `tsc --strict` accepts them.

The SDK is generated into a temporary directory and imported from there; it is never committed.
"""

from __future__ import annotations

import datetime
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
import typing
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import blake3
import httpx
import pytest

from tests.live_server import API, LiveServer, live_on_backend

HERE = Path(__file__).resolve().parent
SDK_DIR = HERE / "sdk"
MEDIA = HERE / "media"
PG_URL = os.environ.get("DARKROOM_TEST_DATABASE_URL", "")
PACKAGE = "darkroom_client"
PHOTO = MEDIA / "photo" / "canon_eos_5d_mark_iii_lens.jpg"
CHUNKED_PHOTO = MEDIA / "photo" / "nikon_d5000.jpg"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp(f"sdk-{request.param}") / "data"
    data_dir.mkdir()
    with live_on_backend(request.param, data_dir, "sdk") as server:
        yield server


def document_url(server: LiveServer) -> str:
    return server.base + API + "/openapi.json"


def api_base_url(server: LiveServer) -> str:
    """Where the document's paths are rooted: the server plus its (relative) `servers` URL."""
    with urllib.request.urlopen(document_url(server), timeout=30) as response:
        document = json.loads(response.read())
    servers = document.get("servers") or [{"url": "/"}]
    return server.base + servers[0]["url"].rstrip("/")


# --- Python ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The SDK generated from the live document, imported from a temporary directory."""
    generator = Path(sys.executable).parent / "openapi-python-client"
    if not generator.exists():
        pytest.fail("openapi-python-client is not installed: pip install -e '.[test]'")
    root = tmp_path_factory.mktemp("python-sdk")
    proc = subprocess.run(
        [str(generator), "generate", "--url", document_url(live), "--meta", "none",
         "--config", str(SDK_DIR / "openapi-python-client.yaml"), "--output-path", str(root / PACKAGE)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
    )
    output = proc.stdout
    assert proc.returncode == 0, output
    # The generator still exits 0 when it leaves an operation or a response out: it warns.
    assert "Warning(s) encountered" not in output and "WARNING" not in output, output
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def operation(sdk: ModuleType, tag_module: str, operation_id: str) -> ModuleType:
    """The generated module of one operation: api/<tag>/<snake_case operationId>.py."""
    snake = "".join("_" + c.lower() if c.isupper() else c for c in operation_id)
    return importlib.import_module(f"{sdk.__name__}.api.{tag_module}.{snake}")


def body_of(module: ModuleType) -> type:
    """The generated model class the operation takes as its `body`."""
    hint = typing.get_type_hints(module.sync_detailed)["body"]
    candidates = [hint, *typing.get_args(hint)]
    return next(c for c in candidates if isinstance(c, type) and hasattr(c, "from_dict"))


def call(sdk: ModuleType, client: Any, tag: str, operation_id: str, *path: Any, expect: int = 200,
         body: Any = None, **query: Any) -> Any:
    """Call one operation through the SDK; assert its status and return the envelope's `data`
    (None for the operations that answer only a message)."""
    module = operation(sdk, tag, operation_id)
    kwargs = dict(query)
    if body is not None:
        kwargs["body"] = body if not isinstance(body, dict) else body_of(module).from_dict(body)
    response = module.sync_detailed(*path, client=client, **kwargs)
    assert response.status_code == expect, (operation_id, response.status_code, response.content[:2000])
    parsed = response.parsed
    assert parsed is not None, (operation_id, "the SDK could not parse", response.content[:2000])
    assert parsed.code == 0 and isinstance(parsed.message, str), (operation_id, parsed)
    return getattr(parsed, "data", None)


def upload_part(sdk: ModuleType, module: ModuleType, file_name: str, payload: bytes, **fields: Any) -> Any:
    """A multipart body: the generated model with a generated `File`."""
    types = importlib.import_module(f"{sdk.__name__}.types")
    file = types.File(payload=io.BytesIO(payload), file_name=file_name, mime_type="image/jpeg")
    return body_of(module)(file=file, **fields)


def test_python_sdk_drives_the_library(live: LiveServer, sdk: ModuleType) -> None:
    base_url = api_base_url(live)
    anonymous = sdk.Client(base_url=base_url, raise_on_unexpected_status=True)

    # Register: 201, a token and the typed user.
    auth = call(sdk, anonymous, "auth", "register", expect=201,
                body={"username": "sdk-alice", "email": "sdk-alice@example.org", "password": "a long sdk password"})
    assert isinstance(auth.token, str) and auth.token.count(".") == 2  # a JWT
    assert isinstance(auth.expires_at, datetime.datetime)
    assert isinstance(auth.user.user_id, int) and auth.user.user_id >= 1
    assert auth.user.username == "sdk-alice" and auth.user.email == "sdk-alice@example.org"
    client = sdk.AuthenticatedClient(base_url=base_url, token=auth.token, raise_on_unexpected_status=True,
                                     timeout=httpx.Timeout(120))
    me = call(sdk, client, "auth", "getMe")
    assert me.user_id == auth.user.user_id

    # Upload one photo: 201, the asset id, the size and BLAKE3 of what was sent.
    photo = PHOTO.read_bytes()
    uploaded = call(sdk, client, "assets", "uploadAsset", expect=201,
                    body=upload_part(sdk, operation(sdk, "assets", "uploadAsset"), PHOTO.name, photo))
    assert isinstance(uploaded.asset_id, uuid.UUID)
    asset_id = str(uploaded.asset_id)
    assert uploaded.size == len(photo) and uploaded.file_name == PHOTO.name
    assert uploaded.content_hash == blake3.blake3(photo).hexdigest()

    # Upload another photo through the batch endpoint, in three chunks of one session: each
    # request answers 200 (the document declares no 201 here), the last one with the new asset.
    chunked = CHUNKED_PHOTO.read_bytes()
    batch = operation(sdk, "batch_upload", "uploadBatch")
    third = len(chunked) // 3 + 1
    pieces = [chunked[i:i + third] for i in range(0, len(chunked), third)]
    assert len(pieces) == 3
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        result = call(sdk, client, "batch_upload", "uploadBatch",
                      body=upload_part(sdk, batch, CHUNKED_PHOTO.name, piece, session_id="sdk-chunks-1",
                                       chunk_index=index, chunk_total=len(pieces)))
        assert len(result.results) == 1
        outcome = result.results[0]
        assert outcome.session_id == "sdk-chunks-1" and outcome.success is True
        if not last:
            assert outcome.status == "partial" and not outcome.asset_id
    assert outcome.status == "queued", outcome
    assert outcome.content_hash == blake3.blake3(chunked).hexdigest() and outcome.size == len(chunked)
    chunked_id = str(outcome.asset_id)
    progress = call(sdk, client, "batch_upload", "getBatchProgress", session_ids="sdk-chunks-1")
    assert [s.session_id for s in progress.sessions] == ["sdk-chunks-1"]

    # Rate it: the updated asset comes back typed.
    rated = call(sdk, client, "assets", "rateAsset", asset_id, body={"rating": 4})
    assert rated.asset_id == uploaded.asset_id and rated.rating == 4
    assert isinstance(rated.upload_time, datetime.datetime)

    # An album, with the photo in it.
    album = call(sdk, client, "albums", "createAlbum", expect=201,
                 body={"album_name": "SDK holidays", "description": "made by the generated client"})
    assert isinstance(album.album_id, int) and album.album_name == "SDK holidays" and album.asset_count == 0
    assert isinstance(album.created_at, datetime.datetime)
    call(sdk, client, "albums", "addAssetToAlbum", album.album_id, asset_id)
    in_album = call(sdk, client, "albums", "listAlbumAssets", album.album_id)
    assert [str(a.asset_id) for a in in_album.assets] == [asset_id]
    assert call(sdk, client, "albums", "getAlbum", album.album_id).asset_count == 1

    # Both photos are listed, each with its typed fields.
    listed = call(sdk, client, "assets", "listAssets", owner_id=auth.user.user_id, limit=50)
    by_id = {str(a.asset_id): a for a in listed.assets}
    assert set(by_id) == {asset_id, chunked_id}
    assert by_id[asset_id].original_filename == PHOTO.name and by_id[asset_id].file_size == len(photo)
    assert by_id[chunked_id].original_filename == CHUNKED_PHOTO.name

    # The original comes back byte for byte, as a JPEG.
    response = operation(sdk, "assets", "downloadOriginal").sync_detailed(asset_id, client=client)
    assert response.status_code == 200
    assert response.content == photo
    assert response.headers["content-type"].startswith("image/jpeg")

    # Filter on the rating: only the rated photo.
    filtered = call(sdk, client, "search", "filterAssets", body={"filter": {"rating": 4}, "limit": 10})
    assert filtered.total == 1 and [str(a.asset_id) for a in filtered.assets] == [asset_id]

    # Search by file name: the chunked photo, found by part of its name ("nikon_d5000.jpg").
    found = call(sdk, client, "search", "searchAssets",
                 body={"query": "D5000", "search_type": "filename", "limit": 10})
    assert found.total == 1 and [str(a.asset_id) for a in found.assets] == [chunked_id]


# --- TypeScript ----------------------------------------------------------------------------------


def _node_tools() -> tuple[Path, Path]:
    """openapi-typescript and tsc from tests/sdk/node_modules (`npm ci --prefix tests/sdk`)."""
    bin_dir = SDK_DIR / "node_modules" / ".bin"
    tools = bin_dir / "openapi-typescript", bin_dir / "tsc"
    if shutil.which("node") is None or shutil.which("npm") is None:
        reason = "node and npm are not installed: the TypeScript check needs them"
    elif not all(t.exists() for t in tools):
        reason = "tests/sdk/node_modules is not installed: run `npm ci --prefix tests/sdk` (make test does)"
    else:
        return tools
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def test_typescript_types_compile(live: LiveServer, tmp_path: Path) -> None:
    openapi_typescript, tsc = _node_tools()
    # --default-non-nullable false: a property with a default stays optional where it is optional
    # (by default openapi-typescript makes it required, in request bodies too).
    generated = subprocess.run([str(openapi_typescript), document_url(live), "--default-non-nullable", "false",
                                "-o", str(tmp_path / "darkroom.d.ts")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert generated.returncode == 0, generated.stdout
    assert "warn" not in generated.stdout.lower(), generated.stdout
    shutil.copy(SDK_DIR / "usage.ts", tmp_path / "usage.ts")
    checked = subprocess.run(
        [str(tsc), "--strict", "--noEmit", "--target", "es2022", "--module", "esnext",
         "--moduleResolution", "bundler", "usage.ts"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
    )
    assert checked.returncode == 0, checked.stdout
