"""Interactive API documentation: Swagger UI over our own `/api/v1/openapi.json`.

The renderer is Swagger UI 5 (OpenAPI 3.1, which our document is) from the `swagger-ui-py`
package's `static/` folder, so the page works offline (no CDN). Only that folder's files are
served, by exact name. The page and its init script are ours: the page carries no inline script
or style, so it can send a strict Content-Security-Policy.

These routes are added with plain `app.router.add_get`, not `@route`: they are not part of the
API, so they stay out of the OpenAPI document, and they need no token.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from aiohttp import web

from api.envelope import fail
from api.registry import PREFIX


def _dist() -> Path | None:
    """swagger-ui-py's `static/` folder, found without importing the package (it pulls jinja2)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "static"


DIST = _dist()
# The allow-list: a request names one of these exactly, so no `..`, slash or absolute path gets in.
FILES = frozenset(p.name for p in DIST.iterdir() if p.is_file()) if DIST and DIST.is_dir() else frozenset()
INIT = "darkroom-init.js"  # ours, not in the dist folder

PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Darkroom API</title>
  <link rel="stylesheet" href="{PREFIX}/docs/swagger-ui.css">
  <link rel="stylesheet" href="{PREFIX}/docs/index.css">
  <link rel="icon" type="image/png" href="{PREFIX}/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{PREFIX}/docs/swagger-ui-bundle.js"></script>
  <script src="{PREFIX}/docs/{INIT}"></script>
</body>
</html>
"""

# BaseLayout: no top bar with a box to load some other URL's document; only ours is shown.
INIT_JS = f"""window.ui = SwaggerUIBundle({{
  url: "{PREFIX}/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
}});
"""

# Scripts and styles from this origin only; data: images are the stylesheet's SVG icons.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
CACHE = "public, max-age=3600"  # names are not versioned; the ETag revalidates after an upgrade


async def page(request: web.Request) -> web.StreamResponse:
    if not FILES:
        return fail(503, "API docs unavailable", "the swagger-ui-py package is not installed")
    return web.Response(text=PAGE, content_type="text/html",
                        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})


async def init_script(request: web.Request) -> web.StreamResponse:
    return web.Response(text=INIT_JS, content_type="text/javascript",
                        headers={"Cache-Control": "no-cache"})


async def asset(request: web.Request) -> web.StreamResponse:
    """One dist file; FileResponse does ETag, Range and HEAD, and sends it off the event loop."""
    name = request.match_info["file"]
    if DIST is None or name not in FILES:
        return fail(404, "not found", f"'{name}' is not a file of the API docs")
    return web.FileResponse(DIST / name, headers={"Cache-Control": CACHE})


def add_docs_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/docs", page)
    app.router.add_get(f"{PREFIX}/docs/{INIT}", init_script)
    app.router.add_get(f"{PREFIX}/docs/{{file}}", asset)
