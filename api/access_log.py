"""The access log: one line per request with its id, status, size and latency.

`X-Request-Id` is taken from the client when it is a sane token (so a proxy's id follows the
request through), generated otherwise, and always sent back; error logs of the request carry it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from aiohttp import web

log = logging.getLogger("darkroom.access")
REQUEST_ID = "X-Request-Id"
REQUEST_ID_KEY = web.RequestKey("request_id", str)
_SANE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")  # nothing that could forge a log line or a header


def request_id(request: web.Request) -> str:
    """This request's id (set by the middleware)."""
    return request.get(REQUEST_ID_KEY, "")


@web.middleware
async def access_log_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    given = request.headers.get(REQUEST_ID, "")
    rid = given if _SANE.fullmatch(given) else uuid.uuid4().hex
    request[REQUEST_ID_KEY] = rid
    started = time.perf_counter()
    status = 500
    size: int | None = None
    try:
        response = await handler(request)
        status = response.status
        size = response.content_length
        response.headers[REQUEST_ID] = rid
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[REQUEST_ID] = rid
        raise
    finally:
        log.info('%s %s "%s %s" %s %s %.1fms', rid, request.remote, request.method, request.path_qs[:512],
                 status, size if size is not None else "-", (time.perf_counter() - started) * 1000)
