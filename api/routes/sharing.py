"""Sharing endpoints: album members with roles, public links, and the public routes under /s/{key}.

Who may see what is decided in `projections.access` (reads) and `commands.sharing` (changes).
Public routes need no token: the key is the credential. A key is 43 characters of
`secrets.token_urlsafe(32)` (256 bits), shown once to its creator; only its SHA-256 is stored.
An expired, revoked or unknown key, a wrong password and an asset outside the link all answer
404; a link with a password and none given answers 401, too many wrong passwords 429.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import weakref
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from limits import parse, storage, strategies
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from api.envelope import fail, ok
from api.files import serve_file
from api.models import (
    EXAMPLE_ASSET_ID,
    EXAMPLE_TIME,
    AlbumDTO,
    Body,
    UuidStr,
    body_examples,
    examples,
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
    positive_id_param,
    route,
)
from domain.errors import Forbidden, NotFound, Unauthorized
from domain.share import MAX_LINK_ASSETS
from infra.bootstrap import Services
from projections.access import Access
from projections.queries import rfc3339
from projections.sharing import SharedLinks

ALBUM_ID = positive_id_param("id", "an album")
USER_ID = positive_id_param("userId", "a member's user")
LINK_ID = positive_id_param("id", "a shared link")
KEY = PathParam("key", description="the link's key, as given when the link was created",
                pattern="^[A-Za-z0-9_-]{20,200}$", example="q8Vx3J7m2N0rT5yZb1LcWd9Fh4Kp6Sa8Ue2Go0Ij3Mn")
PASSWORD = Param("X-Share-Password", description="the link's password, when it has one", where="header",
                 max_length=1024)
_ALBUM_EXAMPLE = {"album_id": 3, "user_id": 1, "album_name": "Summer 2026", "description": None,
                  "cover_asset_id": EXAMPLE_ASSET_ID, "asset_count": 12, "created_at": EXAMPLE_TIME,
                  "updated_at": EXAMPLE_TIME}


# -- models ----------------------------------------------------------------------------------


class MemberBody(Body):
    model_config = body_examples({"username": "bob", "role": "viewer"})

    username: StrictStr = Field(min_length=1, max_length=64)
    role: Literal["viewer", "editor"]


class RoleBody(Body):
    model_config = body_examples({"role": "editor"})

    role: Literal["viewer", "editor"]


class Member(BaseModel):
    user_id: int
    username: str
    role: Literal["viewer", "editor"]


class AlbumWithMembers(AlbumDTO):
    model_config = examples({**_ALBUM_EXAMPLE, "members": [{"user_id": 2, "username": "bob", "role": "viewer"}]})

    members: list[Member]


def _aware(value: str | None) -> str | None:
    if value is not None:
        try:
            parsed = datetime.fromisoformat(rfc3339(value))
        except ValueError:
            raise ValueError("expires_at must be an ISO 8601 date-time, e.g. 2026-12-31T23:59:00Z") from None
        if parsed.tzinfo is None:
            raise ValueError("expires_at needs a UTC offset (e.g. Z or +01:00)")
    return value


class LinkBody(Body):
    # One of album_id or asset_ids, which the command checks (400 otherwise): said for the document.
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "examples": [{"album_id": 3, "expires_at": "2026-12-31T23:59:00Z", "allow_download": False},
                     {"asset_ids": [EXAMPLE_ASSET_ID], "password": "a shared secret"}],
        # if/then/else rather than oneOf: generators of clients read a oneOf as a union of types.
        "if": {"required": ["album_id"], "properties": {"album_id": {"type": "integer"}}},
        "then": {"properties": {"asset_ids": {"type": "null"}}},
        "else": {"required": ["asset_ids"], "properties": {"asset_ids": {"type": "array"}}},
        })

    album_id: StrictInt | None = Field(default=None, ge=1, le=2**63 - 1, description="an album of yours")
    asset_ids: list[UuidStr] | None = Field(default=None, min_length=1, max_length=MAX_LINK_ASSETS,
                                            json_schema_extra={"uniqueItems": True},
                                              description="or some of your assets")
    expires_at: StrictStr | None = Field(default=None, max_length=64, json_schema_extra={"format": "date-time"},
                                         description="RFC 3339 date-time (with an offset)")
    password: StrictStr | None = Field(default=None, min_length=1, max_length=1024)
    allow_download: StrictBool = True

    @field_validator("expires_at")
    @classmethod
    def _check_expiry(cls, value: str | None) -> str | None:
        return _aware(value)


class CreatedLink(BaseModel):
    model_config = examples({"link_id": 1, "key": "q8Vx3J7m2N0rT5yZb1LcWd9Fh4Kp6Sa8Ue2Go0Ij3Mn",
                             "url": f"{PREFIX}/s/q8Vx3J7m2N0rT5yZb1LcWd9Fh4Kp6Sa8Ue2Go0Ij3Mn",
                             "expires_at": "2026-12-31T23:59:00Z", "allow_download": False})

    link_id: int
    key: str = Field(description="shown this once: only a hash of it is stored")
    url: str
    expires_at: str | None
    allow_download: bool


class LinkDTO(BaseModel):
    link_id: int
    album_id: int | None
    asset_ids: list[str]
    expires_at: str | None
    allow_download: bool
    has_password: bool
    created_at: str


class LinkPage(BaseModel):
    model_config = examples({"links": [{"link_id": 1, "album_id": 3, "asset_ids": [], "expires_at": None,
                                        "allow_download": True, "has_password": False,
                                        "created_at": EXAMPLE_TIME}], "limit": 20, "offset": 0, "total": 1})

    links: list[LinkDTO]
    limit: int
    offset: int
    total: int


class PublicAsset(BaseModel):
    """What a public link shows of an asset: no owner, path, hash or metadata."""

    asset_id: str
    type: str
    original_filename: str
    mime_type: str
    file_size: int
    width: int | None
    height: int | None
    duration: float | None
    taken_time: str | None
    description: str | None
    thumbnail_url: str | None
    original_url: str | None


class PublicAlbum(BaseModel):
    album_name: str
    description: str | None
    cover_asset_id: str | None
    asset_count: int


class PublicShare(BaseModel):
    model_config = examples({"album": {"album_name": "Summer 2026", "description": None,
                                       "cover_asset_id": None, "asset_count": 1},
                             "allow_download": True, "expires_at": None, "assets": [{
                                 "asset_id": EXAMPLE_ASSET_ID, "type": "PHOTO", "original_filename": "IMG_0042.JPG",
                                 "mime_type": "image/jpeg", "file_size": 2481152, "width": 4000, "height": 3000,
                                 "duration": None, "taken_time": "2026-07-14T18:02:11", "description": None,
                                 "thumbnail_url": f"{PREFIX}/s/KEY/assets/{EXAMPLE_ASSET_ID}/thumbnail",
                                 "original_url": f"{PREFIX}/s/KEY/assets/{EXAMPLE_ASSET_ID}/original"}]})

    album: PublicAlbum | None = None
    allow_download: bool
    expires_at: str | None
    assets: list[PublicAsset]


# -- members ---------------------------------------------------------------------------------


async def _with_members(ctx: Ctx, album_id: int) -> dict[str, Any]:
    access = Access(ctx.services.db)
    album = await ctx.run(access.album, ctx.user_id, album_id)
    if album is None:
        raise NotFound(f"album {album_id} not found")

    def named() -> list[dict[str, Any]]:
        return [{**m, "username": ctx.services.app.get_user(m["user_id"]).username}
                for m in access.members(album_id)]

    album["members"] = await ctx.run(named)
    return album


@route("GET", "/albums/{id}/members", operation_id="listAlbumMembers", summary="An album with its members",
       tag="Sharing", response=AlbumWithMembers, params=(ALBUM_ID,))
async def list_members(ctx: Ctx) -> web.Response:
    """The album (owned by the caller or shared with them) with its members and their roles."""
    return ok(await _with_members(ctx, ctx.path_int("id")))


@route("POST", "/albums/{id}/members", operation_id="addAlbumMember", summary="Share an album with a user",
       tag="Sharing", body=MemberBody, response=AlbumWithMembers, params=(ALBUM_ID,), status=201,
       also=(403, 409))
async def add_member(ctx: Ctx) -> web.Response:
    """The owner shares the album with another user as `viewer` (sees the album and its assets)
    or `editor` (also adds and removes their own assets). An unknown username answers 404, an
    existing member 409, the owner themselves 400, a member who is not the owner 403."""
    album_id = ctx.path_int("id")
    body: MemberBody = ctx.body
    _, position = await ctx.run(ctx.services.app.add_album_member, ctx.user_id, album_id, body.username, body.role)
    await ctx.settle(position)
    return ok(await _with_members(ctx, album_id), "member added", status=201)


@route("PUT", "/albums/{id}/members/{userId}", operation_id="updateAlbumMemberRole",
       summary="Change a member's role", tag="Sharing", body=RoleBody, response=AlbumWithMembers,
       params=(ALBUM_ID, USER_ID), also=(403,))
async def change_role(ctx: Ctx) -> web.Response:
    """The owner changes a member's role; it takes effect on the member's next request."""
    album_id = ctx.path_int("id")
    position = await ctx.run(ctx.services.app.change_album_member_role, ctx.user_id, album_id,
                             ctx.path_int("userId"), ctx.body.role)
    await ctx.settle(position)
    return ok(await _with_members(ctx, album_id), "role changed")


@route("DELETE", "/albums/{id}/members/{userId}", operation_id="removeAlbumMember",
       summary="Stop sharing an album with a user", tag="Sharing", params=(ALBUM_ID, USER_ID), also=(403,))
async def remove_member(ctx: Ctx) -> web.Response:
    """The owner removes a member, or a member leaves (their own user id). From the next request
    on, the album and its assets answer 404 to them."""
    album_id, member_id = ctx.path_int("id"), ctx.path_int("userId")
    position = await ctx.run(ctx.services.app.remove_album_member, ctx.user_id, album_id, member_id)
    await ctx.settle(position)
    return ok(message=f"user {member_id} no longer shares album {album_id}")


# -- links -----------------------------------------------------------------------------------


def key_hash(key: str) -> str:
    """What identifies a link in the log: a SHA-256 of its key (enough for a 256-bit secret)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@route("POST", "/shared-links", operation_id="createSharedLink", summary="Create a public link",
       tag="Sharing", body=LinkBody, response=CreatedLink, status=201, also=(403, 404),
       links=(Link("deleteSharedLink", "id", "$response.body#/data/link_id"),))
async def create_link(ctx: Ctx) -> web.Response:
    """A public link to one of the caller's albums (`album_id`) or to some of their assets
    (`asset_ids`), with an optional expiry, password (argon2id-hashed) and `allow_download`
    (default true: the originals can be fetched). The answer holds the key, this once."""
    body: LinkBody = ctx.body
    expires = datetime.fromisoformat(body.expires_at).astimezone(UTC) if body.expires_at else None
    password_hash = await ctx.run(ctx.services.passwords.hash, body.password) if body.password else None
    key = secrets.token_urlsafe(32)
    link_id, position = await ctx.run(
        ctx.services.app.create_shared_link, ctx.user_id, body.album_id, body.asset_ids, key_hash(key),
        password_hash, expires, body.allow_download,
    )
    await ctx.settle(position)
    return ok({"link_id": link_id, "key": key, "url": f"{PREFIX}/s/{key}",
               "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if expires else None,
               "allow_download": body.allow_download}, "link created", status=201)


@route("GET", "/shared-links", operation_id="listSharedLinks", summary="The caller's public links",
       tag="Sharing", response=LinkPage, params=page_params())
async def list_links(ctx: Ctx) -> web.Response:
    """The caller's links that are not revoked (keys are never shown again), oldest first."""
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    links, total = await ctx.run(SharedLinks(ctx.services.db).list, ctx.user_id, limit, offset)
    return ok({"links": links, "limit": limit, "offset": offset, "total": total})


@route("DELETE", "/shared-links/{id}", operation_id="deleteSharedLink", summary="Revoke a public link",
       tag="Sharing", params=(LINK_ID,))
async def revoke_link(ctx: Ctx) -> web.Response:
    """The key stops working at once. Another user's link, or one already revoked, is 404."""
    link_id = ctx.path_int("id")
    position = await ctx.run(ctx.services.app.revoke_shared_link, ctx.user_id, link_id)
    await ctx.settle(position)
    return ok(message=f"shared link {link_id} revoked")


# -- public routes ---------------------------------------------------------------------------


class _Guard:
    """Wrong-password counting per link (the `limits` package, in memory) and a short cache of
    passwords already verified, so that a gallery of thumbnails costs one argon2 check."""

    def __init__(self, rate: str) -> None:
        self.rate = parse(rate)
        self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        self.verified: dict[tuple[int, str], float] = {}

    def retry_after(self, link_id: int) -> int | None:
        if self.limiter.test(self.rate, "share-password", str(link_id)):
            return None
        stats = self.limiter.get_window_stats(self.rate, "share-password", str(link_id))
        return max(1, int(stats.reset_time - time.time()) + 1)


# One guard per running server (tests run several in one process). Services is an unhashable
# dataclass: key by its id, and check the weak reference so a recycled id gets a fresh guard.
_GUARDS: dict[int, tuple[weakref.ref[Services], _Guard]] = {}


def _guard(services: Services) -> _Guard:
    found = _GUARDS.get(id(services))
    if found is None or found[0]() is not services:
        found = _GUARDS[id(services)] = (weakref.ref(services), _Guard(services.settings.rate_limit_share_password))
    return found[1]


class TooManyAttempts(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after


def _open_link(services: Services, key: str, password: str | None) -> dict[str, Any]:
    """The link's row when the key opens it now (and the password is right), else an error."""
    if not 20 <= len(key) <= 200:
        raise NotFound("shared link not found")
    row = SharedLinks(services.db).by_key_hash(key_hash(key))
    if row is None:
        raise NotFound("shared link not found")
    link = services.app.shared_link(int(row["link_id"]))  # the aggregate: revocation is immediate
    if not link.is_usable(datetime.now(UTC)):
        raise NotFound("shared link not found")
    if link.password_hash:
        if password is None:
            raise Unauthorized("this link needs its password in the X-Share-Password header")
        guard = _guard(services)
        digest = hashlib.sha256(password.encode("utf-8", "surrogatepass")).hexdigest()
        cached = guard.verified.get((link.link_id, digest))
        if cached is None or cached < time.monotonic():
            wait = guard.retry_after(link.link_id)
            if wait is not None:
                raise TooManyAttempts(wait)
            if not services.passwords.verify(link.password_hash, password):
                guard.limiter.hit(guard.rate, "share-password", str(link.link_id))
                raise NotFound("shared link not found")
            if len(guard.verified) > 10_000:
                guard.verified.clear()
            guard.verified[(link.link_id, digest)] = time.monotonic() + 600
    return dict(row)


async def _link(ctx: Ctx) -> dict[str, Any] | web.Response:
    try:
        return await ctx.run(_open_link, ctx.services, ctx.request.match_info["key"],
                             ctx.request.headers.get("X-Share-Password"))
    except TooManyAttempts as exc:
        return fail(429, "too many wrong passwords for this link; try again later",
                    f"retry after {exc.retry_after} s", **{"Retry-After": str(exc.retry_after)})


def _public_asset(key: str, row: dict[str, Any], allow_download: bool) -> dict[str, Any]:
    base = f"{PREFIX}/s/{key}/assets/{row['asset_id']}"
    has_thumbnail = bool(json.loads(row["thumbnails"]) if isinstance(row["thumbnails"], str) else row["thumbnails"])
    return {
        "asset_id": row["asset_id"], "type": row["type"], "original_filename": row["original_filename"],
        "mime_type": row["mime_type"], "file_size": row["file_size"], "width": row["width"],
        "height": row["height"], "duration": row["duration"], "taken_time": row["taken_time"],
        "description": row["description"], "thumbnail_url": f"{base}/thumbnail" if has_thumbnail else None,
        "original_url": f"{base}/original" if allow_download else None,
    }


@route("GET", "/s/{key}", operation_id="getSharedLink", summary="What a public link shows (no token)",
       tag="Sharing", response=PublicShare, auth=False, params=(KEY, PASSWORD), also=(401, 429))
async def open_link(ctx: Ctx) -> web.Response:
    """The album and its assets, or the assets, that the link covers, with URLs for their
    thumbnails (and originals when downloads are allowed). Nothing else of the owner's shows: no
    owner, paths, hashes or metadata. An unknown, expired or revoked key and a wrong password
    answer 404; a missing password 401; too many wrong passwords 429 with `Retry-After`."""
    link = await _link(ctx)
    if isinstance(link, web.Response):
        return link
    key = ctx.request.match_info["key"]
    access = Access(ctx.services.db)
    rows = await ctx.run(access.link_asset_rows, link)
    data: dict[str, Any] = {
        "allow_download": bool(link["allow_download"]), "expires_at": link["expires_at"],
        "assets": [_public_asset(key, r, bool(link["allow_download"])) for r in rows],
    }
    if link["album_id"] is not None:
        album = await ctx.run(access.link_album, link)
        if album is None:
            raise NotFound("shared link not found")
        covered = {r["asset_id"] for r in rows}
        data["album"] = {"album_name": album["album_name"], "description": album["description"],
                         # the cover only when the link covers it: no asset id outside the link
                         "cover_asset_id": album["cover_asset_id"] if album["cover_asset_id"] in covered else None,
                         "asset_count": len(rows)}
    return ok(data)


async def _covered_row(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]] | web.Response:
    link = await _link(ctx)
    if isinstance(link, web.Response):
        return link
    asset_id = ctx.request.match_info["assetId"].lower()
    rows = await ctx.run(Access(ctx.services.db).link_asset_rows, link, asset_id)
    if not rows:
        raise NotFound(f"asset {asset_id} not found")
    return link, rows[0]


@route("GET", "/s/{key}/assets/{assetId}/thumbnail", operation_id="getSharedThumbnail",
       summary="A thumbnail of an asset the link covers (no token)", tag="Sharing", binary=("image/webp",),
       auth=False, params=(KEY, asset_id_param("assetId"), PASSWORD, QueryParam(
           "size", description="small (256 px), medium (1024 px) or large (2048 px)",
           enum=("small", "medium", "large"), default="medium")), also=(401, 429))
async def shared_thumbnail(ctx: Ctx) -> web.StreamResponse:
    """A WebP thumbnail of an asset the link covers; any other asset is 404."""
    found = await _covered_row(ctx)
    if isinstance(found, web.Response):
        return found
    _, row = found
    size = ctx.query_str("size") or "medium"
    info = json.loads(row["thumbnails"]).get(size)
    if info is None:
        raise NotFound(f"this asset has no {size} thumbnail yet")
    path = ctx.services.settings.data_dir / "derived" / info["path"]
    return await serve_file(ctx.request, path, info.get("mime_type", "image/webp"), f"{row['hash']}-{size}")


@route("GET", "/s/{key}/assets/{assetId}/original", operation_id="downloadSharedOriginal",
       summary="The original of an asset the link covers, when downloads are allowed (no token)",
       tag="Sharing", binary=("image/*", "video/*", "audio/*", "application/pdf"), auth=False,
       params=(KEY, asset_id_param("assetId"), PASSWORD), also=(401, 403, 429))
async def shared_original(ctx: Ctx) -> web.StreamResponse:
    """The original file of an asset the link covers (Range, ETag). 403 when the link does not
    allow downloads; any asset outside the link is 404."""
    found = await _covered_row(ctx)
    if isinstance(found, web.Response):
        return found
    link, row = found
    if not link["allow_download"]:
        raise Forbidden("this link does not allow downloads")
    path = ctx.services.storage.path_of(row["repository_id"], row["storage_path"])
    return await serve_file(ctx.request, path, row["mime_type"], row["hash"], row["original_filename"])

