"""Resumable (chunked) upload sessions, kept on disk until their file is whole.

Layout: `data_dir/uploads/{owner_id}/{session_id}/` holds

- `{index}.part`: one file per received chunk. A chunk is streamed into the staging area first
  (`Storage.stage`, which hashes it) and only then renamed here, so a chunk is whole or absent;
- `manifest.json`: `{session_id, owner_id, filename, total, repository_id, chunks: {index: {size,
  hash}}, expected_hash, status, created_at, last_activity, claimed_at, result, error}`, replaced
  atomically (write to a temp name, rename);
- `.lock`: the per-session lock (`fcntl.flock`). Every change of the manifest or of the parts
  happens under it. `flock` locks belong to an open file description, so two threads of one
  process exclude each other as well as two processes do.

Sessions are per owner: the owner id is part of the path, so the same session id used by two
users names two unrelated sessions, and nobody can see or append to another user's session.

Status: `uploading` (chunks still missing) → `assembling` (the request whose chunk made the set
complete has *claimed* the session; later chunks are refused with 409) → `completed` (an asset
exists; `result` names it) or `failed` (hash mismatch, unsupported content...; `error` says why).
Parts are deleted once a session is finished; the manifest stays until the session expires, so
progress can report the outcome and a late chunk gets a 409 rather than starting over.

Expiry: a session idle (no chunk, no state change) longer than `upload_session_ttl_seconds` is
deleted by `expire(now)`, whatever its status. A session that a crashed server left in
`assembling` is therefore cleaned up by expiry too.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blake3 import blake3

from domain.errors import Conflict, InvalidInput, TooLarge, TooManyRequests
from infra.settings import Settings
from infra.storage import StagedFile, Storage

SESSION_ID = re.compile(r"[A-Za-z0-9-]{1,128}")
MAX_CHUNKS = 100_000
COPY_PIECE = 1024 * 1024  # assembly copies in pieces of this size: memory stays flat
EXPIRY_INTERVAL_SECONDS = 60.0

UPLOADING = "uploading"
ASSEMBLING = "assembling"
COMPLETED = "completed"
FAILED = "failed"

MIB = 1024 * 1024
GIB = 1024 * MIB


def check_session_id(raw: str, field_name: str) -> str:
    if not SESSION_ID.fullmatch(raw):
        raise InvalidInput(
            f"session id {raw[:140]!r} is invalid: use 1-128 characters of A-Z, a-z, 0-9 and '-'",
            field_name,
        )
    return raw


@dataclass
class IncomingChunk:
    """A chunk received in this request, staged (hashed, measured) but not yet in its session."""

    index: int
    staged: StagedFile
    filename: str | None = None


@dataclass
class SessionUpdate:
    """What one request brings to one session: chunks and/or the expected hash of the file."""

    session_id: str
    total: int | None = None  # None: no chunk in this request, only `hash_{session_id}`
    chunks: list[IncomingChunk] = field(default_factory=list)
    expected_hash: str | None = None


@dataclass(frozen=True)
class CommitOutcome:
    session_id: str
    filename: str
    repository_id: str
    total: int
    received: int
    bytes_received: int
    claimed: bool  # this commit completed the set of chunks: the caller must assemble it
    expected_hash: str | None


# -- machine-derived client configuration --------------------------------------------------------


def _cgroup_memory_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit():
            return int(raw)
    return None


def machine_memory() -> tuple[int, int]:
    """(total, available) bytes of memory: physical memory capped by a cgroup limit, and
    `MemAvailable` from /proc/meminfo (half the total when that cannot be read)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        total = 0
    limit = _cgroup_memory_limit()
    if limit is not None and (total <= 0 or limit < total):
        total = limit
    available = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        available = 0
    if total <= 0:
        total = available or 2 * GIB
    if available <= 0 or available > total:
        available = total // 2
    return total, available


def machine_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def batch_config(total_memory: int | None = None, available_memory: int | None = None,
                 cpus: int | None = None) -> dict[str, int]:
    """How a client should cut and pace a batch upload on this machine.

    With T = total memory (physical, capped by the cgroup limit), A = available memory
    (`MemAvailable`) and C = usable CPUs:

    - `chunk_size`: 8 MiB when T >= 8 GiB, 4 MiB when T >= 2 GiB, else 2 MiB;
    - `max_concurrent` (files uploaded at once): C clamped to 2..8;
    - `memory_buffer` (bytes of chunk data to have in flight at most): A / 16 clamped to
      4 x chunk_size .. 512 MiB;
    - `max_in_flight_requests`: memory_buffer / chunk_size clamped to 1 .. 2 x max_concurrent,
      so that max_in_flight_requests x chunk_size <= memory_buffer;
    - `merge_concurrency` (files the server assembles at once; it also enforces this): C / 2
      clamped to 1..4.
    """
    if total_memory is None or available_memory is None:
        measured_total, measured_available = machine_memory()
        total_memory = measured_total if total_memory is None else total_memory
        available_memory = measured_available if available_memory is None else available_memory
    cpus = machine_cpus() if cpus is None else max(1, cpus)
    if total_memory >= 8 * GIB:
        chunk_size = 8 * MIB
    elif total_memory >= 2 * GIB:
        chunk_size = 4 * MIB
    else:
        chunk_size = 2 * MIB
    max_concurrent = _clamp(cpus, 2, 8)
    memory_buffer = _clamp(available_memory // 16, 4 * chunk_size, 512 * MIB)
    max_in_flight = _clamp(memory_buffer // chunk_size, 1, 2 * max_concurrent)
    return {
        "chunk_size": chunk_size,
        "max_concurrent": max_concurrent,
        "max_in_flight_requests": max_in_flight,
        "memory_buffer": memory_buffer,
        "merge_concurrency": _clamp(cpus // 2, 1, 4),
    }


# -- sessions ------------------------------------------------------------------------------------


class UploadSessions:
    """Chunked upload sessions of every user, under `settings.data_dir / "uploads"`."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self._merge_slots = threading.BoundedSemaphore(batch_config()["merge_concurrency"])
        self._expiry_guard = threading.Lock()
        self._last_expiry: float | None = None

    @property
    def root(self) -> Path:
        return self.settings.data_dir / "uploads"

    def _dir(self, owner_id: int, session_id: str) -> Path:
        check_session_id(session_id, "session_id")
        return self.root / str(int(owner_id)) / session_id

    # -- reading (no lock: the manifest is always replaced whole) ----------------------------

    @staticmethod
    def _read_manifest(directory: Path) -> dict[str, Any] | None:
        try:
            data = json.loads((directory / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def manifest(self, owner_id: int, session_id: str) -> dict[str, Any] | None:
        return self._read_manifest(self._dir(owner_id, session_id))

    def sessions(self, owner_id: int, session_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The manifests of the owner's sessions (all, or those named), oldest activity first."""
        owner_dir = self.root / str(int(owner_id))
        if session_ids is None:
            try:
                names = sorted(p.name for p in owner_dir.iterdir() if p.is_dir())
            except FileNotFoundError:
                names = []
        else:
            names = list(dict.fromkeys(session_ids))
        found = []
        for name in names:
            if not SESSION_ID.fullmatch(name):
                continue
            manifest = self._read_manifest(owner_dir / name)
            if manifest is not None:
                found.append(manifest)
        return sorted(found, key=lambda m: (m.get("last_activity", 0), m["session_id"]))

    # -- locking -------------------------------------------------------------------------------

    @staticmethod
    def _acquire(directory: Path, blocking: bool = True, create: bool = True) -> int | None:
        """Lock a session directory; None when not blocking and it is busy (or it is gone).

        The lock file lives in the directory, and expiry deletes the directory while holding
        the lock; a waiter that then gets the lock of a deleted file notices (the path no
        longer names the inode it locked) and starts over.
        """
        lock = directory / ".lock"
        while True:
            if create:
                directory.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(lock, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
            except FileNotFoundError:
                if not create:
                    return None
                continue  # removed between mkdir and open
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return None
                raise
            try:
                held = os.fstat(fd)
                current = os.stat(lock)
                same = (held.st_ino, held.st_dev) == (current.st_ino, current.st_dev)
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)
            if not create:
                return None

    @contextmanager
    def _locked(self, directories: list[Path]) -> Iterator[None]:
        """Hold the locks of several sessions (taken in sorted order: no deadlock). A directory
        left without a manifest (a new session whose request failed) is removed on release."""
        held: list[tuple[Path, int]] = []
        try:
            for directory in sorted(set(directories)):
                fd = self._acquire(directory)
                assert fd is not None
                held.append((directory, fd))
            yield
        finally:
            for directory, fd in reversed(held):
                try:
                    if not (directory / "manifest.json").exists():
                        shutil.rmtree(directory, ignore_errors=True)
                finally:
                    os.close(fd)

    @staticmethod
    def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
        tmp = directory / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, separators=(",", ":")))
        os.replace(tmp, directory / "manifest.json")

    # -- checks shared by the early (unlocked) and the final (locked) pass ----------------------

    def _check_open(self, manifest: dict[str, Any], session_id: str, total: int | None) -> None:
        status = manifest.get("status")
        if status != UPLOADING:
            what = {ASSEMBLING: "has all its chunks and is being assembled", COMPLETED: "is completed",
                    FAILED: "has failed"}.get(str(status), f"is {status}")
            raise Conflict(f"upload session {session_id} {what}; it accepts no more chunks "
                           "(use a new session id to upload again)", session_id)
        if total is not None and total != manifest["total"]:
            raise InvalidInput(f"upload session {session_id} has {manifest['total']} chunks, "
                               f"this request says {total}", session_id)

    def _check_session_count(self, owner_id: int, new_ids: list[str]) -> None:
        """At most `max_upload_sessions_per_user` sessions open per user: each one holds disk
        until it completes or expires, so an unbounded number is a way to fill the disk."""
        if not new_ids:
            return
        open_now = sum(1 for m in self.sessions(owner_id) if m.get("status") == UPLOADING)
        cap = self.settings.max_upload_sessions_per_user
        if open_now + len(new_ids) > cap:
            raise TooManyRequests(
                f"you have {open_now} upload sessions open (at most {cap}); finish them or let them "
                "expire before starting more", 60, new_ids[0])

    def _too_large(self, session_id: str) -> TooLarge:
        return TooLarge(f"upload session {session_id}: the file would be larger than the limit of "
                        f"{self.settings.max_upload_bytes} bytes", session_id)

    def room(self, owner_id: int, session_id: str, total: int, index: int, pending: dict[int, int]) -> int:
        """Bytes that chunk `index` may have at most, before its bytes are read. Refuses early
        (409, 400, 413) what the commit would refuse. `pending`: sizes of this session's
        chunks received earlier in the same request."""
        manifest = self.manifest(owner_id, session_id)
        used = sum(size for i, size in pending.items() if i != index)
        if manifest is not None:
            self._check_open(manifest, session_id, total)
            used += sum(c["size"] for i, c in manifest["chunks"].items()
                        if int(i) != index and int(i) not in pending)
        room = self.settings.max_upload_bytes - used
        if room < 0:
            raise self._too_large(session_id)
        return room

    # -- commit ----------------------------------------------------------------------------------

    def commit(self, owner_id: int, updates: list[SessionUpdate], repository_id: str | None,
               default_repository_id: str) -> dict[str, CommitOutcome]:
        """Store the chunks and expected hashes of one request, all or nothing.

        Every session named is locked, every rule checked (409 finished session or a repeated
        chunk with other bytes, 400 total or repository changed or hash for no session, 413
        total size), and only then are parts renamed into place and manifests written. A
        repeated chunk with the same bytes is accepted and its copy discarded. The commit that
        completes a session's set of chunks claims it (`assembling`) for its caller.
        """
        dirs = {u.session_id: self._dir(owner_id, u.session_id) for u in updates}
        limit = self.settings.max_upload_bytes
        now = time.time()
        with self._locked(list(dirs.values())):
            plans: list[tuple[SessionUpdate, dict[str, Any], list[IncomingChunk]]] = []
            self._check_session_count(owner_id, [sid for sid, d in dirs.items()
                                                 if self._read_manifest(d) is None])
            for update in updates:
                sid = update.session_id
                manifest = self._read_manifest(dirs[sid])
                if manifest is None:
                    if update.total is None:
                        raise InvalidInput(f"hash_{sid} names no upload session of yours", f"hash_{sid}")
                    manifest = {
                        "session_id": sid, "owner_id": int(owner_id), "filename": None,
                        "total": update.total, "repository_id": repository_id or default_repository_id,
                        "chunks": {}, "expected_hash": None, "status": UPLOADING,
                        "created_at": now, "last_activity": now, "claimed_at": None,
                        "result": None, "error": None,
                    }
                else:
                    self._check_open(manifest, sid, update.total)
                    if repository_id is not None and repository_id != manifest["repository_id"]:
                        raise InvalidInput(
                            f"upload session {sid} stores into repository {manifest['repository_id']}, "
                            f"not {repository_id}", "repository_id")
                fresh: list[IncomingChunk] = []
                for chunk in update.chunks:
                    known = manifest["chunks"].get(str(chunk.index))
                    if known is None:
                        fresh.append(chunk)
                    elif known["hash"] != chunk.staged.content_hash or known["size"] != chunk.staged.size:
                        raise Conflict(f"upload session {sid} already has chunk {chunk.index} with "
                                       "different content", f"chunk_{sid}_{chunk.index}")
                size = sum(c["size"] for c in manifest["chunks"].values()) + sum(c.staged.size for c in fresh)
                if size > limit:
                    raise self._too_large(sid)
                plans.append((update, manifest, fresh))

            outcomes: dict[str, CommitOutcome] = {}
            for update, manifest, fresh in plans:
                sid = update.session_id
                directory = dirs[sid]
                for chunk in fresh:
                    os.replace(chunk.staged.path, directory / f"{chunk.index}.part")
                    manifest["chunks"][str(chunk.index)] = {"size": chunk.staged.size,
                                                            "hash": chunk.staged.content_hash}
                for chunk in update.chunks:
                    if chunk.filename and (manifest["filename"] is None or chunk.index == 0):
                        manifest["filename"] = chunk.filename
                    self.storage.discard(chunk.staged)  # a repeated chunk's copy; no-op once moved
                if update.expected_hash is not None:
                    manifest["expected_hash"] = update.expected_hash
                manifest["last_activity"] = now
                claimed = len(manifest["chunks"]) == manifest["total"]
                if claimed:
                    manifest["status"] = ASSEMBLING
                    manifest["claimed_at"] = now
                self._write_manifest(directory, manifest)
                outcomes[sid] = CommitOutcome(
                    session_id=sid, filename=manifest["filename"] or "upload",
                    repository_id=manifest["repository_id"], total=manifest["total"],
                    received=len(manifest["chunks"]),
                    bytes_received=sum(c["size"] for c in manifest["chunks"].values()),
                    claimed=claimed, expected_hash=manifest["expected_hash"],
                )
        return outcomes

    # -- assembly --------------------------------------------------------------------------------

    def assemble(self, owner_id: int, session_id: str) -> StagedFile:
        """Concatenate the parts of a claimed session, in order, into a staging file while
        hashing it (BLAKE3), in pieces of `COPY_PIECE` bytes. At most `merge_concurrency`
        assemblies run at once."""
        directory = self._dir(owner_id, session_id)
        manifest = self._read_manifest(directory)
        if manifest is None or manifest["status"] != ASSEMBLING:
            raise Conflict(f"upload session {session_id} is not ready to be assembled", session_id)
        with self._merge_slots:
            path = self.storage.staging / f"{uuid.uuid4().hex}.part"
            hasher = blake3()
            size = 0
            piece = bytearray(COPY_PIECE)
            view = memoryview(piece)
            try:
                with open(path, "wb") as out:
                    for index in range(manifest["total"]):
                        expected = manifest["chunks"][str(index)]["size"]
                        got = 0
                        try:
                            src = open(directory / f"{index}.part", "rb")
                        except FileNotFoundError:
                            raise Conflict(f"upload session {session_id}: chunk {index} is missing on "
                                           "the server; upload the file again with a new session id",
                                           session_id) from None
                        with src:
                            while n := src.readinto(piece):
                                hasher.update(view[:n])
                                out.write(view[:n])
                                got += n
                        if got != expected:
                            raise Conflict(f"upload session {session_id}: chunk {index} has {got} bytes "
                                           f"on the server, {expected} were received", session_id)
                        size += got
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            finally:
                view.release()
        return StagedFile(path, size, hasher.hexdigest())

    def finish(self, owner_id: int, session_id: str, status: str, *, result: dict[str, Any] | None = None,
               error: str | None = None) -> None:
        """Mark a claimed session completed or failed and delete its parts."""
        directory = self._dir(owner_id, session_id)
        with self._locked([directory]):
            manifest = self._read_manifest(directory)
            if manifest is None:
                return
            manifest.update(status=status, result=result, error=error, last_activity=time.time())
            self._write_manifest(directory, manifest)
            for part in directory.glob("*.part"):
                part.unlink(missing_ok=True)

    # -- expiry ----------------------------------------------------------------------------------

    def _last_activity(self, directory: Path) -> float:
        manifest = self._read_manifest(directory)
        if manifest is not None:
            return float(manifest.get("last_activity") or 0.0)
        try:
            return directory.stat().st_mtime
        except FileNotFoundError:
            return float("inf")

    def expire(self, now: float | None = None) -> int:
        """Delete every session idle for longer than the TTL (at `now`, default the present);
        returns how many. A session busy right now (its lock held) is left for next time."""
        now = time.time() if now is None else now
        ttl = self.settings.upload_session_ttl_seconds
        removed = 0
        try:
            owners = [p for p in self.root.iterdir() if p.is_dir()]
        except FileNotFoundError:
            return 0
        for owner_dir in owners:
            try:
                directories = [p for p in owner_dir.iterdir() if p.is_dir()]
            except FileNotFoundError:
                continue
            for directory in directories:
                if self._last_activity(directory) + ttl > now:
                    continue
                fd = self._acquire(directory, blocking=False, create=False)
                if fd is None:
                    continue
                try:
                    if self._last_activity(directory) + ttl <= now:  # still idle, under the lock
                        shutil.rmtree(directory, ignore_errors=True)
                        removed += 1
                finally:
                    os.close(fd)
            try:
                owner_dir.rmdir()  # only when empty
            except OSError:
                pass
        return removed

    def maybe_expire(self, now: float | None = None) -> int:
        """`expire`, at most once per `EXPIRY_INTERVAL_SECONDS` (cheap to call on every request)."""
        tick = time.monotonic()
        with self._expiry_guard:
            if self._last_expiry is not None and tick - self._last_expiry < EXPIRY_INTERVAL_SECONDS:
                return 0
            self._last_expiry = tick
        return self.expire(now)


# -- progress ------------------------------------------------------------------------------------


def progress_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """One session's progress.

    `bytes_done` is the sum of the received chunks. `bytes_total` is exact once every chunk is
    in (and for finished sessions). Before that it is estimated, assuming (as clients that follow
    `chunk_size` do) that every chunk but the last has the same size: with the last chunk and
    one other in, (total - 1) x that size + the last chunk's size, which is then exact for such
    clients; without the last chunk, total x the largest received chunk; with only the last
    chunk, total x its size. It is never less than `bytes_done`. `progress` = bytes_done /
    bytes_total, a fraction from 0 to 1 (1 for a completed session).
    """
    chunks = {int(i): int(c["size"]) for i, c in manifest["chunks"].items()}
    total = int(manifest["total"])
    done = sum(chunks.values())
    if len(chunks) >= total:
        bytes_total = done
    else:
        full = max((s for i, s in chunks.items() if i != total - 1), default=None)
        last = chunks.get(total - 1)
        if full is not None and last is not None:
            estimate = (total - 1) * full + last
        elif full is not None:
            estimate = total * full
        else:
            estimate = (last or 0) * total
        bytes_total = max(estimate, done)
    status = manifest["status"]
    if status == COMPLETED:
        progress = 1.0
    else:
        progress = round(done / bytes_total, 4) if bytes_total else 0.0
    return {
        "session_id": manifest["session_id"],
        "filename": manifest.get("filename") or "upload",
        "status": status,
        "progress": progress,
        "bytes_done": done,
        "bytes_total": bytes_total,
        "received_chunks": len(chunks),
        "total_chunks": total,
        "last_activity": manifest.get("last_activity"),
        "asset_id": (manifest.get("result") or {}).get("asset_id"),
        "error": manifest.get("error"),
    }
