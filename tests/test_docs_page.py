"""The browsable API docs at /api/v1/docs: the page, its assets, and a real browser rendering them.

The docs touch no database, so these run on the embedded SQLite backend only.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from tests.live_server import LiveServer

DOCS = "/api/v1/docs"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@pytest.fixture
def backend() -> str:
    """Overrides conftest's SQLite/PostgreSQL pair: nothing here reads the database."""
    return "sqlite"


async def test_page_is_html_with_a_strict_policy(client: Any) -> None:
    resp = await client.get(DOCS)  # no token: the docs are public, like openapi.json
    assert resp.status == 200
    assert resp.content_type == "text/html"
    page = await resp.text()
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    assert "<script>" not in page and "<style" not in page  # nothing inline for the policy to block
    for src in re.findall(r'(?:src|href)="([^"]+)"', page):  # every asset the page names is served
        asset = await client.get(src)
        assert asset.status == 200, src


@pytest.mark.parametrize(("name", "content_type"), [
    ("swagger-ui-bundle.js", "javascript"),
    ("darkroom-init.js", "javascript"),
    ("swagger-ui.css", "text/css"),
    ("index.css", "text/css"),
    ("favicon-32x32.png", "image/png"),
])
async def test_assets_have_their_content_types(client: Any, name: str, content_type: str) -> None:
    resp = await client.get(f"{DOCS}/{name}")
    assert resp.status == 200
    assert content_type in resp.content_type
    assert await resp.read()


async def test_init_script_points_at_our_document(client: Any) -> None:
    script = await (await client.get(f"{DOCS}/darkroom-init.js")).text()
    assert '"/api/v1/openapi.json"' in script


async def test_head_etag_and_range(client: Any) -> None:
    head = await client.head(f"{DOCS}/swagger-ui.css")
    assert head.status == 200 and head.content_type == "text/css"
    assert int(head.headers["Content-Length"]) > 1000 and await head.read() == b""
    assert (await client.head(DOCS)).status == 200
    etag = head.headers["ETag"]
    assert (await client.get(f"{DOCS}/swagger-ui.css", headers={"If-None-Match": etag})).status == 304
    part = await client.get(f"{DOCS}/swagger-ui.css", headers={"Range": "bytes=0-9"})
    assert part.status == 206 and len(await part.read()) == 10


@pytest.mark.parametrize("path", [
    "..",                                 # the folder above
    "%2e%2e",                             # the same, percent-encoded
    "%2e%2e%2f%2e%2e%2fapi%2fapp.py",     # climbing with encoded slashes
    "..%2f__init__.py",                   # the package's own module next to static/
    "%2fetc%2fpasswd",                    # an absolute path
    "nope.js",                            # an unknown name
    "index.html",                         # not in the dist folder we serve
])
async def test_anything_but_a_dist_file_is_404_in_the_envelope(client: Any, path: str) -> None:
    resp = await client.get(URL(f"{DOCS}/{path}", encoded=True))  # sent as written, not normalised
    assert resp.status == 404
    body = await resp.json()
    assert body["code"] == 404 and body["message"]


async def test_docs_stay_out_of_the_openapi_document(client: Any) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    assert not [p for p in document["paths"] if p.startswith(DOCS)]


# -- a real browser --------------------------------------------------------------------------------

def _chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def test_a_browser_renders_every_operation(tmp_path: Path) -> None:
    """Headless Chromium loads the page under its CSP and renders one block per operation."""
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium not found; `scripts/system-deps.sh --test` installs it")
        pytest.skip("chromium not found (`scripts/system-deps.sh --test` installs it; CI requires it)")
    server = LiveServer(tmp_path / "data")
    try:
        document = server.json("GET", "/openapi.json", expect=200)
        browser = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
             "--enable-logging=stderr", "--log-level=0", "--dump-dom", server.base + DOCS],
            capture_output=True, text=True, timeout=120, check=False,
        )
    finally:
        server.stop()
    dom = browser.stdout
    assert browser.returncode == 0, browser.stderr[-3000:]
    # The console would say so if the policy blocked a script or a style the renderer needs.
    assert "Content Security Policy" not in browser.stderr, browser.stderr[-3000:]

    operations = [(path, method, op) for path, item in document["paths"].items()
                  for method, op in item.items() if method in METHODS]
    assert len(operations) > 10
    blocks = re.findall(rf'class="opblock opblock-(?:{"|".join(METHODS)})\b', dom)
    assert len(blocks) == len(operations), dom[-3000:]
    for path in ("/api/v1/albums", "/api/v1/assets", "/api/v1/auth/login", "/api/v1/health"):
        assert f'data-path="{path}"' in dom, path
    for path, method, op in operations:
        assert f'data-path="{html.escape(path)}"' in dom, (method, path)
        assert html.escape(op["summary"], quote=False) in dom, (method, path, op["summary"])
