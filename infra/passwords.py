"""Password hashing with argon2id, a memory-hard KDF (argon2-cffi), in a pool of its own.

Each hash costs `password_memory_kib` of memory and a core for a while. Run in the shared
executor, a login flood took every thread the API needs for its event store and files; here the
KDF has `password_workers` threads of its own and at most `password_queue` calls waiting, and a
call past that is refused at once (429) instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from domain.errors import TooManyRequests
from infra.settings import Settings


def _yield_cpu() -> None:
    """Run this KDF thread at the lowest CPU priority (Linux sets nice per thread): when cores
    are scarce the API's threads run first, and the KDF takes what is left."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed: the pool bound still holds
        pass


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            memory_cost=settings.password_memory_kib, time_cost=settings.password_time_cost
        )
        self._pool = ThreadPoolExecutor(max_workers=max(1, settings.password_workers),
                                        thread_name_prefix="darkroom-kdf", initializer=_yield_cpu)
        self._room = threading.BoundedSemaphore(max(1, settings.password_workers + settings.password_queue))
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def dummy_hash(self) -> str:
        """A hash of nothing anybody knows: verifying against it costs what a real check costs."""
        if self._dummy is None:
            self._dummy = self.hash("not-a-real-password")
        return self._dummy

    async def hash_async(self, password: str) -> str:
        """`hash` in the KDF pool; 429 when the pool's queue is full."""
        return await self._submit(self.hash, password)

    async def verify_async(self, password_hash: str | None, password: str) -> bool:
        """`verify` in the KDF pool. With no hash (unknown user) it checks against a dummy hash,
        so a failed login takes the same time whether or not the user exists."""
        if password_hash is None:
            await self._submit(self.verify, await self._submit(self.dummy_hash), password)
            return False
        return await self._submit(self.verify, password_hash, password)

    async def _submit(self, fn, *args):  # type: ignore[no-untyped-def]
        if not self._room.acquire(blocking=False):
            raise TooManyRequests("the server is busy checking passwords; retry shortly", 1)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._room.release()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
