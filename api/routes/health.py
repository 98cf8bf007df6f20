"""Health and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.envelope import ok
from api.models import Health
from api.registry import Ctx, route
from processors.ml import ml_status


def health_report(ctx: Ctx) -> dict[str, Any]:
    services = ctx.services
    report: dict[str, Any] = {"status": "ok"}
    backend = "postgresql" if services.settings.is_postgres else "sqlite"
    try:
        head = services.app.recorder.max_notification_id() or 0
        report["event_store"] = {"status": "ok", "backend": backend, "position": head}
    except Exception as exc:
        head = 0
        report["status"] = "degraded"
        report["event_store"] = {"status": "down", "backend": backend, "error": str(exc)}
    projections: dict[str, Any] = {}
    for name, runner in services.runners.items():
        try:
            position = runner.position()
            projections[name] = {"status": "ok", "position": position, "lag": max(0, head - position)}
        except Exception as exc:
            report["status"] = "degraded"
            projections[name] = {"status": "down", "error": str(exc)}
    if services.daemon is not None:
        for name, error in services.daemon.errors.items():
            report["status"] = "degraded"
            projections.setdefault(name, {})["status"] = "stuck"
            projections[name]["error"] = error
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
            bus["relay"]["error"] = error
            bus["status"] = "degraded"
            report["status"] = "degraded"
    if services.worker is not None:
        bus["worker"] = {"id": services.worker.worker_id, "queues": services.worker.queues,
                         "concurrency": services.worker.concurrency, "busy": services.worker.busy}
    report["bus"] = bus
    report["ml"] = ml_status(services.settings)  # each ML task on (its model) or off (why)
    if services.search is not None:
        report["search_index"] = services.search.health()
        if report["search_index"]["status"] == "degraded":
            report["status"] = "degraded"
    else:
        report["search_index"] = {"status": "not configured"}
    return report


@route("GET", "/health", operation_id="getHealth", summary="State of each backend", tag="System",
       response=Health, auth=False, ok_also=(503,))
async def health(ctx: Ctx) -> web.Response:
    """The state of the event store, the bus, the search index, the projections and the ML tasks.
    200 when all is well; 503, with the same body, when something the server needs is down."""
    report = await ctx.run(health_report, ctx)
    return ok(report, report["status"], status=200 if report["status"] == "ok" else 503)


@route("GET", "/openapi.json", operation_id="getOpenApiDocument", summary="This API as an OpenAPI 3.1 document",
       tag="System", auth=False, response=dict)
async def openapi(ctx: Ctx) -> web.Response:
    """This document, as it is: not wrapped in the envelope."""
    from api.openapi import openapi_document

    return web.json_response(openapi_document(tuple(sorted(ctx.services.storage.repositories))))
