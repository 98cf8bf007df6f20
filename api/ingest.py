"""Turning a complete staged file into an asset: shared by single and batch/chunked uploads."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from api.registry import Ctx
from commands.assets import NewUpload
from domain.errors import InvalidInput, TooLarge, Unsupported
from domain.text import strip_control
from infra.media_types import sniff_file
from infra.storage import StagedFile


def clean_filename(raw: str | None) -> str:
    """The last path component of a client's file name (no directories), at most 255 chars."""
    return PurePath(strip_control(raw or "upload").replace("\\", "/")).name[:255] or "upload"


async def ingest(ctx: Ctx, staged: StagedFile, filename: str, repository_id: str) -> dict[str, Any]:
    """Recognise, keep and record a staged file; the staged file is consumed either way.

    Returns the upload result of API.md (`asset_id, task_id, status, file_name, size,
    content_hash, message`) plus `duplicate`. Bad content raises (400 empty, 415 unknown).
    """
    services = ctx.services
    try:
        if staged.size == 0:
            raise InvalidInput(f"{filename}: the file is empty", "file")
        left = await ctx.run(services.users.quota_left, ctx.user_id)
        if left is not None and staged.size > left:
            raise TooLarge(f"{filename}: {staged.size} bytes would pass your quota ({left} bytes left)", "file")
        media = await ctx.run(sniff_file, str(staged.path), filename)
        if media is None:
            raise Unsupported(
                f"{filename}: content is not a photo, video, audio file or PDF that Darkroom knows", "file"
            )
        storage_path = services.storage.relative_original_path(ctx.user_id, staged.content_hash, media.extension)
        new = NewUpload(
            owner_id=ctx.user_id, original_filename=filename, file_size=staged.size,
            mime_type=media.mime_type, content_hash=staged.content_hash,
            asset_type=media.asset_type.value, repository_id=repository_id, storage_path=storage_path,
        )

        def keep_and_record() -> Any:
            # A purge of another asset with the same file (same owner and content) may run at
            # the same time: in this process it waits on the file's lock; in another, it moves
            # the file away before deciding, so the file is checked (and put back from the
            # retained staged copy) once the asset is recorded. See processors.purge.
            with services.storage.file_lock(repository_id, storage_path):
                services.storage.keep(staged, repository_id, storage_path, retain=True)
                outcome = services.app.upload(new)
                services.storage.ensure_kept(staged, repository_id, storage_path)
                return outcome

        outcome = await ctx.run(keep_and_record)
    except BaseException:
        services.storage.discard(staged)
        raise
    services.storage.discard(staged)  # the retained copy: the repository holds the file
    await ctx.settle(outcome.position)
    return {
        "asset_id": str(outcome.asset_id),
        "task_id": outcome.task_id,
        "status": "duplicate" if outcome.duplicate else "queued",
        "file_name": filename,
        "size": staged.size,
        "content_hash": staged.content_hash,
        "message": "you already have this file" if outcome.duplicate else "file stored and queued for processing",
        "duplicate": outcome.duplicate,
    }


async def next_part(reader: Any) -> Any:
    """The next multipart part; a malformed one (no headers, a broken boundary) is a 400, which
    aiohttp's reader would otherwise let escape as a 500."""
    try:
        return await reader.next()
    except HttpProcessingError as exc:  # a part with no headers, or headers that do not parse
        raise InvalidInput(f"malformed multipart part headers: {exc.message}", "body") from None
    except (ValueError, LookupError, AssertionError) as exc:
        raise InvalidInput(f"malformed multipart body: {exc}", "body") from None
