"""Statistics over the user's library."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from api.envelope import ok
from api.registry import Ctx, QueryParam, route
from domain.errors import InvalidInput


class Bucket(BaseModel):
    label: str
    value: int
    count: int


class TimeDistribution(BaseModel):
    type: str
    data: list[Bucket]


@route("GET", "/stats/time-distribution", summary="Assets by hour of day or month of year taken",
       tag="Stats", response=TimeDistribution,
       query=(QueryParam("type", description="hourly (default) or monthly"),))
async def time_distribution(ctx: Ctx) -> web.Response:
    kind = ctx.query_str("type") or "hourly"
    if kind not in ("hourly", "monthly"):
        raise InvalidInput(f"type must be hourly or monthly, got {kind!r}", "type")
    data = await ctx.run(ctx.services.catalog.time_distribution, ctx.user_id, kind)
    return ok({"type": kind, "data": data})
