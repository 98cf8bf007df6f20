"""Places, the map and memories: where and when the user's photos were taken."""

from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web

from api.envelope import ok
from api.models_library import MarkerPage, MemoryList, PlacePage
from api.registry import DATE_OR_DATE_TIME, Ctx, QueryParam, page_params, route
from domain.errors import InvalidInput
from projections.places import Places
from projections.queries import calendar_day, date_bound

ASSET_TYPES = ("PHOTO", "VIDEO", "AUDIO", "DOCUMENT")


@route("GET", "/places", operation_id="listPlaces", summary="Cities where the user's photos were taken",
       tag="Places", response=PlacePage, params=page_params())
async def list_places(ctx: Ctx) -> web.Response:
    """The cities of the caller's assets (offline reverse geocoding of their GPS positions), most
    assets first, each with its country, count and the newest asset there as cover."""
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    places, total = await ctx.run(Places(ctx.services.db).places, ctx.user_id, limit, offset)
    return ok({"places": places, "limit": limit, "offset": offset, "total": total})


def _date(ctx: Ctx, name: str, end: bool) -> str | None:
    raw = ctx.query_str(name)
    if raw is None:
        return None
    try:
        return date_bound(raw, end=end)
    except ValueError as exc:
        raise InvalidInput(f"{name}: {exc}", name) from None


@route("GET", "/map/markers", operation_id="listMapMarkers", summary="Positions of the user's assets with GPS",
       tag="Places", response=MarkerPage, params=(
           QueryParam("type", description="one asset type", enum=ASSET_TYPES, any_case=True),
           QueryParam("liked", "boolean", "liked ones only (or not liked)"),
           QueryParam("rating", "integer", "this rating only", minimum=0, maximum=5),
           QueryParam("date_from", description="taken on or after (ISO date or datetime)", max_length=64,
                      any_of=DATE_OR_DATE_TIME, example="2020-01-01"),
           QueryParam("date_to", description="taken on or before (an ISO date includes that day)", max_length=64,
                      any_of=DATE_OR_DATE_TIME, example="2020-12-31"),
           *page_params(500, 5000),
       ))
async def map_markers(ctx: Ctx) -> web.Response:
    """A marker per asset of the caller that has a GPS position, newest first, narrowed by the
    simple filter fields. Pages of up to 5000 markers, with the total."""
    raw_type = ctx.query_str("type")
    liked = ctx.query_bool("liked", False) if ctx.query_str("liked") is not None else None
    rating = ctx.query_int("rating", 0, 0, 5) if ctx.query_str("rating") is not None else None
    taken_from, taken_to = _date(ctx, "date_from", False), _date(ctx, "date_to", True)
    if taken_from and taken_to and taken_from > taken_to:
        raise InvalidInput("date_from is after date_to", "date_from")
    limit, offset = ctx.query_int("limit", 500, 1, 5000), ctx.query_int("offset", 0)
    markers, total = await ctx.run(
        Places(ctx.services.db).markers, ctx.user_id, type=raw_type.upper() if raw_type else None,
        liked=liked, rating=rating, taken_from=taken_from, taken_to=taken_to, limit=limit, offset=offset)
    return ok({"markers": markers, "limit": limit, "offset": offset, "total": total})


@route("GET", "/memories", operation_id="listMemories", summary="What was taken on this day in earlier years",
       tag="Places", response=MemoryList, params=(
           QueryParam("date", description="the day (YYYY-MM-DD); today (UTC) when absent",
                      format="date", max_length=10, example="2026-11-28"),
           QueryParam("limit", "integer", "assets per year (default 20; larger values are lowered to 100)",
                      default=20, minimum=1, maximum=100, clamp=True),
       ))
async def memories(ctx: Ctx) -> web.Response:
    """The caller's assets taken on the month and day of `date` in earlier years, grouped by year,
    most recent first. The day is the wall-clock one in the photo's own time zone where the file
    says it (a photo taken at 23:30 in Tokyo counts on the Tokyo date)."""
    raw = ctx.query_str("date")
    try:
        day = calendar_day(raw) if raw is not None else datetime.now(timezone.utc).date()
    except ValueError:
        raise InvalidInput(f"date must be a calendar date YYYY-MM-DD, got {raw!r}", "date") from None
    limit = ctx.query_int("limit", 20, 1, 100)
    found = await ctx.run(Places(ctx.services.db).memories, ctx.user_id, day, min(limit, 100))
    return ok({"date": day.isoformat(), "memories": found, "total": len(found)})
