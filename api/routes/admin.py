"""Admin endpoints: the event stream, cursor-paginated."""

from __future__ import annotations

from aiohttp import web

from api.envelope import ok
from api.models import EventPage
from api.registry import Ctx, QueryParam, route
from infra.event_stream import read_events


@route("GET", "/admin/events", summary="The event stream after a position (admins only)",
       tag="Admin", response=EventPage, admin=True, query=(
           QueryParam("after", "integer", "position to start after (default 0)"),
           QueryParam("limit", "integer", "page size (default 100, at most 1000)"),
           QueryParam("type", description="only events of this type, e.g. Asset.RatingChanged"),
       ))
async def events(ctx: Ctx) -> web.Response:
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
