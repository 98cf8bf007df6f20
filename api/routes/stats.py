"""Statistics over the user's library."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from api.envelope import ok
from api.models import examples
from api.registry import Ctx, QueryParam, route
from domain.errors import InvalidInput


class Bucket(BaseModel):
    label: str
    value: int
    count: int


class TimeDistribution(BaseModel):
    model_config = examples({"type": "monthly", "data": [{"label": "Jan", "value": 1, "count": 4}]})

    type: Literal["hourly", "monthly"]
    data: list[Bucket]


@route("GET", "/stats/time-distribution", operation_id="getTimeDistribution",
       summary="Assets by hour of day or month of year taken", tag="Stats", response=TimeDistribution,
       params=(QueryParam("type", description="24 hourly or 12 monthly buckets", enum=("hourly", "monthly"),
                          default="hourly"),))
async def time_distribution(ctx: Ctx) -> web.Response:
    """The caller's assets counted by the hour of day (24 buckets) or the month (12 buckets) they
    were taken, in the photo's own local time."""
    kind = ctx.query_str("type") or "hourly"
    if kind not in ("hourly", "monthly"):
        raise InvalidInput(f"type must be hourly or monthly, got {kind!r}", "type")
    data = await ctx.run(ctx.services.catalog.time_distribution, ctx.user_id, kind)
    return ok({"type": kind, "data": data})
