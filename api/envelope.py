"""The response envelope `{code, message, data, error}` and the mapping of errors to statuses."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

import psycopg
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from eventsourcing.persistence import ConnectionUnavailableError
from eventsourcing.persistence import InterfaceError as EventStoreInterfaceError
from eventsourcing.persistence import OperationalError as EventStoreOperationalError
from pydantic import ValidationError

from domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooLarge,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    Unprocessable,
    Unsupported,
)
from infra import json_codec

log = logging.getLogger("darkroom.api")
RATE_LIMIT_DELAY = web.AppKey("rate_limit_delay", float)  # seconds a 429 is held (a tarpit)

STATUS_OF: dict[type[DomainError], int] = {
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    Unsupported: 415,
    Unprocessable: 422,
    TooManyRequests: 429,
    Unavailable: 503,
}


def _json_response(body: dict[str, Any], status: int) -> web.Response:
    # Bytes straight from the encoder: web.json_response would want a str and encode it again.
    return web.Response(body=json_codec.dumps(body), status=status, content_type="application/json",
                        charset="utf-8")


def ok(data: Any = None, message: str = "success", status: int = 200) -> web.Response:
    body: dict[str, Any] = {"code": 0, "message": message}
    if data is not None:
        body["data"] = data
    return _json_response(body, status)


def fail(status: int, message: str, error: str | None = None, **extra: str) -> web.Response:
    body: dict[str, Any] = {"code": status, "message": message}
    if error:
        body["error"] = error
    response = _json_response(body, status)
    response.headers.update(extra)
    return response


def validation_message(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "body"
    details = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )
    return f"invalid field '{field}'", details


@web.middleware
async def envelope_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn every failure into an envelope with a real status; never a 500 for bad input."""
    try:
        return await handler(request)
    except TooManyRequests as exc:
        # Tarpit: a flooder that loops on 429s is slowed to one request per delay per connection.
        delay = request.app.get(RATE_LIMIT_DELAY, 0.0)
        if delay > 0:
            await asyncio.sleep(min(float(exc.retry_after), delay))
        error = f"field '{exc.field}': {exc.message}" if exc.field else exc.message
        return fail(429, exc.message, error, **{"Retry-After": str(exc.retry_after)})
    except DomainError as exc:
        status = STATUS_OF.get(type(exc), 400)
        error = f"field '{exc.field}': {exc.message}" if exc.field else exc.message
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after)}
        elif isinstance(exc, Unavailable):
            headers = {"Retry-After": "1"}
        return fail(status, exc.message, error, **headers)
    except ValidationError as exc:
        message, details = validation_message(exc)
        return fail(400, message, details)
    except web.HTTPRequestEntityTooLarge as exc:
        return fail(413, "request body too large", exc.text)
    except HttpProcessingError as exc:
        # A body aiohttp cannot parse (a multipart part with bad or no headers, say).
        return fail(400, "malformed request body", getattr(exc, "message", None) or str(exc) or type(exc).__name__)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return fail(exc.status, exc.reason, exc.text if exc.text != f"{exc.status}: {exc.reason}" else None)
    except (ConnectionUnavailableError, EventStoreOperationalError, EventStoreInterfaceError) as exc:
        # The exception text names hosts and users: it goes to the log, never to the client.
        log.warning("event store unavailable on %s %s: %r", request.method, request.path, exc)
        return fail(503, "the event store is unavailable or busy; retry shortly", "backend: event store",
                    **{"Retry-After": "1"})
    except (psycopg.OperationalError, psycopg.InterfaceError, sqlite3.OperationalError) as exc:
        log.warning("read-model database unavailable on %s %s: %r", request.method, request.path, exc)
        return fail(503, "the database is unavailable or busy; retry shortly", "backend: read-model database",
                    **{"Retry-After": "1"})
    except Exception:
        from api.access_log import request_id

        log.exception("unhandled error on %s %s (request %s)", request.method, request.path,
                      request_id(request) or "-")
        return fail(500, "internal server error", "see the server log")
