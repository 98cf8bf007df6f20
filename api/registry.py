"""Routes declared once: path, auth, request model and response model.

The same declaration registers the aiohttp handler, validates the body with its pydantic model
before the handler runs, and feeds the OpenAPI document, so the document cannot drift from what
the handlers accept.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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


_INTEGER = re.compile(r"^[+-]?[0-9]+(\.0*)?$")  # JSON Schema counts 12.0 as an integer


def parse_int(raw: str, name: str) -> int:
    """An integer query or path value; `12.0` is one too (JSON Schema says so, and generated
    clients send it)."""
    if not _INTEGER.fullmatch(raw.strip()):
        raise InvalidInput(f"{name} must be an integer, got {raw!r}", name)
    return int(raw.strip().split(".")[0])


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter. The one declaration is both what the OpenAPI document
    says and what the registry checks before the handler runs, so the two cannot drift."""

    name: str
    type: str = "string"  # string | integer | boolean
    description: str = ""
    required: bool = False
    where: str = "query"  # query | path | header
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    clamp: bool = False  # a value above maximum is lowered to it, not refused
    enum: tuple[str, ...] = ()
    any_case: bool = False  # the enum is matched in any letter case
    format: str | None = None
    pattern: str | None = None
    max_length: int | None = None
    any_of: tuple[dict[str, Any], ...] = ()  # e.g. a date or a date-time: ({"format": "date"}, ...)
    example: Any = None

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": self.type}
        for key, value in (("default", self.default), ("minimum", self.minimum),
                           ("maximum", self.maximum), ("format", self.format),
                           ("pattern", self.pattern), ("maxLength", self.max_length)):
            if value is not None:
                schema[key] = value
        if self.type == "integer":
            schema.setdefault("maximum", MAX_INT)
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.any_of:
            schema["anyOf"] = list(self.any_of)
        return schema

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "in": self.where,
                               "required": self.required or self.where == "path",
                               "schema": self.schema()}
        if self.description:
            doc["description"] = self.description
        if self.example is not None:
            doc["example"] = self.example
        return doc

    def check(self, raw: str) -> None:
        """Refuse what the document does not allow (a 400 naming the parameter)."""
        if self.type == "integer":
            value = parse_int(raw, self.name)
            if self.minimum is not None and value < self.minimum:
                raise InvalidInput(f"{self.name} must be at least {self.minimum}, got {value}", self.name)
            if value > MAX_INT or (self.maximum is not None and value > self.maximum and not self.clamp):
                raise InvalidInput(f"{self.name} is too large: at most {self.maximum or MAX_INT}, got {value}",
                                   self.name)
        elif self.type == "boolean":
            if raw.lower() not in _TRUE + _FALSE:
                raise InvalidInput(f"{self.name} must be true or false, got {raw!r}", self.name)
        else:
            if self.max_length is not None and len(raw) > self.max_length:
                raise InvalidInput(f"{self.name} is longer than {self.max_length} characters", self.name)
            if self.enum and raw not in self.enum and not (self.any_case and raw.lower() in {e.lower() for e in self.enum}):
                raise InvalidInput(f"{self.name} must be one of {', '.join(self.enum)}, got {raw!r}", self.name)
            if self.pattern is not None and not re.search(self.pattern, raw):
                raise InvalidInput(f"{self.name} is malformed: {raw!r}", self.name)


def QueryParam(name: str, type: str = "string", description: str = "", **schema: Any) -> Param:
    """A query parameter (see Param)."""
    return Param(name, type, description, where="query", **schema)


def PathParam(name: str, type: str = "string", description: str = "", **schema: Any) -> Param:
    """A path parameter (see Param); always required."""
    return Param(name, type, description, required=True, where="path", **schema)


EXAMPLE_ASSET_ID = "6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"


def asset_id_param(name: str = "id") -> Param:
    return PathParam(name, description="an asset id (a UUID)", format="uuid", example=EXAMPLE_ASSET_ID)


def positive_id_param(name: str, what: str) -> Param:
    return PathParam(name, "integer", f"{what} id (a positive integer)", minimum=1, example=1)


DATE_OR_DATE_TIME = ({"format": "date"}, {"format": "date-time"})


def page_params(default: int = 20, maximum: int = 100) -> tuple[Param, Param]:
    return (
        QueryParam("limit", "integer", f"page size (default {default}; larger values are lowered to {maximum})",
                   default=default, minimum=1, maximum=maximum, clamp=True),
        QueryParam("offset", "integer", "items to skip (default 0)", default=0, minimum=0),
    )


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: the id in this operation's answer feeds a parameter of another one."""

    operation_id: str
    parameter: str
    source: str  # a runtime expression, e.g. "$response.body#/data/album_id"
    description: str = ""


@dataclass
class RouteSpec:
    method: str
    path: str
    handler: Callable[..., Awaitable[web.StreamResponse]]
    operation_id: str
    summary: str
    description: str
    tag: str
    body: type[BaseModel] | None = None
    response: Any = None
    auth: bool = True
    admin: bool = False
    params: tuple[Param, ...] = ()
    binary: tuple[str, ...] = ()  # media types of a binary response
    multipart: type[BaseModel] | None = None  # the form's fields, documented as a model
    status: int = 200
    also: tuple[int, ...] = ()  # further statuses the operation can answer
    links: tuple[Link, ...] = ()
    ok_also: tuple[int, ...] = ()  # further success statuses with the same body (a duplicate upload: 200)
    idempotent: bool = False  # takes an Idempotency-Key (creating POSTs)

    @property
    def query(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.where == "query")


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

    @property
    def client_address(self) -> str:
        """The client's address as rate limits count it (X-Forwarded-For only from trusted proxies)."""
        return self.services.rate_limits.client_address(
            self.request.remote, self.request.headers.get("X-Forwarded-For"))

    async def settle(self, position: int) -> None:
        """Read your writes: wait (bounded) until read models show this command's effect. Never
        raises: the command has committed, so its answer is a success even when a read model
        lags or fails (health reports that one)."""
        try:
            await self.run(self.services.wait_for, position)
        except Exception as exc:  # the read side is down, not the command
            logging.getLogger("darkroom.api").warning("read models did not reach %s: %r", position, exc)
        self.services.wake()

    # -- query parameters -------------------------------------------------------------------

    def query_str(self, name: str) -> str | None:
        value = self.request.query.get(name)
        return value if value not in (None, "") else None

    def query_int(self, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        raw = self.request.query.get(name)
        if raw is None or raw == "":
            return default
        value = parse_int(raw, name)
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
        value = parse_int(raw, name) if len(raw) <= 40 else -1
        if not 1 <= value <= MAX_INT:
            raise InvalidInput(f"{name} must be a positive integer, got {raw!r}", name)
        return value


def _number(text: str) -> float | int:
    """JSON numbers with nothing after the point (`5.0`) are integers, as JSON Schema says and as
    generated clients send them; the strict body models then accept them where an int is due."""
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


async def _read_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.read()  # client_max_size turns an oversized body into a 413
    if not raw.strip():
        payload: Any = {}
        if any(f.is_required() for f in model.model_fields.values()):
            raise InvalidInput("request body is empty; a JSON object is expected", "body")
    else:
        try:
            payload = json.loads(raw, parse_float=_number)
        except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting or digits
            raise InvalidInput(f"request body is not valid JSON: {exc}", "body") from None
    if not isinstance(payload, dict):
        raise InvalidInput("request body must be a JSON object", "body")
    return model.model_validate(payload)


async def _authenticate(request: web.Request) -> tuple[int, bool]:
    """The user and their admin right. The token's signature is checked here; whether the account
    is still open, still admin and the token's session still current is read per request from
    the users directory, so a deactivation or a password change takes effect at once."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <access token>'")
    services = request.app[SERVICES]
    claims = services.tokens.verify(token.strip())
    state, erased = await asyncio.get_running_loop().run_in_executor(None, _auth_state, services, claims.user_id)
    if state is None:  # a valid signature for a user this store does not know: log in again
        raise Unauthorized("access token is not valid for any user here")
    if not state.is_active:
        raise Unauthorized("this account is deactivated")
    if state.session_epoch != claims.session_epoch:
        raise Unauthorized("this session has ended (password changed or account closed); log in again")
    if erased:  # an erased person's tokens die with them
        raise Unauthorized("this account was erased")
    return claims.user_id, state.is_admin


async def optional_user(request: web.Request) -> tuple[int, bool] | None:
    """(user id, is admin) when the request carries a valid token, else None (public routes
    that show more to admins)."""
    if not request.headers.get("Authorization"):
        return None
    try:
        return await _authenticate(request)
    except Unauthorized:
        return None


def _auth_state(services: Services, user_id: int) -> tuple[Any, bool]:
    """(the user's account state or None, whether they were erased): database reads, so they run
    in a worker thread, never on the event loop."""
    from projections.users import AuthState

    keys = getattr(services.app.mapper, "keys", None)
    erased = keys is not None and keys.is_erased(user_id)
    state = services.users.auth_state(user_id)
    if state is not None:
        return state, erased
    # Not in the directory yet (its projection lags the registration): ask the aggregate.
    from domain.errors import NotFound

    try:
        user = services.app.get_user(user_id)
    except NotFound:
        return None, erased
    return AuthState(user.is_active, user.is_admin, user.session_epoch), erased


def route(
    method: str,
    path: str,
    *,
    operation_id: str,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    response: Any = None,
    auth: bool = True,
    admin: bool = False,
    params: tuple[Param, ...] = (),
    binary: tuple[str, ...] = (),
    multipart: type[BaseModel] | None = None,
    status: int = 200,
    also: tuple[int, ...] = (),
    links: tuple[Link, ...] = (),
    ok_also: tuple[int, ...] = (),
    idempotent: bool | None = None,
) -> Callable[[Callable[[Ctx], Awaitable[web.StreamResponse]]], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Declare an operation. Its description is the handler's docstring."""
    declared = {p.name for p in params if p.where == "path"}
    wanted = set(re.findall(r"{(\w+)}", path))
    if declared != wanted:
        raise TypeError(f"{method} {path}: path parameters declared {sorted(declared)}, in the path {sorted(wanted)}")

    if idempotent is None:  # every authenticated creation takes one
        idempotent = method == "POST" and status == 201 and auth
    if idempotent:
        params = (*params, Param(
            "Idempotency-Key", description="a key of your choice (1-255 characters): retrying with it "
            "returns the first answer and creates nothing new; the same key with another request is "
            "a 422. Kept 24 hours. Use a new key for each new object.", where="header", max_length=255,
            pattern=r"\S"))
        also = tuple(sorted({*also, 409, 422}))

    def register(handler: Callable[[Ctx], Awaitable[web.StreamResponse]]) -> Any:
        if not handler.__doc__:
            raise TypeError(f"{method} {path}: the handler needs a docstring (the operation's description)")

        async def endpoint(request: web.Request) -> web.StreamResponse:
            user_id, is_admin = (None, False)
            if auth:
                user_id, is_admin = await _authenticate(request)
                if admin and not is_admin:
                    raise Forbidden("this endpoint is for administrators")
            _check_params(request, params)

            async def run() -> web.StreamResponse:
                parsed = await _read_body(request, body) if body is not None else None
                return await handler(Ctx(request, user_id, is_admin, parsed))

            if idempotent and user_id is not None:
                from api.idempotency import run_once

                return await run_once(request, request.app[SERVICES], user_id, f"{method} {path}",
                                      multipart is not None, run)
            return await run()

        ROUTES.append(RouteSpec(
            method, path, endpoint, operation_id, summary, inspect.cleandoc(handler.__doc__), tag, body,
            response, auth, admin, params, binary, multipart, status, also, links, ok_also, bool(idempotent),
        ))
        return endpoint

    return register


def _check_params(request: web.Request, params: tuple[Param, ...]) -> None:
    for param in params:
        if param.where == "path":
            raw: str | None = request.match_info.get(param.name)
        elif param.where == "header":
            raw = request.headers.get(param.name)
        else:
            raw = request.query.get(param.name)
        if raw is None or (raw == "" and param.where == "query"):
            if param.required:
                raise InvalidInput(f"{param.name} is required", param.name)
            continue
        if param.format == "uuid":
            continue  # a malformed id names nothing: the handler answers 404, as for any unknown id
        param.check(raw)


def add_routes(app: web.Application) -> None:
    for spec in ROUTES:
        if spec.method == "GET":  # HEAD wherever GET is: same headers, no body (aiohttp drops it)
            app.router.add_get(PREFIX + spec.path, spec.handler, allow_head=True)
        else:
            app.router.add_route(spec.method, PREFIX + spec.path, spec.handler)
