"""External libraries (administrators): register a folder inside `DARKROOM_LIBRARY_ROOTS`, list,
scan, delete. Files are indexed in place: never copied, never written, never deleted."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from api.envelope import ok
from api.models import EXAMPLE_TIME, NAME_TEXT, Body, body_examples, examples
from api.registry import Ctx, Link, page_params, positive_id_param, route
from domain.errors import Conflict, NotFound
from domain.library import MAX_EXCLUSION_PATTERNS
from infra.library_fs import check_library_path, parse_roots
from projections.libraries import Libraries

LIBRARY_ID = positive_id_param("id", "a library")
_EXAMPLE = {"library_id": 1, "name": "NAS photos", "owner_id": 1, "path": "/mnt/photos/family",
            "exclusion_patterns": ["**/@eaDir/**"], "watch": True, "asset_count": 1200, "offline_count": 3,
            "last_scan_at": EXAMPLE_TIME, "created_at": EXAMPLE_TIME,
            "scan": {"job_id": 42, "state": "completed", "seen": 1250, "indexed": 1200, "changed": 0,
                     "offline": 3, "returned": 0, "skipped": 47, "finished": True}}


# What domain.library.check_exclusion_patterns takes, said for the document.
Glob = Annotated[StrictStr, Field(json_schema_extra={"minLength": 1, "maxLength": 500, "pattern": r"^[^\x00]*\S[^\x00]*$"})]


class LibraryBody(Body):
    model_config = body_examples({"name": "NAS photos", "owner_id": 1, "path": "/mnt/photos/family",
                                  "exclusion_patterns": ["**/@eaDir/**", "**/.*"], "watch": True})

    name: StrictStr = Field(min_length=1, max_length=255, json_schema_extra=NAME_TEXT)
    owner_id: StrictInt = Field(ge=1, le=2**63 - 1, description="whose assets the files become")
    path: StrictStr = Field(min_length=1, max_length=4096,
                            description="an absolute folder inside one of DARKROOM_LIBRARY_ROOTS (symlinks resolved)")
    exclusion_patterns: list[Glob] = Field(default_factory=list, max_length=MAX_EXCLUSION_PATTERNS,
                                                description="globs relative to `path`; `**` spans folders")
    watch: StrictBool = Field(default=False, description="rescan changed folders as the file system reports them")


class LibraryDTO(BaseModel):
    model_config = examples(_EXAMPLE)

    library_id: int
    name: str
    owner_id: int
    path: str
    exclusion_patterns: list[str]
    watch: bool
    asset_count: int
    offline_count: int
    last_scan_at: str | None
    created_at: str
    scan: dict[str, object] | None = Field(description="the latest scan job: its state and counts so far")


class LibraryPage(BaseModel):
    model_config = examples({"libraries": [_EXAMPLE], "limit": 20, "offset": 0, "total": 1})

    libraries: list[LibraryDTO]
    limit: int
    offset: int
    total: int


class ScanQueued(BaseModel):
    model_config = examples({"job_id": 42})

    job_id: int


async def _library(ctx: Ctx, library_id: int) -> dict[str, object]:
    library = await ctx.run(Libraries(ctx.services.db).get, library_id)
    if library is None:
        raise NotFound(f"library {library_id} not found")
    return library


@route("POST", "/admin/libraries", operation_id="createLibrary", summary="Register an external library",
       tag="Libraries", body=LibraryBody, response=LibraryDTO, admin=True, status=201, also=(409,),
       links=(Link("scanLibrary", "id", "$response.body#/data/library_id"),
              Link("getLibrary", "id", "$response.body#/data/library_id")))
async def create_library(ctx: Ctx) -> web.Response:
    """Registers a folder whose files become the owner's assets in place, and queues its first
    scan. The folder must lie inside one of `DARKROOM_LIBRARY_ROOTS` once symlinks are resolved
    (400 otherwise); a folder already registered, or inside or around one, answers 409."""
    body: LibraryBody = ctx.body
    path = check_library_path(body.path, parse_roots(ctx.services.settings.library_roots))
    existing, _ = await ctx.run(Libraries(ctx.services.db).list, 10_000, 0)
    for other in existing:
        other_path = str(other["path"])
        if str(path) == other_path or str(path).startswith(other_path + "/") or other_path.startswith(f"{path}/"):
            raise Conflict(f"library {other['library_id']} already covers {other_path}", "path")
    library_id, position = await ctx.run(ctx.services.app.create_library, ctx.user_id, body.name, body.owner_id,
                                         path, body.exclusion_patterns, body.watch)
    _, scan_position = await ctx.run(ctx.services.app.queue_library_scan, library_id)
    await ctx.settle(max(position, scan_position))
    return ok(await _library(ctx, library_id), "library created; its first scan is queued", status=201)


@route("GET", "/admin/libraries", operation_id="listLibraries", summary="External libraries", tag="Libraries",
       response=LibraryPage, admin=True, params=page_params())
async def list_libraries(ctx: Ctx) -> web.Response:
    """Every library, with its counts (assets, offline ones) and its latest scan's progress."""
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    libraries, total = await ctx.run(Libraries(ctx.services.db).list, limit, offset)
    return ok({"libraries": libraries, "limit": limit, "offset": offset, "total": total})


@route("GET", "/admin/libraries/{id}", operation_id="getLibrary", summary="One external library",
       tag="Libraries", response=LibraryDTO, admin=True, params=(LIBRARY_ID,))
async def get_library(ctx: Ctx) -> web.Response:
    """The library with its counts and its latest scan's progress (state, files seen, indexed,
    changed, offline, returned, skipped)."""
    return ok(await _library(ctx, ctx.path_int("id")))


@route("POST", "/admin/libraries/{id}/scan", operation_id="scanLibrary", summary="Scan a library now",
       tag="Libraries", response=ScanQueued, admin=True, params=(LIBRARY_ID,))
async def scan_library(ctx: Ctx) -> web.Response:
    """Queues a scan (a job on the `scan_library` queue, listed by /admin/river/jobs): new files are
    indexed in place, changed ones reprocessed, vanished ones marked offline and back when they
    return. A scan still waiting to start is reused."""
    library_id = ctx.path_int("id")
    await _library(ctx, library_id)
    job_id, position = await ctx.run(ctx.services.app.queue_library_scan, library_id)
    await ctx.settle(position)
    return ok({"job_id": job_id}, "scan queued")


@route("DELETE", "/admin/libraries/{id}", operation_id="deleteLibrary", summary="Remove a library",
       tag="Libraries", admin=True, params=(LIBRARY_ID,))
async def delete_library(ctx: Ctx) -> web.Response:
    """The library and its assets leave the catalog; its files stay on disk, untouched."""
    library_id = ctx.path_int("id")
    await _library(ctx, library_id)
    files = await ctx.run(Libraries(ctx.services.db).files, library_id)
    position = await ctx.run(ctx.services.app.delete_library, ctx.user_id, library_id,
                             [v[3] for v in files.values()])
    await ctx.settle(position)
    return ok(message=f"library {library_id} removed; its files are untouched")
