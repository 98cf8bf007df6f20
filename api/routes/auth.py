"""Auth endpoints: register, login, refresh, logout, me."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.envelope import ok
from api.models import AuthData, LoginBody, RefreshBody, RegisterBody, UserDTO
from api.registry import Ctx, Link, route
from commands.users import Session, UserView, check_registration
from domain.errors import NotFound, Unauthorized


def user_dto(user: UserView) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "username": user.username,
        "email": user.email,
        "created_at": user.created_at.isoformat(),
        "last_login": user.last_login.isoformat() if user.last_login else None,
        "is_active": user.is_active,
    }


def auth_data(ctx: Ctx, session: Session) -> dict[str, Any]:
    token, expires = ctx.services.tokens.issue(session.user.user_id, session.user.is_admin)
    return {
        "token": token,
        "refreshToken": str(session.refresh_token),
        "expiresAt": expires.isoformat(),
        "user": user_dto(session.user),
    }


@route("POST", "/auth/register", operation_id="register", summary="Create a user account (the first one is admin)",
       tag="Auth", body=RegisterBody, response=AuthData, auth=False, status=201, also=(409,),
       links=(Link("getMe", "Authorization", "$response.body#/data/token",
                   "send as `Bearer <token>`"),))
async def register(ctx: Ctx) -> web.Response:
    """Creates an account and logs it in: 201 with an access token, a refresh token and the user.
    A taken username or e-mail answers 409. The first account becomes the administrator."""
    body: RegisterBody = ctx.body
    check_registration(body.username, body.email, body.password)
    password_hash = await ctx.run(ctx.services.passwords.hash, body.password)
    session = await ctx.run(ctx.services.app.register, body.username, body.email.lower(), password_hash)
    return ok(auth_data(ctx, session), "registered", status=201)


@route("POST", "/auth/login", operation_id="login", summary="Log in with username and password", tag="Auth",
       body=LoginBody, response=AuthData, auth=False, also=(401,))
async def login(ctx: Ctx) -> web.Response:
    """Exchanges a username and password for a token pair; wrong credentials answer 401 (the same
    way, and in the same time, whether or not the user exists)."""
    body: LoginBody = ctx.body
    services = ctx.services
    found = await ctx.run(services.app.user_for_login, body.username)
    # Verify against a dummy hash when the user is unknown, so timing does not tell.
    password_hash = found[1] if found else await ctx.run(_dummy_hash, ctx)
    valid = await ctx.run(services.passwords.verify, password_hash, body.password)
    if not found or not valid:
        raise Unauthorized("wrong username or password")
    session = await ctx.run(services.app.log_in, found[0])
    return ok(auth_data(ctx, session), "logged in")


_DUMMY: dict[int, str] = {}


def _dummy_hash(ctx: Ctx) -> str:
    key = id(ctx.services)
    if key not in _DUMMY:
        _DUMMY[key] = ctx.services.passwords.hash("not-a-real-password")
    return _DUMMY[key]


@route("POST", "/auth/refresh", operation_id="refreshToken",
       summary="Exchange a refresh token for a new pair (rotation)", tag="Auth", body=RefreshBody,
       response=AuthData, auth=False, also=(401, 409))
async def refresh(ctx: Ctx) -> web.Response:
    """Rotates the refresh token: the old one stops working. Reusing a rotated token revokes
    every token of the user (it was stolen, or leaked)."""
    session = await ctx.run(ctx.services.app.refresh, ctx.body.refreshToken)
    return ok(auth_data(ctx, session), "token refreshed")


@route("POST", "/auth/logout", operation_id="logout", summary="Revoke a refresh token", tag="Auth",
       body=RefreshBody, auth=False, also=(401, 409))
async def logout(ctx: Ctx) -> web.Response:
    """Revokes the refresh token (its access tokens expire on their own)."""
    await ctx.run(ctx.services.app.log_out, ctx.body.refreshToken)
    return ok(message="logged out")


@route("GET", "/auth/me", operation_id="getMe", summary="The authenticated user", tag="Auth",
       response=UserDTO)
async def me(ctx: Ctx) -> web.Response:
    """The user the access token belongs to."""
    try:
        user = await ctx.run(ctx.services.app.get_user, ctx.user_id)
    except NotFound:  # a valid signature for a user this store does not know: log in again
        raise Unauthorized("access token is not valid for any user here") from None
    return ok(user_dto(user))
