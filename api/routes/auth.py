"""Auth endpoints: register, login, refresh, logout, me, password change.

Each endpoint that costs a KDF run or guards an account is rate limited (infra.rate_limits) and
runs its KDF in the password pool (infra.passwords), which a flood cannot grow past its bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from api.envelope import ok
from api.models import AuthData, LoginBody, RefreshBody, RegisterBody
from api.registry import Ctx, Link, route
from api.user_models import MeDTO, PasswordBody
from commands.users import Session, UserView, check_registration
from domain.errors import Forbidden, InvalidInput, Unauthorized


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
    token, expires = ctx.services.tokens.issue(session.user.user_id, session.user.is_admin,
                                               session_epoch=session.user.session_epoch)
    return {
        "token": token,
        "refreshToken": str(session.refresh_token),
        "expiresAt": expires.isoformat(),
        "user": user_dto(session.user),
    }


@route("POST", "/auth/register", operation_id="register", summary="Create a user account (the first one is admin)",
       tag="Auth", body=RegisterBody, response=AuthData, auth=False, status=201, also=(403, 409, 429),
       links=(Link("getMe", "Authorization", "$response.body#/data/token",
                   "send as `Bearer <token>`"),))
async def register(ctx: Ctx) -> web.Response:
    """Creates an account and logs it in: 201 with an access token, a refresh token and the user.
    A taken username or e-mail answers 409. The first account becomes the administrator. With
    `DARKROOM_REGISTRATION=closed`, 403 once an admin exists (admins create users). Registrations
    per client address are rate limited (429 with `Retry-After`)."""
    body: RegisterBody = ctx.body
    services = ctx.services
    services.rate_limits.check_and_hit("register_address", ctx.client_address)
    if services.settings.registration == "closed" and await ctx.run(services.users.admin_exists):
        raise Forbidden("registration is closed; ask an administrator for an account")
    check_registration(body.username, body.email, body.password)
    await ctx.run(services.app.check_free, body.username, body.email.lower())  # before paying for a hash
    password_hash = await services.passwords.hash_async(body.password)
    session = await ctx.run(services.app.register, body.username, body.email.lower(), password_hash,
                            quota_bytes=services.settings.default_quota_bytes)
    await ctx.settle(session.position)  # the directory (admin check, quotas) shows the account
    return ok(auth_data(ctx, session), "registered", status=201)



@route("POST", "/auth/login", operation_id="login", summary="Log in with username and password", tag="Auth",
       body=LoginBody, response=AuthData, auth=False, also=(401, 429))
async def login(ctx: Ctx) -> web.Response:
    """Exchanges a username and password for a token pair; wrong credentials answer 401 (the same
    way, and in the same time, whether or not the user exists). Failed logins are rate limited per
    username and per client address: past the limit, 429 with `Retry-After`, and no password is
    checked at all."""
    body: LoginBody = ctx.body
    services = ctx.services
    started = asyncio.get_running_loop().time()
    limits, address, name = services.rate_limits, ctx.client_address, body.username.lower()
    limits.check("login_address", address)
    limits.check("login_user", name)
    found = await ctx.run(services.app.user_for_login, body.username)
    # Unknown user: verify against a dummy hash, so timing does not tell.
    valid = await services.passwords.verify_async(found[1] if found else None, body.password)
    if not found or not valid:
        limits.hit("login_address", address)
        limits.hit("login_user", name)
        spent = asyncio.get_running_loop().time() - started
        await asyncio.sleep(max(0.0, services.settings.login_failure_seconds - spent))
        raise Unauthorized("wrong username or password")
    session = await ctx.run(services.app.log_in, found[0])
    return ok(auth_data(ctx, session), "logged in")


@route("POST", "/auth/refresh", operation_id="refreshToken",
       summary="Exchange a refresh token for a new pair (rotation)", tag="Auth", body=RefreshBody,
       response=AuthData, auth=False, also=(401, 409, 429))
async def refresh(ctx: Ctx) -> web.Response:
    """Rotates the refresh token: the old one stops working. Reusing a rotated token revokes
    every token of the user (it was stolen, or leaked). Rate limited per client address."""
    ctx.services.rate_limits.check_and_hit("refresh_address", ctx.client_address)
    session = await ctx.run(ctx.services.app.refresh, ctx.body.refreshToken)
    return ok(auth_data(ctx, session), "token refreshed")


@route("POST", "/auth/logout", operation_id="logout", summary="Revoke a refresh token", tag="Auth",
       body=RefreshBody, auth=False, also=(401, 409))
async def logout(ctx: Ctx) -> web.Response:
    """Revokes the refresh token (its access tokens expire on their own)."""
    await ctx.run(ctx.services.app.log_out, ctx.body.refreshToken)
    return ok(message="logged out")


@route("GET", "/auth/me", operation_id="getMe", summary="The authenticated user", tag="Auth",
       response=MeDTO)
async def me(ctx: Ctx) -> web.Response:
    """The user the access token belongs to, with their admin right, quota and bytes used."""
    user = await ctx.run(ctx.services.app.get_user, ctx.user_id)
    usage = await ctx.run(ctx.services.users.usage_bytes, ctx.user_id)
    return ok(user_dto(user) | {"is_admin": user.is_admin, "quota_bytes": user.quota_bytes,
                                "usage_bytes": usage})


@route("PUT", "/auth/password", operation_id="updatePassword", summary="Change your password",
       tag="Auth", body=PasswordBody, response=AuthData, also=(401, 429))
async def change_password(ctx: Ctx) -> web.Response:
    """Sets a new password after checking the current one (a wrong one answers 401). Every other
    session of the user ends at once: their refresh tokens are revoked and their access tokens
    refused. The answer carries a fresh token pair for this client. Rate limited per user."""
    body: PasswordBody = ctx.body
    services = ctx.services
    services.rate_limits.check_and_hit("password_user", str(ctx.user_id))
    if len(body.new_password) < 8:
        raise InvalidInput("password must be 8 to 1024 characters", "new_password")
    current = await ctx.run(services.app.password_hash_of, ctx.user_id)
    if not await services.passwords.verify_async(current, body.current_password):
        raise Unauthorized("current password is wrong")
    new_hash = await services.passwords.hash_async(body.new_password)
    session = await ctx.run(services.app.change_password, ctx.user_id, new_hash)
    await ctx.settle(session.position)
    return ok(auth_data(ctx, session), "password changed; other sessions were ended")
