"""Routes declared once: path, auth, request model and response model.

The same declaration registers the aiohttp handler, validates the body with its pydantic model
before the handler runs, and feeds the OpenAPI document, so the document cannot drift from what
the handlers accept.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from domain.errors import Forbidden, InvalidInput, Unauthorized
from infra.bootstrap import Services

PREFIX = "/api/v1"
MAX_INT = 2**63 - 1  # what both databases store in a BIGINT
SERVICES = web.AppKey("services", Services)
T = TypeVar("T")


@dataclass(frozen=True)
class QueryParam:
    name: str
    type: str = "string"
    description: str = ""
    required: bool = False


@dataclass
class RouteSpec:
    method: str
    path: str
    handler: Callable[..., Awaitable[web.StreamResponse]]
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    response: Any = None
    auth: bool = True
    admin: bool = False
    query: tuple[QueryParam, ...] = ()
    binary: str | None = None  # content type of a binary response
    multipart: tuple[str, ...] = field(default_factory=tuple)


ROUTES: list[RouteSpec] = []


class Ctx:
    """What a handler gets besides the request: services, the user, the validated body."""

    def __init__(self, request: web.Request, user_id: int | None, is_admin: bool, body: Any) -> None:
        self.request = request
        self.services: Services = request.app[SERVICES]
        self.user_id = user_id if user_id is not None else 0
        self.is_admin = is_admin
        self.body = body

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking work (event store, database, KDF) off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, partial(fn, *args, **kwargs))

    async def settle(self, position: int) -> None:
        """Read your writes: wait (bounded) until read models show this command's effect."""
        await self.run(self.services.wait_for, position)
        self.services.wake()

    # -- query parameters -------------------------------------------------------------------

    def query_str(self, name: str) -> str | None:
        value = self.request.query.get(name)
        return value if value not in (None, "") else None

    def query_int(self, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        raw = self.request.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise InvalidInput(f"{name} must be an integer, got {raw!r}", name) from None
        if value < minimum:
            raise InvalidInput(f"{name} must be at least {minimum}", name)
        if value > MAX_INT:
            raise InvalidInput(f"{name} is too large", name)
        if maximum is not None and value > maximum:
            value = maximum
        return value

    def query_bool(self, name: str, default: bool) -> bool:
        raw = self.request.query.get(name)
        if raw is None or raw == "":
            return default
        lowered = raw.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise InvalidInput(f"{name} must be true or false, got {raw!r}", name)

    def path_int(self, name: str) -> int:
        raw = self.request.match_info[name]
        if not re.fullmatch(r"[0-9]{1,18}", raw) or int(raw) < 1:
            raise InvalidInput(f"{name} must be a positive integer, got {raw!r}", name)
        return int(raw)


async def _read_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.read()  # client_max_size turns an oversized body into a 413
    if not raw.strip():
        payload: Any = {}
        if any(f.is_required() for f in model.model_fields.values()):
            raise InvalidInput("request body is empty; a JSON object is expected", "body")
    else:
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting or digits
            raise InvalidInput(f"request body is not valid JSON: {exc}", "body") from None
    if not isinstance(payload, dict):
        raise InvalidInput("request body must be a JSON object", "body")
    return model.model_validate(payload)


def _authenticate(request: web.Request) -> tuple[int, bool]:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <access token>'")
    claims = request.app[SERVICES].tokens.verify(token.strip())
    return claims.user_id, claims.is_admin


def route(
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    response: Any = None,
    auth: bool = True,
    admin: bool = False,
    query: tuple[QueryParam, ...] = (),
    binary: str | None = None,
    multipart: tuple[str, ...] = (),
) -> Callable[[Callable[[Ctx], Awaitable[web.StreamResponse]]], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    def register(handler: Callable[[Ctx], Awaitable[web.StreamResponse]]) -> Any:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            user_id, is_admin = (None, False)
            if auth:
                user_id, is_admin = _authenticate(request)
                if admin and not is_admin:
                    raise Forbidden("this endpoint is for administrators")
            parsed = await _read_body(request, body) if body is not None else None
            return await handler(Ctx(request, user_id, is_admin, parsed))

        ROUTES.append(
            RouteSpec(method, path, endpoint, summary, tag, body, response, auth, admin, query, binary, multipart)
        )
        return endpoint

    return register


def add_routes(app: web.Application) -> None:
    for spec in ROUTES:
        app.router.add_route(spec.method, PREFIX + spec.path, spec.handler)
