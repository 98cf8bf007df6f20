"""Album endpoints: list, create, show, update, delete, and the assets inside."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.envelope import ok
from api.models import AddToAlbumBody, AlbumAssets, AlbumCreateBody, AlbumDTO, AlbumPage, AlbumUpdateBody, PositionBody
from api.registry import Ctx, Link, QueryParam, asset_id_param, page_params, positive_id_param, route
from domain.asset import asset_id_from
from domain.errors import NotFound
from projections.access import SCOPES, Access
from projections.base import ts


async def _album(ctx: Ctx, album_id: int) -> dict[str, Any]:
    album = await ctx.run(Access(ctx.services.db).album, ctx.user_id, album_id)  # owned or shared
    if album is None:
        raise NotFound(f"album {album_id} not found")
    return album


ALBUM_ID = positive_id_param("id", "an album")
ASSET_ID = asset_id_param("assetId")
_USES_ALBUM_ID = ("getAlbum", "updateAlbum", "deleteAlbum", "listAlbumAssets", "addAssetToAlbum")


@route("GET", "/albums", operation_id="listAlbums", summary="The user's albums", tag="Albums",
       response=AlbumPage, params=(*page_params(), QueryParam(
           "scope", description="owned: the caller's albums; shared: albums others share with the "
           "caller; all: both", enum=SCOPES, default="owned")))
async def list_albums(ctx: Ctx) -> web.Response:
    """The user's albums (with `scope`, also or only those shared with them, each naming its
    `owner_id` and the caller's `role`), oldest first, a page at a time, with the total count."""
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    scope = ctx.query_str("scope") or "owned"
    albums, total = await ctx.run(Access(ctx.services.db).albums, ctx.user_id, scope, limit, offset)
    return ok({"albums": albums, "limit": limit, "offset": offset, "total": total})


@route("POST", "/albums", operation_id="createAlbum", summary="Create an album", tag="Albums",
       body=AlbumCreateBody, response=AlbumDTO, status=201,
       links=tuple(Link(op, "id", "$response.body#/data/album_id") for op in _USES_ALBUM_ID))
async def create_album(ctx: Ctx) -> web.Response:
    """Creates an empty album owned by the caller. A cover asset, when given, must be one of the
    caller's assets (400 otherwise). Answers 201 with the album."""
    body: AlbumCreateBody = ctx.body
    album_id, position = await ctx.run(ctx.services.app.create_album, ctx.user_id, body.album_name,
                                       body.description, body.cover_asset_id)
    await ctx.settle(position)
    album = await ctx.run(ctx.services.albums.get, ctx.user_id, album_id)
    if album is None:  # committed, but the read model lags or fails: answer from the aggregate
        album = await ctx.run(_from_aggregate, ctx, album_id)
    return ok(album, "album created", status=201)


def _from_aggregate(ctx: Ctx, album_id: int) -> dict[str, Any]:
    album = ctx.services.app.get_album_for(ctx.user_id, album_id)
    return {"album_id": album.album_id, "user_id": album.user_id, "album_name": album.album_name,
            "description": album.description, "cover_asset_id": album.cover_asset_id,
            "asset_count": 0, "created_at": ts(album.created_at), "updated_at": ts(album.updated_at)}


@route("GET", "/albums/{id}", operation_id="getAlbum", summary="One album", tag="Albums",
       response=AlbumDTO, params=(ALBUM_ID,))
async def get_album(ctx: Ctx) -> web.Response:
    """One of the caller's albums, or one shared with them (then with `owner_id` and `role`);
    any other album is not found (404)."""
    return ok(await _album(ctx, ctx.path_int("id")))


@route("PUT", "/albums/{id}", operation_id="updateAlbum", summary="Rename, describe or change the cover",
       tag="Albums", body=AlbumUpdateBody, response=AlbumDTO, params=(ALBUM_ID,), also=(409,))
async def update_album(ctx: Ctx) -> web.Response:
    """Changes only the fields sent; `null` clears the description or the cover (a name cannot be
    cleared). Answers the updated album."""
    album_id = ctx.path_int("id")
    body: AlbumUpdateBody = ctx.body
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if "album_name" in changes and changes["album_name"] is None:
        changes.pop("album_name")  # a name cannot be cleared; null means "leave it"
    position = await ctx.run(ctx.services.app.update_album, ctx.user_id, album_id, changes)
    await ctx.settle(position)
    return ok(await _album(ctx, album_id), "album updated")


@route("DELETE", "/albums/{id}", operation_id="deleteAlbum", summary="Delete an album (its assets stay)",
       tag="Albums", params=(ALBUM_ID,), also=(409,))
async def delete_album(ctx: Ctx) -> web.Response:
    """Deletes the album; its assets are not touched."""
    album_id = ctx.path_int("id")
    position = await ctx.run(ctx.services.app.delete_album, ctx.user_id, album_id)
    await ctx.settle(position)
    return ok(message=f"album {album_id} deleted")


@route("GET", "/albums/{id}/assets", operation_id="listAlbumAssets",
       summary="Assets of an album in position order", tag="Albums", response=AlbumAssets,
       params=(ALBUM_ID,))
async def album_assets(ctx: Ctx) -> web.Response:
    """Every asset of the album, in position order (positions are 0..n-1)."""
    album = await _album(ctx, ctx.path_int("id"))
    return ok({"assets": await ctx.run(ctx.services.albums.assets, album["album_id"])})


@route("POST", "/albums/{id}/assets/{assetId}", operation_id="addAssetToAlbum",
       summary="Add an asset (appended unless a position is given)", tag="Albums", body=AddToAlbumBody,
       params=(ALBUM_ID, ASSET_ID), also=(403, 409))
async def add_to_album(ctx: Ctx) -> web.Response:
    """Adds one of the caller's assets to the album, at the end or at `position` (the others
    shift): the album's owner, or an editor it is shared with (a viewer gets 403). Adding an
    asset already in the album answers 409."""
    album_id = ctx.path_int("id")
    asset_id = asset_id_from(ctx.request.match_info["assetId"])
    position = await ctx.run(ctx.services.app.add_to_album, ctx.user_id, album_id, asset_id,
                             ctx.body.position)
    await ctx.settle(position)
    return ok(message=f"asset {asset_id} added to album {album_id}")


@route("DELETE", "/albums/{id}/assets/{assetId}", operation_id="removeAssetFromAlbum",
       summary="Remove an asset from an album", tag="Albums", params=(ALBUM_ID, ASSET_ID), also=(403, 409))
async def remove_from_album(ctx: Ctx) -> web.Response:
    """Removes the asset from the album (the asset itself stays); the positions close up. The
    owner removes any asset; an editor only the assets they own (403 otherwise)."""
    album_id = ctx.path_int("id")
    asset_id = asset_id_from(ctx.request.match_info["assetId"])
    position = await ctx.run(ctx.services.app.remove_from_album, ctx.user_id, album_id, asset_id)
    await ctx.settle(position)
    return ok(message=f"asset {asset_id} removed from album {album_id}")


@route("PUT", "/albums/{id}/assets/{assetId}/position", operation_id="moveAssetInAlbum",
       summary="Move an asset within an album", tag="Albums", body=PositionBody,
       params=(ALBUM_ID, ASSET_ID), also=(409,))
async def move_in_album(ctx: Ctx) -> web.Response:
    """Moves the asset to `position`; the others shift so positions stay 0..n-1."""
    album_id = ctx.path_int("id")
    asset_id = asset_id_from(ctx.request.match_info["assetId"])
    position = await ctx.run(ctx.services.app.move_in_album, ctx.user_id, album_id, asset_id,
                             ctx.body.position)
    await ctx.settle(position)
    return ok(message=f"asset {asset_id} moved to position {ctx.body.position}")
