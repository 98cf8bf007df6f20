"""Admin endpoints: the event stream, cursor-paginated, and its catalogue."""

from __future__ import annotations

from aiohttp import web

from api.envelope import ok
from api.models import EventCatalogue, EventPage
from api.registry import Ctx, QueryParam, route
from infra.event_catalogue import catalogue
from infra.event_stream import read_events


@route("GET", "/admin/events", operation_id="listEvents", summary="The event stream after a position (admins only)",
       tag="Admin", response=EventPage, admin=True, params=(
           QueryParam("after", "integer", "position to start after", default=0, minimum=0),
           QueryParam("limit", "integer", "page size (larger values are lowered to 1000)", default=100,
                      minimum=1, maximum=1000, clamp=True),
           QueryParam("type", description="only events of these types (comma-separated), e.g. "
                      "Asset.RatingChanged", max_length=2000),
       ))
async def events(ctx: Ctx) -> web.Response:
    """The event log in order, a page at a time (hashes redacted): pass `next_after` as `after`
    for the next page while `has_more`."""
    after = ctx.query_int("after", 0, 0)
    limit = ctx.query_int("limit", 100, 1, 1000)
    types = {t for t in (ctx.query_str("type") or "").split(",") if t}

    def page() -> tuple[list[dict[str, object]], int, bool]:
        records = list(read_events(ctx.services.app, after=after, types=types, limit=limit))
        head = ctx.services.app.recorder.max_notification_id() or 0
        next_after = records[-1]["position"] if len(records) == limit else head
        return records, int(next_after), bool(next_after < head)  # type: ignore[call-overload]

    records, next_after, has_more = await ctx.run(page)
    return ok({"events": records, "next_after": next_after, "has_more": has_more})


@route("GET", "/admin/events/schema", operation_id="getEventCatalogue",
       summary="The event catalogue: a JSON Schema per event type (admins only)", tag="Admin",
       response=EventCatalogue, admin=True)
async def event_schema(ctx: Ctx) -> web.Response:
    """One JSON Schema (draft 2020-12) per event type, generated from the domain's event classes:
    the shape of each record of GET /admin/events, `darkroom events export` and the events Kafka
    topic, with its `event_version`."""
    return ok(catalogue())
