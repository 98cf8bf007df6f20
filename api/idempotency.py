"""`Idempotency-Key` on creating POSTs: the same key from the same user with the same request
returns the first answer and creates nothing new; with another request, 422.

A client that lost an answer (a timeout, a dropped connection) retries with the key and gets what
the first attempt did, instead of a second album. Only successes are kept (infra.idempotency);
a failed attempt releases its key for the retry.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from aiohttp import web

from domain.errors import InvalidInput
from infra.idempotency import HEADER, IdempotencyStore


def idempotency_key(request: web.Request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not 1 <= len(key) <= 255:
        raise InvalidInput("Idempotency-Key must be 1 to 255 characters, not only blanks", HEADER)
    return key


async def fingerprint(request: web.Request, multipart: bool) -> str:
    """What makes two requests "the same": the JSON body's bytes; for an upload (which may be
    gigabytes, and whose multipart boundary differs per attempt) its length and declared hash."""
    if multipart:
        return f"upload:{request.content_length}:{request.headers.get('X-Content-Hash', '').lower()}"
    return "json:" + hashlib.sha256(await request.read()).hexdigest()


async def run_once(request: web.Request, services: Any, user_id: int, operation: str, multipart: bool,
                   handler: Any) -> web.StreamResponse:
    """Run `handler` under the request's Idempotency-Key (or plainly, when it has none)."""
    key = idempotency_key(request)
    if key is None:
        return await handler()
    loop = asyncio.get_running_loop()
    store: IdempotencyStore = services.idempotency
    request_print = await fingerprint(request, multipart)
    replay = await loop.run_in_executor(None, store.claim, user_id, operation, key, request_print)
    if replay is not None:
        return web.Response(status=replay.status, body=replay.body, content_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
    try:
        response = await handler()
    except BaseException:
        await loop.run_in_executor(None, store.release, user_id, operation, key)
        raise
    if isinstance(response, web.Response) and 200 <= response.status < 300 and isinstance(response.body, bytes):
        await loop.run_in_executor(None, store.complete, user_id, operation, key, response.status, response.body)
    else:
        await loop.run_in_executor(None, store.release, user_id, operation, key)
    return response
