"""Asset endpoints: list, upload, show, update, rate, like, describe, delete, original file."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from aiohttp import BodyPartReader, web

from api.envelope import ok
from api.files import serve_file
from api.ingest import clean_filename, ingest
from api.models import (
    AlbumList,
    AssetDTO,
    AssetPage,
    AssetTypes,
    DescriptionBody,
    LikeBody,
    MetadataBody,
    RatingAndLikeBody,
    RatingBody,
    ReprocessBody,
    ReprocessResult,
    UploadResult,
)
from api.registry import PREFIX, Ctx, QueryParam, route
from domain.asset import AssetType, asset_id_from, check_rating
from domain.errors import InvalidInput, NotFound, TooLarge
from infra.storage import StagedFile
from projections.catalog import asset_from_row

PAGE = (
    QueryParam("limit", "integer", "page size (default 20, at most 100)"),
    QueryParam("offset", "integer", "items to skip"),
)
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
ASSET_TYPES = [t.value for t in AssetType]


def _types(ctx: Ctx) -> list[str] | None:
    raw = ctx.query_str("types") or ctx.query_str("type")
    if raw is None:
        return None
    types = [t.strip().upper() for t in raw.split(",") if t.strip()]
    bad = [t for t in types if t not in ASSET_TYPES]
    if bad or not types:
        raise InvalidInput(f"unknown asset type(s) {', '.join(bad) or raw!r}; use {', '.join(ASSET_TYPES)}", "types")
    return types


async def _asset(ctx: Ctx, asset_id: UUID) -> dict[str, Any]:
    asset = await ctx.run(ctx.services.catalog.get, ctx.user_id, str(asset_id))
    if asset is None:
        raise NotFound(f"asset {asset_id} not found")
    return asset


def _asset_id(ctx: Ctx) -> UUID:
    return asset_id_from(ctx.request.match_info["id"])


# Static paths first: aiohttp matches in registration order, and /assets/{id} would take them.


@route("GET", "/assets/types", summary="Supported asset types", tag="Assets", response=AssetTypes)
async def asset_types(ctx: Ctx) -> web.Response:
    return ok({"types": ASSET_TYPES})


@route("GET", "/assets/liked", summary="The user's liked assets", tag="Assets", response=AssetPage,
       query=PAGE)
async def liked_assets(ctx: Ctx) -> web.Response:
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    assets = await ctx.run(ctx.services.catalog.list, ctx.user_id, liked=True, limit=limit, offset=offset)
    return ok({"assets": assets, "limit": limit, "offset": offset})


@route("GET", "/assets/rating/{rating}", summary="The user's assets with a given rating (0-5)",
       tag="Assets", response=AssetPage, query=PAGE)
async def assets_by_rating(ctx: Ctx) -> web.Response:
    raw = ctx.request.match_info["rating"]
    if not raw.isdigit():
        raise InvalidInput(f"rating must be an integer from 0 to 5, got {raw!r}", "rating")
    rating = check_rating(int(raw))
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    assets = await ctx.run(ctx.services.catalog.list, ctx.user_id, rating=rating, limit=limit, offset=offset)
    return ok({"assets": assets, "limit": limit, "offset": offset})


@route("GET", "/assets", summary="List assets by type(s) or owner, newest taken first",
       tag="Assets", response=AssetPage, query=(
           QueryParam("type", description="PHOTO, VIDEO, AUDIO or DOCUMENT"),
           QueryParam("types", description="comma-separated types"),
           QueryParam("owner_id", "integer", "owner (only your own assets are visible)"),
           *PAGE,
           QueryParam("sort_order", description="asc or desc (default) by taken time"),
       ))
async def list_assets(ctx: Ctx) -> web.Response:
    types = _types(ctx)
    owner = ctx.query_str("owner_id")
    if types is None and owner is None:
        raise InvalidInput("give at least one of type, types or owner_id", "type")
    owner_id = ctx.query_int("owner_id", ctx.user_id, 1) if owner is not None else ctx.user_id
    order = (ctx.query_str("sort_order") or "desc").lower()
    if order not in ("asc", "desc"):
        raise InvalidInput(f"sort_order must be asc or desc, got {order!r}", "sort_order")
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    assets: list[dict[str, Any]] = []
    if owner_id == ctx.user_id:  # another user's assets are never listed
        assets = await ctx.run(ctx.services.catalog.list, ctx.user_id, types=types, limit=limit,
                               offset=offset, descending=order == "desc")
    return ok({"assets": assets, "limit": limit, "offset": offset})


async def _file_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while True:
        chunk = await part.read_chunk(1024 * 1024)
        if not chunk:
            return
        yield chunk


@route("POST", "/assets", summary="Upload one file (multipart field 'file')", tag="Assets",
       response=UploadResult, multipart=("file", "repository_id"))
async def upload_asset(ctx: Ctx) -> web.Response:
    services = ctx.services
    request = ctx.request
    limit = services.settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise TooLarge(f"upload is larger than the limit of {limit} bytes", "file")
    if not request.content_type.startswith("multipart/"):
        raise InvalidInput("upload must be multipart/form-data with a 'file' field", "file")
    claimed_hash = request.headers.get("X-Content-Hash")
    if claimed_hash is not None and not _HEX64.match(claimed_hash.strip()):
        raise InvalidInput("X-Content-Hash must be a BLAKE3 hex digest (64 hex digits)", "X-Content-Hash")

    repository_field: str | None = None
    staged: StagedFile | None = None
    filename = "upload"
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidInput("nested multipart is not supported", "file")
            if part.name == "repository_id":
                raw = b""
                async for chunk in _file_chunks(part):
                    raw += chunk
                    if len(raw) > 1024:
                        raise InvalidInput("repository_id is too long", "repository_id")
                repository_field = raw.decode("utf-8", "replace").strip()
            elif part.name == "file":
                if staged is not None:
                    raise InvalidInput("send exactly one 'file' field; use /assets/batch for many", "file")
                filename = clean_filename(part.filename)
                staged = await services.storage.stage(_file_chunks(part), limit)
            else:
                raise InvalidInput(f"unexpected multipart field {part.name!r}", str(part.name))
        if staged is None:
            raise InvalidInput("multipart field 'file' is missing", "file")
        if claimed_hash is not None and claimed_hash.strip().lower() != staged.content_hash:
            raise InvalidInput(
                f"X-Content-Hash {claimed_hash.strip().lower()} does not match the received "
                f"content ({staged.content_hash}); the upload was corrupted or the hash is wrong",
                "X-Content-Hash",
            )
        repository_id = services.storage.repository(repository_field)
    except BaseException:
        if staged is not None:
            services.storage.discard(staged)
        raise
    data = await ingest(ctx, staged, filename, repository_id)
    duplicate = data.pop("duplicate")
    return ok(data, data["status"], status=200 if duplicate else 201)


@route("GET", "/assets/{id}", summary="One asset, with optional parts", tag="Assets",
       response=AssetDTO, query=(
           QueryParam("include_thumbnails", "boolean", "thumbnail sizes and URLs (default true)"),
           QueryParam("include_albums", "boolean", "albums containing the asset (default true)"),
           QueryParam("include_species", "boolean", "zero-shot species, top-k (default true)"),
           QueryParam("include_ocr", "boolean", "text found in the image, with boxes (default false)"),
           QueryParam("include_faces", "boolean", "faces with boxes and people (default false)"),
           QueryParam("include_ai_descriptions", "boolean", "the AI caption (default false)"),
       ))
async def get_asset(ctx: Ctx) -> web.Response:
    asset_id = _asset_id(ctx)
    include_thumbnails = ctx.query_bool("include_thumbnails", True)
    include_albums = ctx.query_bool("include_albums", True)
    row = await ctx.run(ctx.services.catalog.row, ctx.user_id, str(asset_id))
    if row is None:
        raise NotFound(f"asset {asset_id} not found")
    asset = asset_from_row(row)
    if include_thumbnails:
        thumbnails = json.loads(row["thumbnails"])
        asset["thumbnails"] = {
            size: {"url": f"{PREFIX}/assets/{asset_id}/thumbnail?size={size}",
                   "width": t.get("width"), "height": t.get("height"), "mime_type": t.get("mime_type")}
            for size, t in thumbnails.items()
        }
    web_versions = json.loads(row["web"])
    if "web_video" in web_versions:
        asset["web_video_url"] = f"{PREFIX}/assets/{asset_id}/video/web"
    if "web_audio" in web_versions:
        asset["web_audio_url"] = f"{PREFIX}/assets/{asset_id}/audio/web"
    if include_albums:
        asset["albums"] = await ctx.run(ctx.services.albums.containing, ctx.user_id, asset["asset_id"])
    await _enrichments(ctx, row, asset)
    return ok(asset)


# include_* parameter -> (part of the response, part in the catalog's enrichments, ML task)
_ML_PARTS = (
    ("include_species", True, "species", "species", "process_species"),
    ("include_ocr", False, "ocr", "ocr", "process_ocr"),
    ("include_faces", False, "faces", "faces", "process_face"),
    ("include_ai_descriptions", False, "ai_descriptions", "caption", "process_caption"),
)


async def _enrichments(ctx: Ctx, row: dict[str, Any], asset: dict[str, Any]) -> None:
    """The ML parts asked for: the latest result, `{skipped: why}` when the task ran without a
    model, or null when there is nothing (yet)."""
    enrichments = json.loads(row["enrichments"]) if isinstance(row["enrichments"], str) else row["enrichments"]
    skipped = enrichments.get("skipped", {})
    for param, default, key, part, task in _ML_PARTS:
        if not ctx.query_bool(param, default):
            continue
        value = enrichments.get(part)
        if value is None:
            asset[key] = {"skipped": skipped[task]} if task in skipped else None
            continue
        value = dict(value)
        if part == "faces":
            from projections.people import People

            value["faces"] = await ctx.run(People(ctx.services.db).faces_of, ctx.user_id, row["asset_id"])
        asset[key] = value


async def _changed(ctx: Ctx, asset_id: UUID, position: int) -> web.Response:
    await ctx.settle(position)
    return ok(await _asset(ctx, asset_id), "updated")


@route("PUT", "/assets/{id}", summary="Update type-specific metadata", tag="Assets",
       body=MetadataBody, response=AssetDTO)
async def update_asset(ctx: Ctx) -> web.Response:
    asset_id = _asset_id(ctx)
    position = await ctx.run(ctx.services.app.update_metadata, ctx.user_id, asset_id,
                             ctx.body.specific_metadata)
    return await _changed(ctx, asset_id, position)


@route("DELETE", "/assets/{id}", summary="Soft-delete an asset (the file is kept)", tag="Assets")
async def delete_asset(ctx: Ctx) -> web.Response:
    asset_id = _asset_id(ctx)
    albums = await ctx.run(ctx.services.albums.containing, ctx.user_id, str(asset_id))
    position = await ctx.run(ctx.services.app.delete_asset, ctx.user_id, asset_id,
                             [a["album_id"] for a in albums])
    await ctx.settle(position)
    return ok(message=f"asset {asset_id} deleted")


@route("GET", "/assets/{id}/original", summary="The original file (Range, ETag)", tag="Assets",
       binary="application/octet-stream")
async def original(ctx: Ctx) -> web.StreamResponse:
    row = await ctx.run(ctx.services.catalog.row, ctx.user_id, str(_asset_id(ctx)))
    if row is None:
        raise NotFound(f"asset {ctx.request.match_info['id']} not found")
    path = ctx.services.storage.path_of(row["repository_id"], row["storage_path"])
    return await serve_file(ctx.request, path, row["mime_type"], row["hash"], row["original_filename"])


THUMBNAIL_SIZES = ("small", "medium", "large")


@route("GET", "/assets/{id}/thumbnail", summary="A thumbnail (WebP)", tag="Assets",
       binary="image/webp", query=(QueryParam("size", description="small, medium (default) or large"),))
async def thumbnail(ctx: Ctx) -> web.StreamResponse:
    size = ctx.query_str("size") or "medium"
    if size not in THUMBNAIL_SIZES:
        raise InvalidInput(f"size must be one of {', '.join(THUMBNAIL_SIZES)}", "size")
    row = await ctx.run(ctx.services.catalog.row, ctx.user_id, str(_asset_id(ctx)))
    if row is None:
        raise NotFound(f"asset {ctx.request.match_info['id']} not found")
    info = json.loads(row["thumbnails"]).get(size)
    if info is None:
        raise NotFound(f"asset {row['asset_id']} has no {size} thumbnail (status: {json.loads(row['status'])['state']})")
    path = ctx.services.settings.data_dir / "derived" / info["path"]
    return await serve_file(ctx.request, path, info.get("mime_type", "image/webp"), f"{row['hash']}-{size}")


async def _web_version(ctx: Ctx, kind: str) -> web.StreamResponse:
    row = await ctx.run(ctx.services.catalog.row, ctx.user_id, str(_asset_id(ctx)))
    if row is None:
        raise NotFound(f"asset {ctx.request.match_info['id']} not found")
    wanted = "VIDEO" if kind == "web_video" else "AUDIO"
    if row["type"] != wanted:
        raise NotFound(f"asset {row['asset_id']} is a {row['type']}, not a {wanted}")
    info = json.loads(row["web"]).get(kind)
    if info is None:
        status = json.loads(row["status"])
        if status["tasks"].get("transcode_asset") == "completed":
            # Already playable in a browser: the original is the web version.
            path = ctx.services.storage.path_of(row["repository_id"], row["storage_path"])
            return await serve_file(ctx.request, path, row["mime_type"], row["hash"])
        raise NotFound(f"asset {row['asset_id']} has no web version yet (status: {status['state']})")
    path = ctx.services.settings.data_dir / "derived" / info["path"]
    return await serve_file(ctx.request, path, info["mime_type"], f"{row['hash']}-{kind}")


@route("GET", "/assets/{id}/video/web", summary="Browser-playable MP4 (Range, ETag)", tag="Assets",
       binary="video/mp4")
async def web_video(ctx: Ctx) -> web.StreamResponse:
    return await _web_version(ctx, "web_video")


@route("GET", "/assets/{id}/audio/web", summary="Browser-playable audio (Range, ETag)", tag="Assets",
       binary="audio/mp4")
async def web_audio(ctx: Ctx) -> web.StreamResponse:
    return await _web_version(ctx, "web_audio")


@route("POST", "/assets/{id}/reprocess", summary="Queue processing tasks again", tag="Assets",
       body=ReprocessBody, response=ReprocessResult)
async def reprocess(ctx: Ctx) -> web.Response:
    asset_id = _asset_id(ctx)
    body: ReprocessBody = ctx.body
    queued, failed, position = await ctx.run(
        ctx.services.app.reprocess, ctx.user_id, asset_id, body.tasks, body.force_full_retry
    )
    await ctx.settle(position)
    message = (f"queued {', '.join(queued)}" if queued else "nothing to reprocess: no task has failed")
    return ok({"asset_id": str(asset_id), "status": "queued" if queued else "unchanged",
               "message": message, "retry_tasks": queued, "failed_tasks": failed}, message)


@route("PUT", "/assets/{id}/description", summary="Set the description", tag="Assets",
       body=DescriptionBody, response=AssetDTO)
async def describe(ctx: Ctx) -> web.Response:
    asset_id = _asset_id(ctx)
    position = await ctx.run(ctx.services.app.describe, ctx.user_id, asset_id, ctx.body.description)
    return await _changed(ctx, asset_id, position)


@route("PUT", "/assets/{id}/like", summary="Like or unlike", tag="Assets", body=LikeBody,
       response=AssetDTO)
async def like(ctx: Ctx) -> web.Response:
    asset_id = _asset_id(ctx)
    position = await ctx.run(ctx.services.app.like, ctx.user_id, asset_id, ctx.body.liked)
    return await _changed(ctx, asset_id, position)


@route("PUT", "/assets/{id}/rating", summary="Rate from 0 to 5", tag="Assets", body=RatingBody,
       response=AssetDTO)
async def rate(ctx: Ctx) -> web.Response:
    asset_id = _asset_id(ctx)
    position = await ctx.run(ctx.services.app.rate, ctx.user_id, asset_id, ctx.body.rating)
    return await _changed(ctx, asset_id, position)


@route("PUT", "/assets/{id}/rating-and-like", summary="Rate and like in one change",
       tag="Assets", body=RatingAndLikeBody, response=AssetDTO)
async def rate_and_like(ctx: Ctx) -> web.Response:
    asset_id = _asset_id(ctx)
    position = await ctx.run(ctx.services.app.rate_and_like, ctx.user_id, asset_id,
                             ctx.body.rating, ctx.body.liked)
    return await _changed(ctx, asset_id, position)


@route("GET", "/assets/{id}/albums", summary="Albums that contain the asset", tag="Assets",
       response=AlbumList)
async def albums_of_asset(ctx: Ctx) -> web.Response:
    asset = await _asset(ctx, _asset_id(ctx))
    albums = await ctx.run(ctx.services.albums.containing, ctx.user_id, asset["asset_id"])
    return ok({"albums": albums})


@route("POST", "/assets/{id}/albums/{albumId}", summary="Add the asset to an album",
       tag="Assets")
async def add_asset_to_album(ctx: Ctx) -> web.Response:
    asset_id = _asset_id(ctx)
    album_id = ctx.path_int("albumId")
    position = await ctx.run(ctx.services.app.add_to_album, ctx.user_id, album_id, asset_id)
    await ctx.settle(position)
    return ok(message=f"asset {asset_id} added to album {album_id}")
