"""The aiohttp application: routes, middleware, and the lifetime of the services."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

import api.routes.admin  # noqa: F401  (importing a routes module registers its routes)
import api.routes.albums  # noqa: F401
import api.routes.batch  # noqa: F401  (before assets: /assets/batch must win over /assets/{id})
import api.routes.search  # noqa: F401  (before assets: /assets/filter must win over /assets/{id})
import api.routes.assets  # noqa: F401
import api.routes.auth  # noqa: F401
import api.routes.erasure  # noqa: F401
import api.routes.health  # noqa: F401
import api.routes.jobs  # noqa: F401
import api.routes.stats  # noqa: F401  (registers its routes)
from api.envelope import envelope_middleware
from api.registry import SERVICES, add_routes
from api.routes.docs import add_docs_routes
from infra.bootstrap import Services


def create_app(services: Services, start_projections: bool | None = None) -> web.Application:
    """An application around ready services. Projections run in-process when configured so."""
    app = web.Application(
        middlewares=[envelope_middleware],
        client_max_size=services.settings.max_json_body_bytes,
    )
    app[SERVICES] = services
    add_routes(app)
    add_docs_routes(app)  # plain routes: the browsable docs are not part of the OpenAPI document

    run_daemon = services.settings.run_projections if start_projections is None else start_projections

    async def on_startup(app: web.Application) -> None:
        # Blocking work (event store, KDF, files) runs here, off the event loop.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=16, thread_name_prefix="darkroom")
        )
        if run_daemon:
            services.start_daemon()
        if services.settings.run_workers and services.settings.bus == "inprocess":
            await asyncio.get_running_loop().run_in_executor(None, services.start_processing)

    async def on_cleanup(app: web.Application) -> None:
        services.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
