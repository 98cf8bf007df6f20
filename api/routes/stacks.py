"""Stack endpoints: stack assets by hand, change the primary, unstack. (A RAW file and the
JPEG/HEIC of the same shot stack by themselves: `commands.stacks`.)"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web

from api.envelope import ok
from api.models import StackDTO
from api.models_library import StackCreateBody, StackUpdateBody
from api.registry import Ctx, Link, PathParam, route
from domain.errors import InvalidInput, NotFound
from projections.stacks import Stacks

STACK_ID = PathParam("id", description="a stack id (a UUID)", format="uuid",
                     example="6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f")


def _uuid(raw: str, field: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise InvalidInput(f"{field}: {raw!r} is not an asset id (a UUID)", field) from None


def _stack_id(ctx: Ctx) -> UUID:
    try:
        return UUID(ctx.request.match_info["id"])
    except ValueError:
        raise NotFound(f"stack {ctx.request.match_info['id']} not found") from None


async def _stack(ctx: Ctx, stack_id: UUID) -> dict[str, Any]:
    stack = await ctx.run(Stacks(ctx.services.db).get, ctx.user_id, str(stack_id))
    if stack is None:
        raise NotFound(f"stack {stack_id} not found")
    return stack


@route("POST", "/stacks", operation_id="createStack", summary="Stack some assets (shown as one)",
       tag="Assets", body=StackCreateBody, response=StackDTO, status=201, also=(404, 409),
       links=(Link("updateStack", "id", "$response.body#/data/stack_id"),
              Link("deleteStack", "id", "$response.body#/data/stack_id")))
async def create_stack(ctx: Ctx) -> web.Response:
    """Stacks 2 to 100 of the caller's assets, `primary_asset_id` (the first when absent) in
    front. An unknown or another user's asset answers 404, a trashed one or one already in a
    stack 409. Answers 201 with the stack."""
    body: StackCreateBody = ctx.body
    ids = [_uuid(a, "asset_ids") for a in body.asset_ids]
    primary = _uuid(body.primary_asset_id, "primary_asset_id") if body.primary_asset_id else None
    stack_id, position = await ctx.run(ctx.services.app.create_stack, ctx.user_id, ids, primary)
    await ctx.settle(position)
    return ok(await _stack(ctx, stack_id), "stack created", status=201)


@route("PUT", "/stacks/{id}", operation_id="updateStack", summary="Change a stack's primary asset",
       tag="Assets", body=StackUpdateBody, response=StackDTO, params=(STACK_ID,), also=(409,))
async def update_stack(ctx: Ctx) -> web.Response:
    """Puts another member of the stack in front (400 when it is not a member)."""
    stack_id = _stack_id(ctx)
    primary = _uuid(ctx.body.primary_asset_id, "primary_asset_id")
    position = await ctx.run(ctx.services.app.set_stack_primary, ctx.user_id, stack_id, primary)
    await ctx.settle(position)
    return ok(await _stack(ctx, stack_id), "stack updated")


@route("DELETE", "/stacks/{id}", operation_id="deleteStack", summary="Unstack (the assets stay)",
       tag="Assets", params=(STACK_ID,), also=(409,))
async def delete_stack(ctx: Ctx) -> web.Response:
    """Takes the stack apart; its assets are shown one by one again. An automatic stack (RAW +
    JPEG) taken apart is not made again."""
    stack_id = _stack_id(ctx)
    position = await ctx.run(ctx.services.app.unstack, ctx.user_id, stack_id)
    await ctx.settle(position)
    return ok(message=f"stack {stack_id} unstacked")
