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
import threading
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from blake3 import blake3

from domain.errors import InvalidInput, NotFound, TooLarge
from domain.library import library_of
from infra.library_fs import resolve_in_library
from infra.settings import Settings, SettingsError


def hash_file(path: Path) -> str:
    """The BLAKE3 content hash of a file on disk (the hash uploads record), read a MiB at a time."""
    hasher = blake3()
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            hasher.update(chunk)
    return hasher.hexdigest()

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
        # Striped locks per file: an upload keeping a file and recording its asset, and a purge
        # deciding whether to remove that file, never interleave (in this process).
        self._file_locks = [threading.Lock() for _ in range(64)]

    def file_lock(self, repository_id: str, relative_path: str) -> threading.Lock:
        """The lock of one stored file (see `processors.purge`)."""
        key = f"{repository_id}/{relative_path}".encode()
        return self._file_locks[zlib.crc32(key) % len(self._file_locks)]

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

    def keep(self, staged: StagedFile, repository_id: str, relative_path: str, retain: bool = False) -> None:
        """Move a staged file into its repository (durably) before any event names it. With
        `retain`, the staged file stays too (a hard link, or a copy across filesystems), so the
        caller can put the file back should a purge remove it before the asset is recorded
        (`ensure_kept`); the caller discards the staged file afterwards."""
        target = self.repositories[repository_id] / relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(staged.path, "rb") as f:
            os.fsync(f.fileno())
        try:
            if retain:
                tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
                os.link(staged.path, tmp)
                os.replace(tmp, target)
            else:
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
            if not retain:
                staged.path.unlink(missing_ok=True)
        # The rename itself must survive a power cut before an event names the file.
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def ensure_kept(self, staged: StagedFile, repository_id: str, relative_path: str) -> bool:
        """After the asset naming a kept file was recorded: put the file back if a purge of
        another asset with the same file removed it meanwhile (True then). See processors.purge."""
        if self.path_of(repository_id, relative_path).exists():
            return False
        self.keep(staged, repository_id, relative_path, retain=True)
        return True

    def tombstone(self, repository_id: str, relative_path: str) -> Path:
        """Where a purge moves a file while it decides (see processors.purge)."""
        target = self.path_of(repository_id, relative_path)
        return target.with_name(f".{target.name}.purging")

    def discard(self, staged: StagedFile) -> None:
        staged.path.unlink(missing_ok=True)

    def path_of(self, repository_id: str, relative_path: str) -> Path:
        library_id = library_of(repository_id)
        if library_id is not None:
            # An external library's file, read in place; never a path outside the library.
            folder = self.library_folder(library_id)
            path = resolve_in_library(folder, relative_path) if folder is not None else None
            if path is None:
                raise NotFound(f"the file of this asset is not in library {library_id}")
            return path
        return self.repositories[repository_id] / relative_path

    # The folder of an external library by id (the composition root wires it to the libraries
    # read model); None for a library that does not exist (any more).
    library_folder: Callable[[int], Path | None] = staticmethod(lambda library_id: None)  # type: ignore[assignment]

    def writes_to(self, repository_id: str) -> bool:
        """Whether Darkroom wrote the originals of this repository (and so may ever delete
        them): never for an external library, whose files are the user's."""
        return library_of(repository_id) is None
