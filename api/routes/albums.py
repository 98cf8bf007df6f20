"""Album endpoints: list, create, show, update, delete, and the assets inside."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.envelope import ok
from api.models import AddToAlbumBody, AlbumAssets, AlbumCreateBody, AlbumDTO, AlbumPage, AlbumUpdateBody, PositionBody
from api.registry import Ctx, QueryParam, route
from domain.asset import asset_id_from
from domain.errors import NotFound


async def _album(ctx: Ctx, album_id: int) -> dict[str, Any]:
    album = await ctx.run(ctx.services.albums.get, ctx.user_id, album_id)
    if album is None:
        raise NotFound(f"album {album_id} not found")
    return album


@route("GET", "/albums", summary="The user's albums", tag="Albums", response=AlbumPage,
       query=(QueryParam("limit", "integer", "default 20, at most 100"), QueryParam("offset", "integer")))
async def list_albums(ctx: Ctx) -> web.Response:
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    albums, total = await ctx.run(ctx.services.albums.list, ctx.user_id, limit, offset)
    return ok({"albums": albums, "limit": limit, "offset": offset, "total": total})


@route("POST", "/albums", summary="Create an album", tag="Albums", body=AlbumCreateBody,
       response=AlbumDTO)
async def create_album(ctx: Ctx) -> web.Response:
    body: AlbumCreateBody = ctx.body
    album_id, position = await ctx.run(ctx.services.app.create_album, ctx.user_id, body.album_name,
                                       body.description, body.cover_asset_id)
    await ctx.settle(position)
    return ok(await _album(ctx, album_id), "album created", status=201)


@route("GET", "/albums/{id}", summary="One album", tag="Albums", response=AlbumDTO)
async def get_album(ctx: Ctx) -> web.Response:
    return ok(await _album(ctx, ctx.path_int("id")))


@route("PUT", "/albums/{id}", summary="Rename, describe or change the cover", tag="Albums",
       body=AlbumUpdateBody, response=AlbumDTO)
async def update_album(ctx: Ctx) -> web.Response:
    album_id = ctx.path_int("id")
    body: AlbumUpdateBody = ctx.body
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if "album_name" in changes and changes["album_name"] is None:
        changes.pop("album_name")  # a name cannot be cleared; null means "leave it"
    position = await ctx.run(ctx.services.app.update_album, ctx.user_id, album_id, changes)
    await ctx.settle(position)
    return ok(await _album(ctx, album_id), "album updated")


@route("DELETE", "/albums/{id}", summary="Delete an album (its assets stay)", tag="Albums")
async def delete_album(ctx: Ctx) -> web.Response:
    album_id = ctx.path_int("id")
    position = await ctx.run(ctx.services.app.delete_album, ctx.user_id, album_id)
    await ctx.settle(position)
    return ok(message=f"album {album_id} deleted")


@route("GET", "/albums/{id}/assets", summary="Assets of an album in position order",
       tag="Albums", response=AlbumAssets)
async def album_assets(ctx: Ctx) -> web.Response:
    album = await _album(ctx, ctx.path_int("id"))
    return ok({"assets": await ctx.run(ctx.services.albums.assets, album["album_id"])})


@route("POST", "/albums/{id}/assets/{assetId}", summary="Add an asset (appended unless a position is given)",
       tag="Albums", body=AddToAlbumBody)
async def add_to_album(ctx: Ctx) -> web.Response:
    album_id = ctx.path_int("id")
    asset_id = asset_id_from(ctx.request.match_info["assetId"])
    position = await ctx.run(ctx.services.app.add_to_album, ctx.user_id, album_id, asset_id,
                             ctx.body.position)
    await ctx.settle(position)
    return ok(message=f"asset {asset_id} added to album {album_id}")


@route("DELETE", "/albums/{id}/assets/{assetId}", summary="Remove an asset from an album",
       tag="Albums")
async def remove_from_album(ctx: Ctx) -> web.Response:
    album_id = ctx.path_int("id")
    asset_id = asset_id_from(ctx.request.match_info["assetId"])
    position = await ctx.run(ctx.services.app.remove_from_album, ctx.user_id, album_id, asset_id)
    await ctx.settle(position)
    return ok(message=f"asset {asset_id} removed from album {album_id}")


@route("PUT", "/albums/{id}/assets/{assetId}/position", summary="Move an asset within an album",
       tag="Albums", body=PositionBody)
async def move_in_album(ctx: Ctx) -> web.Response:
    album_id = ctx.path_int("id")
    asset_id = asset_id_from(ctx.request.match_info["assetId"])
    position = await ctx.run(ctx.services.app.move_in_album, ctx.user_id, album_id, asset_id,
                             ctx.body.position)
    await ctx.settle(position)
    return ok(message=f"asset {asset_id} moved to position {ctx.body.position}")
