"""User commands: register, and the bookkeeping of logins and refresh tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from eventsourcing.application import AggregateNotFoundError

from commands.retry import retry_on_conflict
from domain.errors import Conflict, InvalidInput, NotFound, Unauthorized
from domain.ids import email_key, user_id_to_uuid, username_key
from domain.indexes import EmailClaimed, UsernameClaimed
from domain.user import User
from infra.tokens import RefreshTokenParts, new_refresh_token, parse_refresh_token

if TYPE_CHECKING:
    from commands.application import Darkroom


@dataclass(frozen=True)
class UserView:
    """What the API shows of a user."""

    user_id: int
    username: str
    email: str
    created_at: datetime
    last_login: datetime | None
    is_active: bool
    is_admin: bool
    quota_bytes: int = 0
    session_epoch: int = 0


@dataclass(frozen=True)
class Session:
    """A user with a fresh refresh token."""

    user: UserView
    refresh_token: RefreshTokenParts
    position: int


def _view(user: User) -> UserView:
    return UserView(
        user.user_id, user.username, user.email, user.created_at, user.last_login,
        user.is_active, user.is_admin, user.quota_bytes, user.session_epoch,
    )


class UserCommands:
    refresh_token_ttl = timedelta(days=30)

    def register(self: Darkroom, username: str, email: str, password_hash: str,
                 is_admin: bool | None = None, quota_bytes: int = 0, by_user_id: int = 0) -> Session:
        """Create an account and log it in. Self-registered (`is_admin` None): the first account
        is the admin. Created by an admin (or the shell): `is_admin` says."""
        if self.exists(username_key(username)):
            raise Conflict(f"username {username!r} is taken", "username")
        if self.exists(email_key(email)):
            raise Conflict(f"email {email!r} is already registered", "email")

        def attempt() -> Session:
            users = self._sequence("users")
            user_id = users.next_value()
            now = self.now()
            user = User(
                user_id=user_id, username=username, email=email, password_hash=password_hash,
                is_admin=user_id == 1 if is_admin is None else is_admin, registered_at=now,
            )
            if quota_bytes:
                user.set_quota(quota_bytes=quota_bytes, by_user_id=by_user_id)
            token = new_refresh_token(user_id)
            user.log_in(at=now, token_id=token.token_id, secret_hash=token.secret_hash,
                        expires_at=now + self.refresh_token_ttl)
            position = self.save_and_position(
                users, user, UsernameClaimed(username=username, user_id=user_id),
                EmailClaimed(email=email, user_id=user_id),
            )
            return Session(_view(user), token, position)

        def attempt_checked() -> Session:
            # A lost race may be on the name rather than on the id sequence: say which.
            if self.exists(username_key(username)):
                raise Conflict(f"username {username!r} is taken", "username")
            if self.exists(email_key(email)):
                raise Conflict(f"email {email!r} is already registered", "email")
            return attempt()

        return retry_on_conflict(attempt_checked)

    def check_free(self: Darkroom, username: str, email: str) -> None:
        """409 when the name or the address is taken: asked before the KDF runs, so a taken name
        costs no hash (the registration checks again, atomically)."""
        if self.exists(username_key(username)):
            raise Conflict(f"username {username!r} is taken", "username")
        if self.exists(email_key(email)):
            raise Conflict(f"email {email!r} is already registered", "email")

    def user_for_login(self: Darkroom, username: str) -> tuple[int, str] | None:
        """(user_id, password hash) for a username, or None. Login checks the password."""
        try:
            claim = self.repository.get(username_key(username))
        except AggregateNotFoundError:
            return None
        user = self.repository.get(user_id_to_uuid(claim.user_id))
        if not user.is_active:
            return None
        return user.user_id, user.password_hash

    def log_in(self: Darkroom, user_id: int) -> Session:
        """Record a successful login and issue a refresh token (password already checked)."""

        def attempt() -> Session:
            user: User = self.load(user_id_to_uuid(user_id), "user")
            return self._new_session(user)

        return retry_on_conflict(attempt)

    def _new_session(self: Darkroom, user: User) -> Session:
        """Log the user in (a new refresh token) and save: what login and a password change share."""
        token = new_refresh_token(user.user_id)
        now = self.now()
        user.log_in(at=now, token_id=token.token_id, secret_hash=token.secret_hash,
                    expires_at=now + self.refresh_token_ttl)
        return Session(_view(user), token, self.save_and_position(user))

    def refresh(self: Darkroom, refresh_token: str) -> Session:
        """Spend a refresh token for a new one. Presenting a spent token revokes them all."""
        parts = parse_refresh_token(refresh_token)
        def attempt() -> Session:
            user = self._user_for_token(parts)
            if user.is_reused_token(parts.token_id, parts.secret_hash):
                user.revoke_all_refresh_tokens(reason=f"spent refresh token {parts.token_id} reused")
                self.save(user)
                raise Unauthorized("refresh token was already used; all sessions were revoked")
            now = self.now()
            user.check_refresh_token(parts.token_id, parts.secret_hash, now)
            token = new_refresh_token(user.user_id)
            user.rotate_refresh_token(at=now, old_token_id=parts.token_id, token_id=token.token_id,
                                      secret_hash=token.secret_hash,
                                      expires_at=now + self.refresh_token_ttl)
            return Session(_view(user), token, self.save_and_position(user))

        return retry_on_conflict(attempt)

    def log_out(self: Darkroom, refresh_token: str) -> int:
        parts = parse_refresh_token(refresh_token)

        def attempt() -> int:
            user = self._user_for_token(parts)
            user.check_refresh_token(parts.token_id, parts.secret_hash, self.now())
            user.revoke_refresh_token(token_id=parts.token_id)
            return self.save_and_position(user)

        return retry_on_conflict(attempt)

    def get_user(self: Darkroom, user_id: int) -> UserView:
        return _view(self.load(user_id_to_uuid(user_id), "user"))

    def password_hash_of(self: Darkroom, user_id: int) -> str:
        """The stored hash, for checking a current password before a change."""
        return self.load(user_id_to_uuid(user_id), "user").password_hash

    def change_password(self: Darkroom, user_id: int, new_hash: str) -> Session:
        """Set a new password (the caller checked the current one): every other session ends,
        and this one continues with the fresh token pair returned."""

        def attempt() -> Session:
            user: User = self.load(user_id_to_uuid(user_id), "user")
            user.change_password(password_hash=new_hash)
            return self._new_session(user)

        return retry_on_conflict(attempt)

    def administer_user(self: Darkroom, admin_id: int, user_id: int, is_active: bool | None = None,
                        is_admin: bool | None = None, quota_bytes: int | None = None) -> tuple[UserView, int]:
        """An admin's change to an account: (de)activate, grant or withdraw admin, set the quota.
        An admin cannot lock themselves out (deactivate or demote their own account)."""
        if user_id == admin_id and (is_active is False or is_admin is False):
            raise Conflict("you cannot deactivate or demote your own account", "user_id")
        if quota_bytes is not None and quota_bytes < 0:
            raise InvalidInput("quota_bytes must be 0 (no limit) or more", "quota_bytes")

        def attempt() -> tuple[UserView, int]:
            user: User = self.load(user_id_to_uuid(user_id), "user")
            if is_active is not None and is_active != user.is_active:
                (user.reactivate if is_active else user.deactivate)(by_user_id=admin_id)
            if is_admin is not None and is_admin != user.is_admin:
                user.set_admin(is_admin=is_admin, by_user_id=admin_id)
            if quota_bytes is not None and quota_bytes != user.quota_bytes:
                user.set_quota(quota_bytes=quota_bytes, by_user_id=admin_id)
            position = self.save_and_position(user) if user.pending_events else 0
            return _view(user), position

        return retry_on_conflict(attempt)

    def _user_for_token(self: Darkroom, parts: RefreshTokenParts) -> User:
        try:
            user: User = self.load(user_id_to_uuid(parts.user_id), "user")
        except NotFound:
            raise Unauthorized("refresh token is not valid") from None
        if not user.is_active:
            raise Unauthorized("this account is deactivated")
        return user


def check_registration(username: Any, email: Any, password: Any) -> None:
    """Rules for new accounts, beyond the shape the API model checks."""
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{3,64}", username):
        raise InvalidInput(
            "username must be 3-64 characters of letters, digits, '_', '.', '-'", "username"
        )
    c = r"[^@\s\x00-\x1f\x7f]"  # no blanks or control characters anywhere
    if not re.fullmatch(rf"{c}{{1,64}}@{c}+\.{c}{{2,}}", email) or len(email) > 254:
        raise InvalidInput("email is not a valid address", "email")
    if len(password) < 8 or len(password) > 1024:
        raise InvalidInput("password must be 8 to 1024 characters", "password")
