"""Batch and chunked upload: `POST /assets/batch`, its config and progress.

One multipart request carries any number of files, each under a field that names its upload
session:

- `single_{session_id}`: a whole file;
- `chunk_{session_id}_{index}_{total}`: chunk `index` (from 0) of a file cut into `total` chunks.
  Chunks of one file may come in any order, in separate requests, and more than once; the file
  becomes an asset when the last missing chunk arrives (see `infra.upload_sessions`);
- `hash_{session_id}` (text, optional): the BLAKE3 hex digest the whole file must have;
- `repository_id` (text, optional): where the files go (default repository when absent).

The header `X-Content-Hash` is honoured as by `POST /assets`, for a request with exactly one
`single_` file; it applies to that file only.

Session ids are 1-128 characters of A-Z, a-z, 0-9 and '-' (no underscore, so field names parse
unambiguously). Sessions belong to their uploader: another user's session with the same id is a
different session.

What fails the whole request (a 4xx envelope; the files of the request are not kept):

- 400: not multipart; a field name that does not parse or is unknown; a bad session id; a chunk
  index >= total, total < 1 or total > 100000; the same field twice; a session id used by both a
  `single_` and a `chunk_` field; a chunk whose total differs from its session's; an unknown
  `repository_id`, or one that differs from the repository of an existing session; a malformed
  `hash_` value or `X-Content-Hash`; `X-Content-Hash` on a request without exactly one `single_`
  file; a `hash_` field for a session that neither exists nor is in the request; no file (nor
  `hash_` field) at all; more than `MAX_FILES` file fields. A request with only `hash_` fields
  records the expected hashes of existing sessions (their results are `partial`).
- 409: a chunk (or `hash_`) for a session that is finished (completed, failed) or being
  assembled; a repeated chunk whose bytes differ from the ones received before; a `single_` whose
  session id names an existing chunked session.
- 413: a file (a single, or the sum of a session's chunks) larger than `max_upload_bytes`.

These are checked before any chunk joins its session, under the sessions' locks, so a refused
request changes nothing (a single is only staged, then discarded). `Storage.stage` measures
while streaming, so an oversized part is cut off as soon as it passes the limit.

What fails only one file (its result has `status: "failed"`, `success: false`, `error`; the
other files of the request are stored): an empty file (400), content that is not a supported
photo, video, audio file or PDF (415), a file whose BLAKE3 differs from `hash_{session_id}` or
`X-Content-Hash` (400; for a chunked file the session is failed, and no asset is created), and a
session whose parts turned out to be missing on the server (409). A failed session accepts no
more chunks: upload again under a new session id.

Results come one per session id of the request, in the order of their first field: `queued` or
`duplicate` (from ingest: a new asset, or one the user already had), `partial` (chunks still
missing; `message` says how many were received, `size` is the bytes received so far) or
`failed`.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, ConfigDict, Field

from api.envelope import STATUS_OF, ok
from api.ingest import clean_filename, ingest, next_part
from api.models import FormModel
from api.registry import Ctx, Param, QueryParam, route
from domain.errors import Conflict, DomainError, InvalidInput, TooLarge
from infra.bootstrap import Services
from infra.storage import StagedFile
from infra.upload_sessions import (
    COMPLETED,
    FAILED,
    MAX_CHUNKS,
    SESSION_ID,
    CommitOutcome,
    IncomingChunk,
    SessionUpdate,
    UploadSessions,
    batch_config,
    check_session_id,
    progress_of,
)

MAX_FILES = 1000  # file fields per request
MAX_TEXT_FIELD = 1024  # bytes of a text field (repository_id, hash_...)
PIECE = 1024 * 1024
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_NUMBER = re.compile(r"[0-9]{1,9}")


# -- response models -----------------------------------------------------------------------------


class BatchFileResult(BaseModel):
    session_id: str
    file_name: str
    content_hash: str | None = Field(description="BLAKE3 hex of the whole file (null while partial)")
    size: int | None = Field(description="bytes of the file; for a partial one, bytes received so far")
    status: str = Field(description="queued | duplicate | partial | failed")
    success: bool
    asset_id: str | None
    task_id: int | None
    message: str
    error: str | None


class BatchResult(BaseModel):
    results: list[BatchFileResult]


class BatchConfig(BaseModel):
    chunk_size: int = Field(description="bytes per chunk: 8 MiB with >= 8 GiB of memory, 4 MiB with >= 2 GiB, else 2 MiB")
    max_concurrent: int = Field(description="files to upload at once: CPUs clamped to 2..8")
    max_in_flight_requests: int = Field(description="memory_buffer / chunk_size clamped to 1..2 x max_concurrent")
    memory_buffer: int = Field(description="bytes of chunk data in flight at most: MemAvailable / 16 clamped to 4 chunks..512 MiB")
    merge_concurrency: int = Field(description="files assembled at once on the server: CPUs / 2 clamped to 1..4")


class SessionProgress(BaseModel):
    session_id: str
    filename: str
    status: str = Field(description="uploading | assembling | completed | failed")
    progress: float = Field(description="bytes_done / bytes_total, from 0 to 1")
    bytes_done: int
    bytes_total: int = Field(description="exact once every chunk is in; before, estimated from the chunk sizes")
    received_chunks: int
    total_chunks: int
    last_activity: str | None
    asset_id: str | None = None
    error: str | None = None


class ProgressSummary(BaseModel):
    total_sessions: int
    active_sessions: int = Field(description="uploading or assembling")
    completed_files: int
    failed_sessions: int
    overall_progress: float = Field(description="sum of bytes_done / sum of bytes_total, from 0 to 1")


class BatchProgress(BaseModel):
    sessions: list[SessionProgress]
    summary: ProgressSummary


# -- the sessions of a Services ------------------------------------------------------------------

_SESSIONS: dict[int, UploadSessions] = {}


def upload_sessions(services: Services) -> UploadSessions:
    """The upload sessions of these services (one object per Services, made on first use)."""
    key = id(services)
    found = _SESSIONS.get(key)
    if found is None or found.storage is not services.storage:
        found = UploadSessions(services.settings, services.storage)
        _SESSIONS[key] = found
        weakref.finalize(services, _SESSIONS.pop, key, None)
    return found


# -- parsing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldName:
    kind: str  # repository_id | single | chunk | hash
    session_id: str = ""
    index: int = 0
    total: int = 0


def parse_field(name: str | None) -> FieldName:
    """What a multipart field name means; 400 naming the field when it does not parse."""
    raw = name or ""
    if raw == "repository_id":
        return FieldName("repository_id")
    kind, sep, rest = raw.partition("_")
    if sep and kind in ("single", "hash"):
        return FieldName(kind, check_session_id(rest, raw))
    if sep and kind == "chunk":
        pieces = rest.rsplit("_", 2)
        if len(pieces) != 3 or not _NUMBER.fullmatch(pieces[1]) or not _NUMBER.fullmatch(pieces[2]):
            raise InvalidInput(f"field {raw[:200]!r} is not chunk_{{session_id}}_{{index}}_{{total}} "
                               "with decimal index and total", raw[:200])
        session_id = check_session_id(pieces[0], raw)
        index, total = int(pieces[1]), int(pieces[2])
        if total < 1 or total > MAX_CHUNKS:
            raise InvalidInput(f"field {raw!r}: total must be from 1 to {MAX_CHUNKS}", raw)
        if index >= total:
            raise InvalidInput(f"field {raw!r}: index {index} is not below total {total} "
                               "(indexes start at 0)", raw)
        return FieldName("chunk", session_id, index, total)
    raise InvalidInput(
        f"unexpected multipart field {raw[:200]!r}; use single_{{session_id}}, "
        "chunk_{session_id}_{index}_{total}, hash_{session_id} or repository_id", raw[:200] or "field")


async def _pieces(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(PIECE):
        yield chunk


async def _text(part: BodyPartReader, name: str) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(MAX_TEXT_FIELD + 1):
        data += chunk
        if len(data) > MAX_TEXT_FIELD:
            raise InvalidInput(f"field {name!r} is longer than {MAX_TEXT_FIELD} bytes", name)
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidInput(f"field {name!r} is not UTF-8 text", name) from None


def _hex_digest(raw: str, name: str) -> str:
    value = raw.strip()
    if not _HEX64.fullmatch(value):
        raise InvalidInput(f"{name} must be a BLAKE3 hex digest (64 hex digits)", name)
    return value.lower()


@dataclass
class Single:
    filename: str
    staged: StagedFile


# -- results -------------------------------------------------------------------------------------


def _ingested(session_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "session_id": session_id, "file_name": data["file_name"], "content_hash": data["content_hash"],
        "size": data["size"], "status": data["status"], "success": True, "asset_id": data["asset_id"],
        "task_id": data["task_id"], "message": data["message"], "error": None,
    }


def _failed(session_id: str, filename: str, error: DomainError, staged: StagedFile | None = None) -> dict[str, Any]:
    status = STATUS_OF.get(type(error), 400)
    return {
        "session_id": session_id, "file_name": filename,
        "content_hash": staged.content_hash if staged else None, "size": staged.size if staged else None,
        "status": "failed", "success": False, "asset_id": None, "task_id": None,
        "message": f"file not stored ({status})", "error": error.message,
    }


def _partial(outcome: CommitOutcome) -> dict[str, Any]:
    return {
        "session_id": outcome.session_id, "file_name": outcome.filename, "content_hash": None,
        "size": outcome.bytes_received, "status": "partial", "success": True, "asset_id": None,
        "task_id": None, "message": f"received {outcome.received} of {outcome.total} chunks",
        "error": None,
    }


def _hash_mismatch(expected: str, got: str, source: str) -> InvalidInput:
    return InvalidInput(f"{source} {expected} does not match the received content ({got}); the upload "
                        "was corrupted or the hash is wrong", source)


async def _store_single(ctx: Ctx, session_id: str, single: Single, checks: list[tuple[str, str]],
                        repository_id: str) -> dict[str, Any]:
    staged = single.staged
    for source, expected in checks:
        if expected != staged.content_hash:
            ctx.services.storage.discard(staged)
            return _failed(session_id, single.filename, _hash_mismatch(expected, staged.content_hash, source), staged)
    try:
        data = await ingest(ctx, staged, single.filename, repository_id)
    except DomainError as exc:
        return _failed(session_id, single.filename, exc, staged)
    return _ingested(session_id, data)


async def _store_session(ctx: Ctx, sessions: UploadSessions, outcome: CommitOutcome) -> dict[str, Any]:
    """Assemble a session this request completed, check its hash, ingest it, record the end."""
    owner, sid, filename = ctx.user_id, outcome.session_id, outcome.filename
    staged: StagedFile | None = None
    try:
        staged = await ctx.run(sessions.assemble, owner, sid)
        if outcome.expected_hash is not None and outcome.expected_hash != staged.content_hash:
            ctx.services.storage.discard(staged)
            raise _hash_mismatch(outcome.expected_hash, staged.content_hash, f"hash_{sid}")
        data = await ingest(ctx, staged, filename, outcome.repository_id)
    except DomainError as exc:
        await ctx.run(sessions.finish, owner, sid, FAILED, error=exc.message)
        return _failed(sid, filename, exc, staged)
    except BaseException as exc:
        if staged is not None:
            ctx.services.storage.discard(staged)
        await ctx.run(sessions.finish, owner, sid, FAILED, error=f"server error: {type(exc).__name__}")
        raise
    await ctx.run(sessions.finish, owner, sid, COMPLETED, result={
        "asset_id": data["asset_id"], "task_id": data["task_id"], "status": data["status"],
        "content_hash": data["content_hash"], "size": data["size"],
    })
    return _ingested(sid, data)


# -- routes --------------------------------------------------------------------------------------


class BatchUploadForm(FormModel):
    """One file or one chunk per request, in fields a generated client can fill (the named fields
    `single_{session_id}`, `chunk_{session_id}_{index}_{total}` and `hash_{session_id}` of the
    operation's description carry many files in one request instead). The fields may come in any
    order."""

    session_id: str = Field(min_length=1, max_length=128, pattern=f"^{SESSION_ID.pattern}$",
                            description="names the upload session; chunks of one file share it")
    chunk_index: int | None = Field(default=None, ge=0, lt=MAX_CHUNKS,
                                    description="which chunk this is, from 0 (with chunk_total)")
    chunk_total: int | None = Field(default=None, ge=1, le=MAX_CHUNKS,
                                    description="how many chunks the file is cut into (absent: the whole file)")
    content_hash: str | None = Field(default=None, pattern="^[0-9a-fA-F]{64}$",
                                     description="the BLAKE3 hex digest the whole file must have")
    repository_id: str | None = Field(default=None, max_length=MAX_TEXT_FIELD)
    file: bytes = Field(description="the file, or this chunk of it; its filename names the asset")

    model_config = ConfigDict(json_schema_extra={
        "dependentRequired": {"chunk_index": ["chunk_total"], "chunk_total": ["chunk_index"]}})


_FORM_TEXT = ("session_id", "chunk_index", "chunk_total", "content_hash")


@dataclass
class FormFile:
    """The file of a `BatchUploadForm` request, staged before its fields are known to be complete."""

    filename: str
    staged: StagedFile


def _form_field(form: dict[str, str], name: str) -> FieldName:
    """What the form's text fields make of its file: a single or a chunk of a session."""
    if "session_id" not in form:
        raise InvalidInput("field 'session_id' is missing (it names the file's upload session)", "session_id")
    sid = check_session_id(form["session_id"], "session_id")
    if ("chunk_index" in form) != ("chunk_total" in form):
        raise InvalidInput("send chunk_index and chunk_total together (neither: the whole file)", "chunk_index")
    if "chunk_total" not in form:
        return FieldName("single", sid)
    for key in ("chunk_index", "chunk_total"):
        if not _NUMBER.fullmatch(form[key]):
            raise InvalidInput(f"{key} must be a decimal integer, got {form[key][:50]!r}", key)
    index, total = int(form["chunk_index"]), int(form["chunk_total"])
    if not index < total <= MAX_CHUNKS:
        raise InvalidInput(f"chunk_index {index} must be below chunk_total {total} (at most {MAX_CHUNKS}; "
                           "indexes start at 0)", "chunk_index")
    return FieldName("chunk", sid, index, total)


@route("POST", "/assets/batch", operation_id="uploadBatch", summary="Upload many files, whole or in resumable chunks",
       tag="Batch upload", response=BatchResult, multipart=BatchUploadForm, also=(409, 429), idempotent=True, params=(
           Param("X-Content-Hash", description="the BLAKE3 hex digest of the request's only whole file "
                 "(with the form: of the file the chunk belongs to, as content_hash)",
                 where="header", pattern="^[0-9a-fA-F]{64}$"),
       ))
async def batch_upload(ctx: Ctx) -> web.Response:
    """Stores whole files and chunks of resumable uploads; a file becomes an asset when its last
    missing chunk arrives (chunks may come in any order, in any requests, and again).

    Two ways to send: the documented form (one file or chunk per request: `session_id`, and
    `chunk_index` with `chunk_total` for a chunk), or named fields, any number per request:
    `single_{session_id}` (a whole file), `chunk_{session_id}_{index}_{total}` (a chunk, index
    from 0), `hash_{session_id}` (text: the BLAKE3 hex digest the whole file must have) and
    `repository_id`. Session ids are 1-128 characters of A-Z, a-z, 0-9 and '-'.

    Each file answers in `results`: `queued` or `duplicate` (stored), `partial` (chunks still
    missing) or `failed` (this file only: empty, unsupported, wrong hash). A malformed request
    fails whole (400, 409 for a finished session, 413 past the size limit) and stores nothing."""
    services = ctx.services
    storage = services.storage
    request = ctx.request
    owner = ctx.user_id
    sessions = upload_sessions(services)
    await ctx.run(sessions.maybe_expire)
    limit = services.settings.max_upload_bytes
    if not request.content_type.startswith("multipart/"):
        raise InvalidInput("a batch upload must be multipart/form-data", "body")
    header_hash = request.headers.get("X-Content-Hash")
    if header_hash is not None:
        header_hash = _hex_digest(header_hash, "X-Content-Hash")

    order: list[str] = []  # session ids in the order of their first file field
    singles: dict[str, Single] = {}
    updates: dict[str, SessionUpdate] = {}
    hashes: dict[str, str] = {}
    repository_field: str | None = None
    seen_repository = False
    files = 0
    form: dict[str, str] = {}
    form_file: FormFile | None = None
    try:
        reader = await request.multipart()
        while (part := await next_part(reader)) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidInput("nested multipart is not supported", "body")
            name = part.name or ""
            if name in _FORM_TEXT:
                if name in form:
                    raise InvalidInput(f"field {name!r} is given twice", name)
                form[name] = await _text(part, name)
                continue
            if name == "file":
                if form_file is not None:
                    raise InvalidInput("field 'file' is given twice: one file per form request", "file")
                form_file = FormFile(clean_filename(part.filename), await storage.stage(_pieces(part), limit))
                continue
            f = parse_field(name)
            sid = f.session_id
            if f.kind == "repository_id":
                if seen_repository:
                    raise InvalidInput("field 'repository_id' is given twice", "repository_id")
                seen_repository = True
                repository_field = await _text(part, name) or None
            elif f.kind == "hash":
                if sid in hashes:
                    raise InvalidInput(f"field {name!r} is given twice", name)
                hashes[sid] = _hex_digest(await _text(part, name), name)
            else:
                files += 1
                if files > MAX_FILES:
                    raise InvalidInput(f"at most {MAX_FILES} file fields per request", name)
                if f.kind == "single":
                    if sid in singles or sid in updates:
                        raise InvalidInput(f"session {sid} appears in more than one file field "
                                           "(a single_ file is the whole file)", name)
                    filename = clean_filename(part.filename)
                    singles[sid] = Single(filename, await storage.stage(_pieces(part), limit))
                    order.append(sid)
                else:
                    if sid in singles:
                        raise InvalidInput(f"session {sid} has both a single_ and a chunk_ field", name)
                    update = updates.get(sid)
                    if update is None:
                        update = updates[sid] = SessionUpdate(sid, f.total)
                        order.append(sid)
                    elif update.total != f.total:
                        raise InvalidInput(f"chunks of session {sid} disagree on the total "
                                           f"({update.total} and {f.total})", name)
                    if any(c.index == f.index for c in update.chunks):
                        raise InvalidInput(f"field {name!r} is given twice", name)
                    pending = {c.index: c.staged.size for c in update.chunks}
                    room = await ctx.run(sessions.room, owner, sid, f.total, f.index, pending)
                    try:
                        staged = await storage.stage(_pieces(part), room)
                    except TooLarge:
                        raise TooLarge(f"upload session {sid}: the file would be larger than the "
                                       f"limit of {limit} bytes", name) from None
                    update.chunks.append(IncomingChunk(f.index, staged, clean_filename(part.filename)))

        if form or form_file is not None:
            if header_hash is not None:  # in a form, the header is one more way to send content_hash
                if form.setdefault("content_hash", header_hash).lower() != header_hash:
                    raise InvalidInput("X-Content-Hash and content_hash differ", "X-Content-Hash")
                header_hash = None
            await _take_form(ctx, sessions, form, form_file, order, singles, updates, hashes)
            form_file = None  # now held by singles or updates, which clean up after it
        order += [sid for sid in hashes if sid not in singles and sid not in updates]  # hash only
        if not order:
            raise InvalidInput("no file fields: send single_{session_id} or chunk_{session_id}_{index}_{total}",
                               "body")
        repository_id = storage.repository(repository_field)
        checks: dict[str, list[tuple[str, str]]] = {sid: [] for sid in singles}
        if header_hash is not None:
            if len(singles) != 1:
                raise InvalidInput("X-Content-Hash applies to a request with exactly one single_ file; "
                                   "for several files or chunks send hash_{session_id} fields", "X-Content-Hash")
            checks[next(iter(singles))].append(("X-Content-Hash", header_hash))
        for sid, expected in hashes.items():
            if sid in singles:
                checks[sid].append((f"hash_{sid}", expected))
            else:
                updates.setdefault(sid, SessionUpdate(sid)).expected_hash = expected
        for sid in singles:
            if await ctx.run(sessions.manifest, owner, sid) is not None:
                raise Conflict(f"session id {sid} names a chunked upload session of yours; "
                               "a single_ file needs a session id of its own", f"single_{sid}")
        outcomes: dict[str, CommitOutcome] = {}
        if updates:
            outcomes = await ctx.run(sessions.commit, owner, list(updates.values()),
                                     repository_id if repository_field else None, repository_id)
    except BaseException:
        for single in singles.values():
            storage.discard(single.staged)
        if form_file is not None:
            storage.discard(form_file.staged)
        raise
    finally:
        for update in updates.values():
            for chunk in update.chunks:
                storage.discard(chunk.staged)  # no-op for the chunks the commit moved

    results: list[dict[str, Any]] = []
    pending_singles = dict(singles)
    claimed = [sid for sid in order if sid in outcomes and outcomes[sid].claimed]
    try:
        for sid in order:
            if sid in singles:
                single = pending_singles.pop(sid)
                results.append(await _store_single(ctx, sid, single, checks[sid], repository_id))
            elif outcomes[sid].claimed:
                claimed.remove(sid)
                results.append(await _store_session(ctx, sessions, outcomes[sid]))
            else:
                results.append(_partial(outcomes[sid]))
    finally:
        for single in pending_singles.values():
            storage.discard(single.staged)
        for sid in claimed:  # the request broke off before their turn: do not leave them claimed
            await ctx.run(sessions.finish, owner, sid, FAILED,
                          error="the request failed before this file was stored")
    counts: dict[str, int] = {}
    for result in results:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    return ok({"results": results}, f"batch processed: {summary}")


async def _take_form(ctx: Ctx, sessions: UploadSessions, form: dict[str, str], form_file: FormFile | None,
                     order: list[str], singles: dict[str, Single], updates: dict[str, SessionUpdate],
                     hashes: dict[str, str]) -> None:
    """Add the form's file to the request's singles or session updates, as its named field would."""
    if singles or updates or hashes:
        raise InvalidInput("send either the form fields (session_id, file, ...) or named fields "
                           "(single_..., chunk_..., hash_...), not both", "session_id")
    if form_file is None:
        raise InvalidInput("field 'file' is missing", "file")
    f = _form_field(form, "file")
    sid = f.session_id
    if "content_hash" in form:
        hashes[sid] = _hex_digest(form["content_hash"], "content_hash")
    order.append(sid)
    if f.kind == "single":
        singles[sid] = Single(form_file.filename, form_file.staged)
        return
    update = updates[sid] = SessionUpdate(sid, f.total)
    update.chunks.append(IncomingChunk(f.index, form_file.staged, form_file.filename))  # discarded with it
    room = await ctx.run(sessions.room, ctx.user_id, sid, f.total, f.index, {})
    if form_file.staged.size > room:
        raise TooLarge(f"upload session {sid}: the file would be larger than the limit of "
                       f"{ctx.services.settings.max_upload_bytes} bytes", "file")


@route("GET", "/assets/batch/config", operation_id="getBatchConfig",
       summary="How to cut and pace batch uploads on this server", tag="Batch upload", response=BatchConfig)
async def batch_upload_config(ctx: Ctx) -> web.Response:
    """Chunk size and concurrency that suit this server's memory and CPUs."""
    return ok(await ctx.run(batch_config))


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


@route("GET", "/assets/batch/progress", operation_id="getBatchProgress",
       summary="Progress of your chunked upload sessions", tag="Batch upload", response=BatchProgress, params=(
           QueryParam("session_ids", description="comma-separated session ids (default: all of yours)",
                      max_length=4000, pattern=f"^{SESSION_ID.pattern}(,{SESSION_ID.pattern})*$"),
       ))
async def batch_upload_progress(ctx: Ctx) -> web.Response:
    """The caller's own sessions only (another user's session with the same id is never shown).

    Single files are not sessions: they are stored within their request. Finished sessions are
    listed until they expire. See `infra.upload_sessions.progress_of` for how `bytes_total` is
    estimated before every chunk is in; `overall_progress` is the sum of `bytes_done` over the
    sum of `bytes_total` of the sessions listed.
    """
    raw = ctx.query_str("session_ids")
    ids: list[str] | None = None
    if raw is not None:
        ids = [s.strip() for s in raw.split(",") if s.strip()]
        if len(ids) > MAX_FILES:
            raise InvalidInput(f"at most {MAX_FILES} session ids", "session_ids")
        for sid in ids:
            if not SESSION_ID.fullmatch(sid):
                check_session_id(sid, "session_ids")
    manifests = await ctx.run(upload_sessions(ctx.services).sessions, ctx.user_id, ids)
    listed = []
    for manifest in manifests:
        item = progress_of(manifest)
        item["last_activity"] = _iso(item["last_activity"])
        listed.append(item)
    done = sum(s["bytes_done"] for s in listed)
    total = sum(s["bytes_total"] for s in listed)
    summary = {
        "total_sessions": len(listed),
        "active_sessions": sum(1 for s in listed if s["status"] not in (COMPLETED, FAILED)),
        "completed_files": sum(1 for s in listed if s["status"] == COMPLETED),
        "failed_sessions": sum(1 for s in listed if s["status"] == FAILED),
        "overall_progress": round(done / total, 4) if total else 0.0,
    }
    return ok({"sessions": listed, "summary": summary})
