"""Blob storage: repositories of originals on the local filesystem, and the staging area.

An upload is streamed into `staging/` while it is hashed (BLAKE3) and measured, so memory stays
flat whatever the file size. Once accepted it is moved (an atomic rename) into its repository at a
content-addressed path: the original is kept byte for byte, and a retry of the same upload lands
on the same path.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from blake3 import blake3

from domain.errors import InvalidInput, TooLarge
from infra.settings import Settings, SettingsError

_STAGE_BUFFER = 1024 * 1024  # bytes gathered on the loop before one write+hash in the executor
DEFAULT_REPOSITORY_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "darkroom:repository:default"))


@dataclass(frozen=True)
class StagedFile:
    """A complete upload in the staging area, not yet an asset."""

    path: Path
    size: int
    content_hash: str


def parse_repositories(raw: str) -> dict[str, Path]:
    """`{"id": "/path"}` from the `repositories` setting; errors name the setting."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"DARKROOM_REPOSITORIES is not a JSON object: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) and k for k, v in value.items()):
        raise SettingsError('DARKROOM_REPOSITORIES must look like {"<repository id>": "/path/to/dir"}')
    return {k: Path(v) for k, v in value.items()}


class Storage:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.data_dir
        self.staging = self.root / "staging"
        self.repositories: dict[str, Path] = {
            DEFAULT_REPOSITORY_ID: self.root / "repositories" / "default"
        }
        self.repositories.update(parse_repositories(settings.repositories))
        self.staging.mkdir(parents=True, exist_ok=True)
        for path in self.repositories.values():
            (path / "originals").mkdir(parents=True, exist_ok=True)

    def repository(self, repository_id: str | None) -> str:
        """The id of the repository to use; an unknown one is a 400."""
        if not repository_id:
            return DEFAULT_REPOSITORY_ID
        if repository_id not in self.repositories:
            raise InvalidInput(f"unknown repository_id {repository_id!r}", "repository_id")
        return repository_id

    async def stage(self, chunks: AsyncIterator[bytes], max_size: int) -> StagedFile:
        """Stream `chunks` to a staging file, hashing on the way. Past `max_size`: 413.

        Writing and hashing run in the executor, a buffer of about a MiB at a time: on the event
        loop they held every other request up for as long as a disk write or a hash took."""
        loop = asyncio.get_running_loop()
        path = self.staging / f"{uuid.uuid4().hex}.part"
        hasher = blake3()
        size = 0
        buffer: list[bytes] = []
        buffered = 0

        def write(out: BinaryIO, parts: list[bytes]) -> None:
            for part in parts:
                hasher.update(part)
                out.write(part)

        try:
            out = await loop.run_in_executor(None, open, path, "wb")
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_size:
                        raise TooLarge(f"file is larger than the limit of {max_size} bytes", "file")
                    buffer.append(chunk)
                    buffered += len(chunk)
                    if buffered >= _STAGE_BUFFER:
                        await loop.run_in_executor(None, write, out, buffer)
                        buffer, buffered = [], 0
                if buffer:
                    await loop.run_in_executor(None, write, out, buffer)
            finally:
                await loop.run_in_executor(None, out.close)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return StagedFile(path, size, hasher.hexdigest())

    def relative_original_path(self, owner_id: int, content_hash: str, extension: str) -> str:
        return f"originals/{owner_id}/{content_hash[:2]}/{content_hash}{extension}"

    def keep(self, staged: StagedFile, repository_id: str, relative_path: str) -> None:
        """Move a staged file into its repository (durably) before any event names it."""
        target = self.repositories[repository_id] / relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(staged.path, "rb") as f:
            os.fsync(f.fileno())
        try:
            os.replace(staged.path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # The repository is on another filesystem: copy beside the target, then rename.
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
            with open(staged.path, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, target)
            staged.path.unlink(missing_ok=True)
        # The rename itself must survive a power cut before an event names the file.
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def discard(self, staged: StagedFile) -> None:
        staged.path.unlink(missing_ok=True)

    def path_of(self, repository_id: str, relative_path: str) -> Path:
        return self.repositories[repository_id] / relative_path
