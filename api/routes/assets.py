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
from api.ingest import clean_filename, ingest, next_part
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
    UploadForm,
    UploadResult,
)
from api.registry import (
    PREFIX,
    Ctx,
    Link,
    Param,
    PathParam,
    QueryParam,
    asset_id_param,
    page_params,
    parse_int,
    positive_id_param,
    route,
)
from domain.asset import AssetType, asset_id_from, check_rating
from domain.errors import InvalidInput, NotFound, TooLarge
from infra.storage import StagedFile
from projections.access import Access, library_part
from projections.catalog import asset_from_row
from projections.stacks import Stacks

PAGE = page_params()
ASSET_ID = asset_id_param()
_TYPES_LIST = "(PHOTO|VIDEO|AUDIO|DOCUMENT)"
# What the new id of an upload is good for, as OpenAPI links.
_USES_ASSET_ID = ("getAsset", "downloadOriginal", "getThumbnail", "rateAsset", "likeAsset",
                  "describeAsset", "deleteAsset", "listAssetAlbums")
UPLOAD_LINKS = tuple(Link(op, "id", "$response.body#/data/asset_id") for op in _USES_ASSET_ID)
# Media types of the files served: originals are whatever was uploaded (photos, RAW, videos,
# audio, PDFs); web versions are MP4/AAC, or the original when a browser plays it as it is.
ORIGINAL_TYPES = ("image/*", "video/*", "audio/*", "application/pdf")
WEB_VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/3gpp", "video/webm")
THUMBNAIL_SIZES = ("small", "medium", "large")
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
    asset = await ctx.run(Access(ctx.services.db).asset, ctx.user_id, str(asset_id))
    if asset is None:
        raise NotFound(f"asset {asset_id} not found")
    return asset


def _asset_id(ctx: Ctx) -> UUID:
    return asset_id_from(ctx.request.match_info["id"])


# Static paths first: aiohttp matches in registration order, and /assets/{id} would take them.


@route("GET", "/assets/types", operation_id="listAssetTypes", summary="Supported asset types",
       tag="Assets", response=AssetTypes)
async def asset_types(ctx: Ctx) -> web.Response:
    """The asset types the server knows: PHOTO, VIDEO, AUDIO and DOCUMENT."""
    return ok({"types": ASSET_TYPES})


@route("GET", "/assets/liked", operation_id="listLikedAssets", summary="The user's liked assets",
       tag="Assets", response=AssetPage, params=PAGE)
async def liked_assets(ctx: Ctx) -> web.Response:
    """The caller's liked assets, newest taken first, a page at a time."""
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    assets = await ctx.run(ctx.services.catalog.list, ctx.user_id, liked=True, limit=limit, offset=offset)
    return ok({"assets": assets, "limit": limit, "offset": offset})


@route("GET", "/assets/rating/{rating}", operation_id="listAssetsByRating",
       summary="The user's assets with a given rating (0-5)", tag="Assets", response=AssetPage,
       params=(PathParam("rating", "integer", "the rating, 0 to 5", minimum=0, maximum=5, example=5), *PAGE))
async def assets_by_rating(ctx: Ctx) -> web.Response:
    """The caller's assets rated exactly `rating`, newest taken first, a page at a time."""
    rating = check_rating(parse_int(ctx.request.match_info["rating"], "rating"))
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    assets = await ctx.run(ctx.services.catalog.list, ctx.user_id, rating=rating, limit=limit, offset=offset)
    return ok({"assets": assets, "limit": limit, "offset": offset})


@route("GET", "/assets", operation_id="listAssets",
       summary="List assets by type(s) or owner, newest taken first", tag="Assets", response=AssetPage,
       params=(
           QueryParam("type", description="one type (any letter case)", enum=tuple(ASSET_TYPES), any_case=True, example="PHOTO"),
           QueryParam("types", description="a comma-separated list of types (any letter case); wins over `type`",
                      pattern=f"^{_TYPES_LIST}(,{_TYPES_LIST})*$", max_length=200, example="PHOTO,VIDEO"),
           QueryParam("owner_id", "integer", "an owner: only your own id lists anything", minimum=1),
           *PAGE,
           QueryParam("sort_order", description="by taken time (any letter case)", enum=("asc", "desc"),
                      any_case=True, default="desc"),
       ))
async def list_assets(ctx: Ctx) -> web.Response:
    """The caller's assets of the given type(s), by taken time. At least one of `type`, `types`
    or `owner_id` is required (400 otherwise); another user's id lists nothing."""
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


@route("POST", "/assets", operation_id="uploadAsset", summary="Upload one file (multipart field 'file')",
       tag="Assets", response=UploadResult, multipart=UploadForm, status=201, ok_also=(200,),
       also=(409, 415), links=UPLOAD_LINKS, params=(
           Param("X-Content-Hash", description="the BLAKE3 hex digest the file must have (400 when it "
                 "does not)", where="header", pattern="^[0-9a-fA-F]{64}$"),
       ))
async def upload_asset(ctx: Ctx) -> web.Response:
    """Stores the file, creates the asset and queues its processing: 201 with the new asset's id.
    Content the caller already has answers 200 with `status: "duplicate"` and the existing id.
    Photos, videos, audio files and PDFs are accepted (415 otherwise)."""
    services = ctx.services
    request = ctx.request
    limit = services.settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise TooLarge(f"upload is larger than the limit of {limit} bytes", "file")
    # The quota is checked before a byte is stored: by the declared length, then while staging.
    left = await ctx.run(services.users.quota_left, ctx.user_id)
    if left is not None:
        if request.content_length is not None and request.content_length > left + 64 * 1024:
            raise TooLarge(f"upload would pass your quota ({left} bytes left)", "file")
        limit = min(limit, left)
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
        while (part := await next_part(reader)) is not None:
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


@route("GET", "/assets/{id}", operation_id="getAsset", summary="One asset, with optional parts",
       tag="Assets", response=AssetDTO, params=(
           ASSET_ID,
           QueryParam("include_thumbnails", "boolean", "thumbnail sizes and URLs", default=True),
           QueryParam("include_albums", "boolean", "albums containing the asset", default=True),
           QueryParam("include_species", "boolean", "zero-shot species, top-k", default=True),
           QueryParam("include_ocr", "boolean", "text found in the image, with boxes", default=False),
           QueryParam("include_faces", "boolean", "faces with boxes and people", default=False),
           QueryParam("include_ai_descriptions", "boolean", "the AI caption", default=False),
           QueryParam("include_tags", "boolean", "labels with scores (the label model's top classes)",
                      default=False),
       ))
async def get_asset(ctx: Ctx) -> web.Response:
    """One of the caller's assets (a deleted one too, with `is_deleted`), with the parts asked for.
    An ML part is null until its task has a result, or `{skipped: why}` when it ran without a model."""
    asset_id = _asset_id(ctx)
    include_thumbnails = ctx.query_bool("include_thumbnails", True)
    include_albums = ctx.query_bool("include_albums", True)
    row = await ctx.run(Access(ctx.services.db).asset_row, ctx.user_id, str(asset_id))
    if row is None:
        raise NotFound(f"asset {asset_id} not found")
    asset = {**asset_from_row(row), **library_part(row)}
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
        asset["albums"] = await ctx.run(Access(ctx.services.db).albums_containing, ctx.user_id, asset["asset_id"])
    await _enrichments(ctx, row, asset)
    asset["stack"] = await ctx.run(Stacks(ctx.services.db).of_asset, ctx.user_id, asset["asset_id"])
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
    model, or null when there is nothing (yet). Tags are a plain list ([] before any)."""
    enrichments = json.loads(row["enrichments"]) if isinstance(row["enrichments"], str) else row["enrichments"]
    if ctx.query_bool("include_tags", False):
        tags = enrichments.get("tags") or {}
        asset["tags"] = [{"label": t["label"], "score": t["score"], "source": tags["model"]}
                         for t in tags.get("labels", [])]
    skipped = enrichments.get("skipped", {})
    for param, default, key, part, task in _ML_PARTS:
        if not ctx.query_bool(param, default):
            continue
        value = enrichments.get(part)
        if value is None:
            asset[key] = {"skipped": skipped[task]} if task in skipped else None
            continue
        value = dict(value)
        if part == "species":
            from processors.ml import BUILTIN_LABELS

            value["source"] = "label-classes" if value.get("model") == BUILTIN_LABELS else "zero-shot"
        if part == "faces":
            from projections.people import People

            value["faces"] = await ctx.run(People(ctx.services.db).faces_of, ctx.user_id, row["asset_id"])
        asset[key] = value


async def _changed(ctx: Ctx, asset_id: UUID, position: int) -> web.Response:
    await ctx.settle(position)
    return ok(await _asset(ctx, asset_id), "updated")


@route("PUT", "/assets/{id}", operation_id="updateAssetMetadata", summary="Update type-specific metadata",
       tag="Assets", body=MetadataBody, response=AssetDTO, params=(ASSET_ID,), also=(409,))
async def update_asset(ctx: Ctx) -> web.Response:
    """Merges the given `specific_metadata` fields into the asset's (a null value removes one).
    A deleted asset takes no change (409)."""
    asset_id = _asset_id(ctx)
    position = await ctx.run(ctx.services.app.update_metadata, ctx.user_id, asset_id,
                             ctx.body.specific_metadata)
    return await _changed(ctx, asset_id, position)


@route("DELETE", "/assets/{id}", operation_id="deleteAsset", summary="Soft-delete an asset (the file is kept)",
       tag="Assets", params=(ASSET_ID,), also=(409,))
async def delete_asset(ctx: Ctx) -> web.Response:
    """Hides the asset from listings and removes it from its albums; the file is kept and the
    asset stays readable by id with `is_deleted: true`."""
    asset_id = _asset_id(ctx)
    albums = await ctx.run(ctx.services.albums.containing, ctx.user_id, str(asset_id))
    position = await ctx.run(ctx.services.app.delete_asset, ctx.user_id, asset_id,
                             [a["album_id"] for a in albums])
    await ctx.settle(position)
    return ok(message=f"asset {asset_id} deleted")


@route("GET", "/assets/{id}/original", operation_id="downloadOriginal", summary="The original file (Range, ETag)",
       tag="Assets", binary=ORIGINAL_TYPES, params=(ASSET_ID,))
async def original(ctx: Ctx) -> web.StreamResponse:
    """The uploaded file byte for byte, with its own media type. Honours `Range` (206) and
    `If-None-Match` (304)."""
    row = await ctx.run(Access(ctx.services.db).asset_row, ctx.user_id, str(_asset_id(ctx)))
    if row is None:
        raise NotFound(f"asset {ctx.request.match_info['id']} not found")
    path = ctx.services.storage.path_of(row["repository_id"], row["storage_path"])
    return await serve_file(ctx.request, path, row["mime_type"], row["hash"], row["original_filename"])


@route("GET", "/assets/{id}/thumbnail", operation_id="getThumbnail", summary="A thumbnail (WebP)",
       tag="Assets", binary=("image/webp",), params=(
           ASSET_ID,
           QueryParam("size", description="small (256 px), medium (1024 px) or large (2048 px)",
                      enum=THUMBNAIL_SIZES, default="medium"),
       ))
async def thumbnail(ctx: Ctx) -> web.StreamResponse:
    """A WebP thumbnail, once the thumbnail task has made it (404 before, or when the file has no
    picture)."""
    size = ctx.query_str("size") or "medium"
    if size not in THUMBNAIL_SIZES:
        raise InvalidInput(f"size must be one of {', '.join(THUMBNAIL_SIZES)}", "size")
    row = await ctx.run(Access(ctx.services.db).asset_row, ctx.user_id, str(_asset_id(ctx)))
    if row is None:
        raise NotFound(f"asset {ctx.request.match_info['id']} not found")
    info = json.loads(row["thumbnails"]).get(size)
    if info is None:
        raise NotFound(f"asset {row['asset_id']} has no {size} thumbnail (status: {json.loads(row['status'])['state']})")
    path = ctx.services.settings.data_dir / "derived" / info["path"]
    return await serve_file(ctx.request, path, info.get("mime_type", "image/webp"), f"{row['hash']}-{size}",
                            derived=True)


async def _web_version(ctx: Ctx, kind: str) -> web.StreamResponse:
    row = await ctx.run(Access(ctx.services.db).asset_row, ctx.user_id, str(_asset_id(ctx)))
    if row is None:
        raise NotFound(f"asset {ctx.request.match_info['id']} not found")
    wanted = "VIDEO" if kind == "web_video" else "AUDIO"
    if row["type"] != wanted:
        raise NotFound(f"asset {row['asset_id']} is a {row['type']}, not a {wanted}")
    info = json.loads(row["web"]).get(kind)
    if info is None:
        status = json.loads(row["status"])
        if status["tasks"].get("transcode_asset") == "completed":
            # Already playable in a browser: the original is the web version. A video is then
            # H.264/AAC in the ISO-BMFF family (MP4 or MOV): served as the MP4 the contract says.
            path = ctx.services.storage.path_of(row["repository_id"], row["storage_path"])
            media_type = "video/mp4" if kind == "web_video" else row["mime_type"]
            return await serve_file(ctx.request, path, media_type, row["hash"])
        raise NotFound(f"asset {row['asset_id']} has no web version yet (status: {status['state']})")
    path = ctx.services.settings.data_dir / "derived" / info["path"]
    return await serve_file(ctx.request, path, info["mime_type"], f"{row['hash']}-{kind}", derived=True)


@route("GET", "/assets/{id}/video/web", operation_id="getWebVideo", summary="Browser-playable video (Range, ETag)",
       tag="Assets", binary=WEB_VIDEO_TYPES, params=(ASSET_ID,))
async def web_video(ctx: Ctx) -> web.StreamResponse:
    """An H.264/AAC MP4 made for browsers, or the original when browsers play it as it is.
    404 for other asset types and before the transcode task is done."""
    return await _web_version(ctx, "web_video")


@route("GET", "/assets/{id}/audio/web", operation_id="getWebAudio", summary="Browser-playable audio (Range, ETag)",
       tag="Assets", binary=("audio/*",), params=(ASSET_ID,))
async def web_audio(ctx: Ctx) -> web.StreamResponse:
    """AAC in MP4 made for browsers, or the original when browsers play it as it is.
    404 for other asset types and before the transcode task is done."""
    return await _web_version(ctx, "web_audio")


@route("POST", "/assets/{id}/reprocess", operation_id="reprocessAsset", summary="Queue processing tasks again",
       tag="Assets", body=ReprocessBody, response=ReprocessResult, params=(ASSET_ID,), also=(409,))
async def reprocess(ctx: Ctx) -> web.Response:
    """Queues the named tasks again; with none, every failed task; with `force_full_retry`,
    every task. `status` is `unchanged` when there was nothing to do."""
    asset_id = _asset_id(ctx)
    body: ReprocessBody = ctx.body
    queued, failed, position = await ctx.run(
        ctx.services.app.reprocess, ctx.user_id, asset_id, body.tasks, body.force_full_retry
    )
    await ctx.settle(position)
    message = (f"queued {', '.join(queued)}" if queued else "nothing to reprocess: no task has failed")
    return ok({"asset_id": str(asset_id), "status": "queued" if queued else "unchanged",
               "message": message, "retry_tasks": queued, "failed_tasks": failed}, message)


@route("PUT", "/assets/{id}/description", operation_id="describeAsset", summary="Set the description",
       tag="Assets", body=DescriptionBody, response=AssetDTO, params=(ASSET_ID,), also=(409,))
async def describe(ctx: Ctx) -> web.Response:
    """Sets (or, with null, clears) the asset's description; answers the updated asset."""
    asset_id = _asset_id(ctx)
    position = await ctx.run(ctx.services.app.describe, ctx.user_id, asset_id, ctx.body.description)
    return await _changed(ctx, asset_id, position)


@route("PUT", "/assets/{id}/like", operation_id="likeAsset", summary="Like or unlike", tag="Assets",
       body=LikeBody, response=AssetDTO, params=(ASSET_ID,), also=(409,))
async def like(ctx: Ctx) -> web.Response:
    """Likes or unlikes the asset; answers the updated asset."""
    asset_id = _asset_id(ctx)
    position = await ctx.run(ctx.services.app.like, ctx.user_id, asset_id, ctx.body.liked)
    return await _changed(ctx, asset_id, position)


@route("PUT", "/assets/{id}/rating", operation_id="rateAsset", summary="Rate from 0 to 5", tag="Assets",
       body=RatingBody, response=AssetDTO, params=(ASSET_ID,), also=(409,))
async def rate(ctx: Ctx) -> web.Response:
    """Sets the rating (0 to 5); answers the updated asset."""
    asset_id = _asset_id(ctx)
    position = await ctx.run(ctx.services.app.rate, ctx.user_id, asset_id, ctx.body.rating)
    return await _changed(ctx, asset_id, position)


@route("PUT", "/assets/{id}/rating-and-like", operation_id="rateAndLikeAsset",
       summary="Rate and like in one change", tag="Assets", body=RatingAndLikeBody, response=AssetDTO,
       params=(ASSET_ID,), also=(409,))
async def rate_and_like(ctx: Ctx) -> web.Response:
    """Sets the rating and the like in one change; answers the updated asset."""
    asset_id = _asset_id(ctx)
    position = await ctx.run(ctx.services.app.rate_and_like, ctx.user_id, asset_id,
                             ctx.body.rating, ctx.body.liked)
    return await _changed(ctx, asset_id, position)


@route("GET", "/assets/{id}/albums", operation_id="listAssetAlbums", summary="Albums that contain the asset",
       tag="Assets", response=AlbumList, params=(ASSET_ID,))
async def albums_of_asset(ctx: Ctx) -> web.Response:
    """The caller's albums that contain the asset."""
    asset = await _asset(ctx, _asset_id(ctx))
    albums = await ctx.run(Access(ctx.services.db).albums_containing, ctx.user_id, asset["asset_id"])
    return ok({"albums": albums})


@route("POST", "/assets/{id}/albums/{albumId}", operation_id="addToAlbum", summary="Add the asset to an album",
       tag="Assets", params=(ASSET_ID, positive_id_param("albumId", "an album")), also=(403, 409))
async def add_asset_to_album(ctx: Ctx) -> web.Response:
    """Appends the asset to one of the caller's albums (as `addAssetToAlbum` does)."""
    asset_id = _asset_id(ctx)
    album_id = ctx.path_int("albumId")
    position = await ctx.run(ctx.services.app.add_to_album, ctx.user_id, album_id, asset_id)
    await ctx.settle(position)
    return ok(message=f"asset {asset_id} added to album {album_id}")
