"""Admin endpoints for jobs and queues (River-style paths, as API.md fixes them)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from api.envelope import ok
from api.registry import Ctx, QueryParam, route
from domain.errors import InvalidInput, NotFound
from domain.job import STATES
from projections.jobs import TIME_RANGES, decode_cursor, since_for


class JobDTO(BaseModel):
    id: int
    kind: str
    queue: str
    state: str
    args: dict
    metadata: dict
    attempt: int
    max_attempts: int
    priority: int
    errors: list
    created_at: str
    scheduled_at: str
    attempted_at: str | None
    finalized_at: str | None


class JobPage(BaseModel):
    jobs: list[JobDTO]
    cursor: str | None
    total_count: int | None = None


class QueueDTO(BaseModel):
    name: str
    metadata: dict[str, int]
    updated_at: str


class QueueList(BaseModel):
    queues: list[QueueDTO]


class JobStats(BaseModel):
    available: int
    scheduled: int
    running: int
    retryable: int
    completed: int
    cancelled: int
    discarded: int


@route("GET", "/admin/river/jobs", summary="Jobs, newest first, cursor-paginated", tag="Jobs",
       admin=True, response=JobPage, query=(
           QueryParam("state", description=", ".join(STATES)),
           QueryParam("queue"), QueryParam("kind"),
           QueryParam("limit", "integer", "default 50, at most 200"),
           QueryParam("cursor", description="opaque, from the previous page"),
           QueryParam("time_range", description="1h, 24h or 30d on created_at"),
           QueryParam("include_count", "boolean"),
       ))
async def list_jobs(ctx: Ctx) -> web.Response:
    state = ctx.query_str("state")
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}", "state")
    time_range = ctx.query_str("time_range")
    if time_range is not None and time_range not in TIME_RANGES:
        raise InvalidInput(f"time_range must be one of {', '.join(TIME_RANGES)}", "time_range")
    before = None
    cursor = ctx.query_str("cursor")
    if cursor is not None:
        try:
            before = decode_cursor(cursor)
        except (ValueError, KeyError, TypeError):
            raise InvalidInput("cursor is not one this server gave out", "cursor") from None
    limit = ctx.query_int("limit", 50, 1, 200)
    jobs, next_cursor, total = await ctx.run(
        ctx.services.jobs.page, state=state, queue=ctx.query_str("queue"), kind=ctx.query_str("kind"),
        since=since_for(time_range), before=before, limit=limit,
        include_count=ctx.query_bool("include_count", False),
    )
    data = {"jobs": jobs, "cursor": next_cursor}
    if total is not None:
        data["total_count"] = total
    return ok(data)


@route("GET", "/admin/river/jobs/{id}", summary="One job", tag="Jobs", admin=True, response=JobDTO)
async def get_job(ctx: Ctx) -> web.Response:
    job_id = ctx.path_int("id")
    job = await ctx.run(ctx.services.jobs.get, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return ok(job)


@route("GET", "/admin/river/queues", summary="Queues with per-state counts", tag="Jobs",
       admin=True, response=QueueList, query=(QueryParam("limit", "integer", "default 100"),))
async def list_queues(ctx: Ctx) -> web.Response:
    limit = ctx.query_int("limit", 100, 1, 1000)
    return ok({"queues": await ctx.run(ctx.services.jobs.queues, limit)})


@route("GET", "/admin/river/stats", summary="Job counts by state", tag="Jobs", admin=True,
       response=JobStats)
async def job_stats(ctx: Ctx) -> web.Response:
    return ok(await ctx.run(ctx.services.jobs.stats))
