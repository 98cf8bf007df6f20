"""Near-duplicate review: list the groups, resolve one (keep some, trash the rest), dismiss one."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web

from api.envelope import ok
from api.models_library import DuplicatePage, ResolveBody, ResolveResult
from api.registry import Ctx, PathParam, page_params, route
from domain.errors import InvalidInput, NotFound
from projections.duplicates import Duplicates

GROUP_ID = PathParam("group_id", description="a duplicate group id (a UUID)", format="uuid",
                     example="6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f")


async def _group(ctx: Ctx) -> tuple[UUID, dict[str, Any]]:
    raw = ctx.request.match_info["group_id"]
    try:
        group_id = UUID(raw)
    except ValueError:
        raise NotFound(f"duplicate group {raw} not found") from None
    found = await ctx.run(Duplicates(ctx.services.db).find, ctx.user_id, str(group_id))
    if found is None:
        raise NotFound(f"duplicate group {group_id} not found")
    return group_id, found


@route("GET", "/duplicates", operation_id="listDuplicates", summary="Groups of near-duplicate photos",
       tag="Duplicates", response=DuplicatePage, params=page_params())
async def list_duplicates(ctx: Ctx) -> web.Response:
    """The caller's near-duplicate photos in groups (resized, re-encoded, lightly cropped or
    rotated copies), each with a stable id, a page at a time, with the total. Dismissed and
    resolved photos are not grouped together again."""
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    groups, total = await ctx.run(Duplicates(ctx.services.db).page, ctx.user_id, limit, offset)
    return ok({"groups": groups, "limit": limit, "offset": offset, "total": total})


@route("POST", "/duplicates/{group_id}/resolve", operation_id="resolveDuplicates",
       summary="Keep some photos of a group, trash the others", tag="Duplicates", body=ResolveBody,
       response=ResolveResult, params=(GROUP_ID,), also=(409,))
async def resolve_duplicates(ctx: Ctx) -> web.Response:
    """Keeps `keep_asset_ids` (photos of the group; 400 for any other) and moves the others to
    the trash; the kept photos join the albums the others were in and take the highest rating
    and a like if any had one. An unknown group answers 404."""
    group_id, found = await _group(ctx)
    keep = []
    for raw in ctx.body.keep_asset_ids:
        try:
            keep.append(str(UUID(raw)))
        except ValueError:
            raise InvalidInput(f"keep_asset_ids: {raw!r} is not an asset id", "keep_asset_ids") from None
    members = found["asset_ids"]
    albums_of = {}
    for asset_id in members:
        if asset_id not in keep:
            albums = await ctx.run(ctx.services.albums.containing, ctx.user_id, asset_id)
            albums_of[asset_id] = [a["album_id"] for a in albums]
    position = await ctx.run(ctx.services.app.resolve_duplicates, ctx.user_id, group_id, members, keep, albums_of)
    await ctx.settle(position)
    return ok({"kept": keep, "trashed": [a for a in members if a not in keep]}, "resolved")


@route("POST", "/duplicates/{group_id}/dismiss", operation_id="dismissDuplicates",
       summary="Not duplicates: the group does not come back", tag="Duplicates", params=(GROUP_ID,))
async def dismiss_duplicates(ctx: Ctx) -> web.Response:
    """Marks the group's photos as not duplicates of each other: the group is gone for good (a
    new copy of one of them may still form a new group). An unknown group answers 404."""
    group_id, found = await _group(ctx)
    position = await ctx.run(ctx.services.app.dismiss_duplicates, ctx.user_id, group_id, found["asset_ids"])
    await ctx.settle(position)
    return ok(message=f"duplicate group {group_id} dismissed")
