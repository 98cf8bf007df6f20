"""Admin endpoints for jobs and queues (River-style paths, as API.md fixes them)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from api.envelope import ok
from api.models import DATE_TIME, JobState
from api.registry import Ctx, QueryParam, positive_id_param, route
from domain.errors import InvalidInput, NotFound
from domain.job import STATES
from projections.jobs import TIME_RANGES, decode_cursor, since_for


class JobDTO(BaseModel):
    id: int
    kind: str
    queue: str
    state: JobState
    args: dict
    metadata: dict
    attempt: int
    max_attempts: int
    priority: int
    errors: list
    created_at: str = Field(json_schema_extra=DATE_TIME)
    scheduled_at: str = Field(json_schema_extra=DATE_TIME)
    attempted_at: str | None = Field(json_schema_extra=DATE_TIME)
    finalized_at: str | None = Field(json_schema_extra=DATE_TIME)


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


@route("GET", "/admin/river/jobs", operation_id="listJobs", summary="Jobs, newest first, cursor-paginated",
       tag="Jobs", admin=True, response=JobPage, params=(
           QueryParam("state", description="only jobs in this state", enum=STATES),
           QueryParam("queue", description="only jobs of this queue, e.g. thumbnail_asset", max_length=200),
           QueryParam("kind", description="only jobs of this kind", max_length=200),
           QueryParam("limit", "integer", "page size (larger values are lowered to 200)", default=50,
                      minimum=1, maximum=200, clamp=True),
           QueryParam("cursor", description="opaque: the `cursor` of the previous page (anything else "
                      "is refused)", pattern="^[A-Za-z0-9_-]{1,200}$"),
           QueryParam("time_range", description="only jobs created within this time",
                      enum=tuple(TIME_RANGES)),
           QueryParam("include_count", "boolean", "also count every matching job", default=False),
       ))
async def list_jobs(ctx: Ctx) -> web.Response:
    """Jobs newest first; pass the answer's `cursor` for the next page (null: no more). A cursor
    never repeats or skips a job, even while new jobs arrive."""
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


@route("GET", "/admin/river/jobs/{id}", operation_id="getJob", summary="One job", tag="Jobs", admin=True,
       response=JobDTO, params=(positive_id_param("id", "a job"),))
async def get_job(ctx: Ctx) -> web.Response:
    """One job with its attempts' errors."""
    job_id = ctx.path_int("id")
    job = await ctx.run(ctx.services.jobs.get, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return ok(job)


@route("GET", "/admin/river/queues", operation_id="listQueues", summary="Queues with per-state counts",
       tag="Jobs", admin=True, response=QueueList, params=(
           QueryParam("limit", "integer", "how many queues (larger values are lowered to 1000)", default=100,
                      minimum=1, maximum=1000, clamp=True),))
async def list_queues(ctx: Ctx) -> web.Response:
    """Every queue with how many of its jobs are in each state."""
    limit = ctx.query_int("limit", 100, 1, 1000)
    return ok({"queues": await ctx.run(ctx.services.jobs.queues, limit)})


@route("GET", "/admin/river/stats", operation_id="getJobStats", summary="Job counts by state", tag="Jobs",
       admin=True, response=JobStats)
async def job_stats(ctx: Ctx) -> web.Response:
    """How many jobs are in each state, over every queue."""
    return ok(await ctx.run(ctx.services.jobs.stats))
