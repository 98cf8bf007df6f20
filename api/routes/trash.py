"""Trash endpoints: list, restore (back into the albums the assets left), empty (purge)."""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from api.envelope import ok
from api.models_library import EmptyResult, RestoreResult, TrashIdsBody, TrashPage
from api.registry import Ctx, page_params, route
from domain.asset import asset_id_from
from domain.errors import InvalidInput
from processors.purge import Purger


def _ids(ctx: Ctx, body: TrashIdsBody) -> list[UUID] | None:
    if body.asset_ids is None:
        return None
    ids: list[UUID] = []
    for raw in body.asset_ids:
        try:
            ids.append(UUID(raw))
        except ValueError:
            raise InvalidInput(f"asset_ids: {raw!r} is not an asset id (a UUID)", "asset_ids") from None
    if len(set(ids)) != len(ids):
        raise InvalidInput("asset_ids names an asset twice", "asset_ids")
    return ids


async def _targets(ctx: Ctx) -> list[UUID]:
    """The trashed assets a restore or an empty acts on, all checked before anything changes:
    an unknown or another user's id is a 404, one not in the trash a 409."""
    ids = _ids(ctx, ctx.body)
    if ids is None:
        return [asset_id_from(a) for a in await ctx.run(ctx.services.catalog.trashed_ids, ctx.user_id)]
    return await ctx.run(ctx.services.app.check_trashed, ctx.user_id, ids)


@route("GET", "/trash", operation_id="listTrash", summary="The user's trash, most recently deleted first",
       tag="Trash", response=TrashPage, params=page_params())
async def list_trash(ctx: Ctx) -> web.Response:
    """The caller's trashed assets, most recently deleted first, a page at a time, with the
    total. Each is purged automatically `trash_days` (30) after its deletion."""
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    assets, total = await ctx.run(ctx.services.catalog.trash, ctx.user_id, limit, offset)
    return ok({"assets": assets, "limit": limit, "offset": offset, "total": total})


@route("POST", "/trash/restore", operation_id="restoreTrash", summary="Restore assets from the trash",
       tag="Trash", body=TrashIdsBody, response=RestoreResult, also=(404, 409))
async def restore_trash(ctx: Ctx) -> web.Response:
    """Takes the given assets (all of the trash when `asset_ids` is absent) out of the trash:
    each returns to listings and to the albums it left, at its old position when that still
    fits (at the end otherwise). An id that is not the caller's answers 404, one not in the trash
    409, and then nothing is restored."""
    ids = await _targets(ctx)
    position = 0
    for asset_id in ids:
        position = max(position, await ctx.run(ctx.services.app.restore_asset, ctx.user_id, asset_id))
    await ctx.settle(position)
    return ok({"restored": len(ids), "asset_ids": [str(i) for i in ids]}, f"{len(ids)} restored")


@route("POST", "/trash/empty", operation_id="emptyTrash", summary="Purge assets from the trash for good",
       tag="Trash", body=TrashIdsBody, response=EmptyResult, also=(404, 409))
async def empty_trash(ctx: Ctx) -> web.Response:
    """Purges the given trashed assets (the whole trash when `asset_ids` is absent): their
    originals and derived files leave the disk (an original another asset still references
    stays) and they answer 404 everywhere from then on. An id that is not the caller's answers
    404, one not in the trash 409, and then nothing is purged."""
    ids = await _targets(ctx)
    emptied = await ctx.run(Purger(ctx.services).empty, ctx.user_id, ids)
    return ok({"purged": emptied.purged, "bytes_freed": emptied.bytes_freed,
               "asset_ids": [str(i) for i in ids]}, f"{emptied.purged} purged")
