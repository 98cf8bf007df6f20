"""Edge models of user administration: password change, admin-created users, their rights and quotas."""

from __future__ import annotations

from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from api.models import (
    EMAIL_PATTERN,
    EXAMPLE_TIME,
    USERNAME_PATTERN,
    Body,
    UserDTO,
    body_examples,
    examples,
)

MAX_QUOTA = 2**62  # bytes; far above any disk, inside a BIGINT


class PasswordBody(Body):
    model_config = body_examples({"current_password": "correct horse battery",
                                  "new_password": "battery staple horse correct"})

    current_password: StrictStr = Field(min_length=1, max_length=1024)
    new_password: StrictStr = Field(min_length=8, max_length=1024)


class NewUserBody(Body):
    model_config = body_examples({"username": "bob", "email": "bob@example.org",
                                  "password": "correct horse battery", "is_admin": False,
                                  "quota_bytes": 10 * 1024**3})

    username: StrictStr = Field(min_length=3, max_length=64, pattern=USERNAME_PATTERN)
    email: StrictStr = Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)
    password: StrictStr = Field(min_length=8, max_length=1024)
    is_admin: StrictBool = False
    quota_bytes: StrictInt | None = Field(default=None, ge=0, le=MAX_QUOTA,
                                          description="bytes of originals allowed; 0 = no limit; absent = the default")


class UserUpdateBody(Body):
    model_config = body_examples({"is_active": False}, {"quota_bytes": 5 * 1024**3, "is_admin": True})

    is_active: StrictBool | None = None
    is_admin: StrictBool | None = None
    quota_bytes: StrictInt | None = Field(default=None, ge=0, le=MAX_QUOTA)


_ADMIN_USER_EXAMPLE = {"user_id": 2, "username": "bob", "email": "bob@example.org",
                       "created_at": EXAMPLE_TIME, "last_login": None, "is_active": True,
                       "is_admin": False, "quota_bytes": 0, "usage_bytes": 123456}


class AdminUserDTO(UserDTO):
    """A user as administrators (and the user, at /auth/me) see them."""

    model_config = examples(_ADMIN_USER_EXAMPLE)

    is_admin: bool
    quota_bytes: int = Field(ge=0, description="0: no limit")
    usage_bytes: int = Field(ge=0, description="bytes of the user's originals")


class UserList(BaseModel):
    model_config = examples({"users": [_ADMIN_USER_EXAMPLE], "limit": 20, "offset": 0, "total": 1})

    users: list[AdminUserDTO]
    limit: int
    offset: int
    total: int


class MeDTO(AdminUserDTO):
    model_config = examples({**_ADMIN_USER_EXAMPLE, "user_id": 1, "username": "alice",
                             "email": "alice@example.org", "is_admin": True})
