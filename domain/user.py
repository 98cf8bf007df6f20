"""The `User` aggregate: an account, its credentials and its refresh tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Unauthorized
from domain.personal import ERASED
from domain.ids import user_id_to_uuid


@dataclass
class RefreshToken:
    """One refresh token, known by id; only a hash of its secret is kept."""

    secret_hash: str
    expires_at: datetime
    state: str = "active"  # active | rotated | revoked


class User(Aggregate):
    """An account. Integer `user_id` (from a Sequence), unique username and e-mail."""

    @staticmethod
    def create_id(user_id: int) -> UUID:
        return user_id_to_uuid(user_id)

    @event("Registered")
    def __init__(
        self,
        user_id: int,
        username: str,
        email: str,
        password_hash: str,
        is_admin: bool,
        registered_at: datetime,
    ) -> None:
        self.user_id = user_id
        self.username = username
        self.email = email
        self.password_hash = password_hash
        self.is_admin = is_admin
        self.is_active = True
        self.created_at = registered_at
        self.last_login: datetime | None = None
        self.refresh_tokens: dict[str, RefreshToken] = {}
        # Set by later events; derived here so that replaying old logs gives them a value.
        self.quota_bytes = 0  # 0: no limit
        self.session_epoch = 0  # access tokens carry it; a bump ends every session at once

    # -- refresh tokens ------------------------------------------------------------------------

    def check_refresh_token(self, token_id: str, secret_hash: str, now: datetime) -> None:
        """Raise `Unauthorized` unless this token is active, unexpired and matches.

        A token that was already rotated or revoked being presented again means it leaked: the
        caller revokes every token of the user (`revoke_all_refresh_tokens`).
        """
        token = self.refresh_tokens.get(token_id)
        if token is None or token.secret_hash != secret_hash:
            raise Unauthorized("refresh token is not valid")
        if token.state != "active":
            raise Unauthorized(f"refresh token was {token.state}")
        if token.expires_at <= now:
            raise Unauthorized("refresh token has expired")

    def is_reused_token(self, token_id: str, secret_hash: str) -> bool:
        token = self.refresh_tokens.get(token_id)
        return token is not None and token.secret_hash == secret_hash and token.state != "active"

    @event("LoggedIn")
    def log_in(self, at: datetime, token_id: str, secret_hash: str, expires_at: datetime) -> None:
        """The user proved their password and got a new token pair."""
        self.last_login = at
        self._prune(at)
        self.refresh_tokens[token_id] = RefreshToken(secret_hash, expires_at)

    @event("RefreshTokenRotated")
    def rotate_refresh_token(
        self, at: datetime, old_token_id: str, token_id: str, secret_hash: str, expires_at: datetime
    ) -> None:
        """A refresh token was spent for a new pair; the old one stops working."""
        self._prune(at)
        if old_token_id in self.refresh_tokens:
            self.refresh_tokens[old_token_id].state = "rotated"
        self.refresh_tokens[token_id] = RefreshToken(secret_hash, expires_at)

    @event("RefreshTokenRevoked")
    def revoke_refresh_token(self, token_id: str) -> None:
        """The user logged out with this refresh token."""
        if token_id in self.refresh_tokens:
            self.refresh_tokens[token_id].state = "revoked"

    @event("AllRefreshTokensRevoked")
    def revoke_all_refresh_tokens(self, reason: str) -> None:
        """Every refresh token of the user was revoked (a spent token was presented again)."""
        for token in self.refresh_tokens.values():
            if token.state == "active":
                token.state = "revoked"

    @event("Erased")
    def erase(self, at: datetime) -> None:
        """An admin erased the person: the account is closed for good and its personal data,
        sealed with the user's key, can no longer be read anywhere (the key was destroyed)."""
        self.is_active = False
        self.username = ERASED
        self.email = ERASED
        self.password_hash = ""
        self.erased_at = at
        for token in self.refresh_tokens.values():
            token.state = "revoked"

    def _prune(self, now: datetime) -> None:
        # Keep the aggregate small: expired tokens can never be used again.
        for token_id in [t for t, tok in self.refresh_tokens.items() if tok.expires_at <= now]:
            del self.refresh_tokens[token_id]

    # -- administration ------------------------------------------------------------------------

    @event("PasswordChanged")
    def change_password(self, password_hash: str) -> None:
        """The user set a new password: every session they had before ends."""
        self.password_hash = password_hash
        self.session_epoch += 1
        for token in self.refresh_tokens.values():
            if token.state == "active":
                token.state = "revoked"

    @event("Deactivated")
    def deactivate(self, by_user_id: int) -> None:
        """An admin closed the account: it cannot log in, and its tokens stop working at once."""
        self.is_active = False
        self.session_epoch += 1
        for token in self.refresh_tokens.values():
            if token.state == "active":
                token.state = "revoked"

    @event("Reactivated")
    def reactivate(self, by_user_id: int) -> None:
        """An admin opened a closed account again (its old sessions stay ended)."""
        self.is_active = True

    @event("AdminRightsChanged")
    def set_admin(self, is_admin: bool, by_user_id: int) -> None:
        """An admin granted or withdrew administration rights."""
        self.is_admin = is_admin  # checked per request from the users read model, not the token

    @event("QuotaChanged")
    def set_quota(self, quota_bytes: int, by_user_id: int) -> None:
        """The bytes of originals the user may store changed (0: no limit)."""
        self.quota_bytes = quota_bytes
