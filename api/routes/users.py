"""Admin user management: list, create, change rights, state and quota, close accounts."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.envelope import ok
from api.models import ErasureDTO
from api.registry import Ctx, QueryParam, page_params, positive_id_param, route
from api.routes.erasure import erase
from api.user_models import AdminUserDTO, NewUserBody, UserList, UserUpdateBody
from commands.users import UserView, check_registration


def admin_user(ctx: Ctx, user: UserView) -> dict[str, Any]:
    return {
        "user_id": user.user_id, "username": user.username, "email": user.email,
        "created_at": user.created_at.isoformat(),
        "last_login": user.last_login.isoformat() if user.last_login else None,
        "is_active": user.is_active, "is_admin": user.is_admin, "quota_bytes": user.quota_bytes,
        "usage_bytes": ctx.services.users.usage_bytes(user.user_id),
    }


@route("GET", "/admin/users", operation_id="listUsers", summary="Every account (admins only)",
       tag="Admin", response=UserList, admin=True, params=page_params())
async def list_users(ctx: Ctx) -> web.Response:
    """Accounts in id order with their rights, state, quota and bytes used."""
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    users, total = await ctx.run(ctx.services.users.list, limit, offset)
    return ok({"users": users, "limit": limit, "offset": offset, "total": total})


@route("POST", "/admin/users", operation_id="createUser", summary="Create an account (admins only)",
       tag="Admin", body=NewUserBody, response=AdminUserDTO, admin=True, status=201, also=(409,))
async def create_user(ctx: Ctx) -> web.Response:
    """Creates an account, whatever `DARKROOM_REGISTRATION` says; a taken username or e-mail
    answers 409. `quota_bytes` absent: the server's default quota."""
    body: NewUserBody = ctx.body
    services = ctx.services
    check_registration(body.username, body.email, body.password)
    email = body.email.lower()
    await ctx.run(services.app.check_free, body.username, email)
    password_hash = await services.passwords.hash_async(body.password)
    quota = services.settings.default_quota_bytes if body.quota_bytes is None else body.quota_bytes
    session = await ctx.run(services.app.register, body.username, email, password_hash,
                            is_admin=body.is_admin, quota_bytes=quota, by_user_id=ctx.user_id)
    await ctx.settle(session.position)
    return ok(await ctx.run(admin_user, ctx, session.user), "user created", status=201)


@route("PUT", "/admin/users/{id}", operation_id="updateUser",
       summary="Activate, deactivate, grant admin or set the quota of an account (admins only)",
       tag="Admin", body=UserUpdateBody, response=AdminUserDTO, admin=True, also=(404, 409),
       params=(positive_id_param("id", "a user"),))
async def update_user(ctx: Ctx) -> web.Response:
    """Changes what the body names. A deactivated user's tokens stop working at once (their
    refresh tokens are revoked, their access tokens refused). An admin cannot deactivate or
    demote their own account (409)."""
    body: UserUpdateBody = ctx.body
    view, position = await ctx.run(ctx.services.app.administer_user, ctx.user_id, ctx.path_int("id"),
                                   body.is_active, body.is_admin, body.quota_bytes)
    await ctx.settle(position)
    return ok(await ctx.run(admin_user, ctx, view), "user updated")


@route("DELETE", "/admin/users/{id}", operation_id="deleteUser", summary="Close an account, or erase a person (admins only)",
       tag="Admin", response=ErasureDTO, admin=True, also=(404, 409), params=(
           positive_id_param("id", "a user"),
           QueryParam("erase", "boolean", "also erase the person: assets purged, personal data in the event "
                      "log made unreadable (crypto-shredding)", default=False),
       ))
async def delete_user(ctx: Ctx) -> web.Response:
    """Closes the account: it can no longer log in and its tokens stop working at once; its
    assets and history stay. With `erase=true` the account is closed for good, the user's assets
    and albums are deleted and their files purged, and the key that sealed the user's personal
    data in the event log is destroyed, so the export, the admin event stream, the Kafka topic and
    every replay show those fields as erased; read models are rebuilt without the person. Unknown
    users answer 404; an admin cannot close or erase their own account (409)."""
    user_id = ctx.path_int("id")
    if ctx.query_bool("erase", False):
        result = await ctx.run(erase, ctx.services, ctx.user_id, user_id)
        return ok(result, f"user {user_id} erased")
    _, position = await ctx.run(ctx.services.app.administer_user, ctx.user_id, user_id, False)
    await ctx.settle(position)
    return ok({"user_id": user_id, "assets": 0, "albums": 0, "files_removed": 0}, "account closed")
