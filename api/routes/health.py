"""Health and the OpenAPI document.

`/health` is public, so it tells a stranger only `status`; an admin's token gets the detail
(backends, lag, models, workers). Errors are summarised (an exception's kind, never its text, which
names hosts, users and paths), and the answer comes within about a second even when a backend
hangs: the checks run in a small pool of their own, under a deadline.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from api.envelope import ok
from api.models import Health
from api.registry import Ctx, optional_user, route
from domain.errors import Unauthorized
from infra.bootstrap import Services
from processors.ml import ml_status

HEALTH_DEADLINE_SECONDS = 1.0
# Its own threads: a check stuck on a dead backend must not wait behind the API's work, nor hold it.
_CHECKS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="darkroom-health")


def summarise(error: BaseException | str | None) -> str:
    """An error as health may show it: the exception's kind, or a message's first words without
    URLs, addresses or quoted values."""
    if error is None:
        return ""
    if isinstance(error, BaseException):
        return type(error).__name__
    text = re.sub(r"\w+://\S+|\S+@\S+|'[^']*'|\"[^\"]*\"|\d+\.\d+\.\d+\.\d+(:\d+)?", "…", str(error))
    return text.splitlines()[0][:120] if text else ""


def _strip_credentials(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//", url)


def health_report(services: Services) -> dict[str, Any]:
    report: dict[str, Any] = {"status": "ok"}
    backend = "postgresql" if services.settings.is_postgres else "sqlite"
    try:
        head = services.app.recorder.max_notification_id() or 0
        report["event_store"] = {"status": "ok", "backend": backend, "position": head}
    except Exception as exc:
        head = 0
        report["status"] = "degraded"
        report["event_store"] = {"status": "down", "backend": backend, "error": summarise(exc)}
    projections: dict[str, Any] = {}
    for name, runner in services.runners.items():
        try:
            position = runner.position()
            projections[name] = {"status": "ok", "position": position, "lag": max(0, head - position)}
        except Exception as exc:
            report["status"] = "degraded"
            projections[name] = {"status": "down", "error": summarise(exc)}
    # A request's failed catch-up counts until that projection is caught up again.
    failing = {name: error for name, error in services.projection_errors.items()
               if projections.get(name, {}).get("lag", 1) > 0}
    if services.daemon is not None:
        failing.update(services.daemon.errors)
    if failing:
        for name, error in failing.items():
            report["status"] = "degraded"
            projections.setdefault(name, {})["status"] = "stuck"
            projections[name]["error"] = summarise(error)
    report["projections"] = projections
    bus: dict[str, Any] = {"backend": services.settings.bus}
    if services.bus is not None:
        bus.update(status="ok", pending_messages=services.bus.pending())
    else:
        bus.update(status="off", note="no workers in this process (DARKROOM_RUN_WORKERS=false)")
    relay = services.relay
    if relay is not None:
        # How far the relay (outbox on Kafka) has published: a stalled one leaves jobs unstarted.
        error = getattr(relay, "last_error", None)
        bus["relay"] = {"position": relay.position, "lag": max(0, head - relay.position),
                        "status": "stalled" if error else "ok"}
        if hasattr(relay, "role"):  # the outbox relay: "leader", or "standby" behind another replica's
            bus["relay"]["role"] = relay.role
        if error:
            bus["relay"]["error"] = summarise(error)
            bus["status"] = "degraded"
            report["status"] = "degraded"
    if services.worker is not None:
        bus["worker"] = {"id": services.worker.worker_id, "queues": services.worker.queues,
                         "concurrency": services.worker.concurrency, "busy": services.worker.busy}
    report["bus"] = bus
    if services.sweeper is not None:
        report["storage"] = services.sweeper.status()
    report["ml"] = ml_status(services.settings)  # each ML task on (its model) or off (why)
    if services.search is not None:
        report["search_index"] = services.search.health()
        if "url" in report["search_index"]:
            report["search_index"]["url"] = _strip_credentials(report["search_index"]["url"])
        if report["search_index"].get("error"):
            report["search_index"]["error"] = summarise(report["search_index"]["error"])
        if report["search_index"]["status"] == "degraded":
            report["status"] = "degraded"
    else:
        report["search_index"] = {"status": "not configured"}
    return report


async def timed_report(services: Services) -> dict[str, Any]:
    """The report, or, past the deadline, a degraded one saying which check did not answer."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(_CHECKS, health_report, services),
                                      HEALTH_DEADLINE_SECONDS)
    except (asyncio.TimeoutError, RuntimeError):
        backend = "postgresql" if services.settings.is_postgres else "sqlite"
        return {"status": "degraded",
                "event_store": {"status": "down", "backend": backend,
                                "error": f"no answer within {HEALTH_DEADLINE_SECONDS:g} s"},
                "bus": {"backend": services.settings.bus}, "search_index": {}, "projections": {}}


async def _is_admin(ctx: Ctx) -> bool:
    """An admin's valid token. When the users directory does not answer in time (its database
    is the thing that is down), the token's own claim decides: the detail is what an admin needs
    then."""
    header = ctx.request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    try:
        claims = ctx.services.tokens.verify(token.strip())
    except Unauthorized:
        return False
    if not claims.is_admin:
        return False
    try:
        caller = await asyncio.wait_for(optional_user(ctx.request), HEALTH_DEADLINE_SECONDS / 2)
    except Exception:  # no answer in time, or the database refused: it is what is down
        return True
    return caller is not None and caller[1]


@route("GET", "/health", operation_id="getHealth", summary="State of the server (detail for admins)",
       tag="System", response=Health, auth=False, ok_also=(503,))
async def health(ctx: Ctx) -> web.Response:
    """200 when all is well; 503 when something the server needs is down. Without an admin's
    token the answer is only `{status}`; with one, the state of the event store, the bus, the
    search index, the projections, the ML tasks and the workers, errors summarised. Answers within
    about a second even when a backend hangs."""
    report = await timed_report(ctx.services)
    code = 200 if report["status"] == "ok" else 503
    if not await _is_admin(ctx):
        return ok({"status": report["status"]}, report["status"], status=code)
    return ok(report, report["status"], status=code)


@route("GET", "/openapi.json", operation_id="getOpenApiDocument", summary="This API as an OpenAPI 3.1 document",
       tag="System", auth=False, response=dict)
async def openapi(ctx: Ctx) -> web.Response:
    """This document, as it is: not wrapped in the envelope."""
    from api.openapi import openapi_document

    return web.json_response(openapi_document(tuple(sorted(ctx.services.storage.repositories))))
