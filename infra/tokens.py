"""JWT access tokens (pyjwt, HS256) and the shape of refresh tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt

from domain.errors import Unauthorized
from infra.settings import Settings

ALGORITHM = "HS256"
_CACHED_TOKENS = 4096


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    is_admin: bool
    session_epoch: int = 0


@dataclass(frozen=True)
class RefreshTokenParts:
    """A refresh token is `<user_id>.<token_id>.<secret>`; only sha256(secret) is stored."""

    user_id: int
    token_id: str
    secret: str

    @property
    def secret_hash(self) -> str:
        return hash_secret(self.secret)

    def __str__(self) -> str:
        return f"{self.user_id}.{self.token_id}.{self.secret}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_refresh_token(user_id: int) -> RefreshTokenParts:
    return RefreshTokenParts(user_id, uuid.uuid4().hex, secrets.token_urlsafe(32))


def parse_refresh_token(token: str) -> RefreshTokenParts:
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or not re.fullmatch(r"[0-9]{1,18}", parts[0]) or not parts[1] or not parts[2]:
        raise Unauthorized("refresh token is not valid")
    return RefreshTokenParts(int(parts[0]), parts[1], parts[2])


class AccessTokens:
    def __init__(self, settings: Settings) -> None:
        self.secret = settings.resolved_jwt_secret()
        self.ttl = timedelta(seconds=settings.access_token_ttl_seconds)
        # Tokens already verified, until they expire: every API request verifies one, and the
        # HMAC and claim checks were a tenth of a listing's time. A token's claims never change,
        # so a cached answer is the answer; whether its session still holds (the user's epoch:
        # deactivation, password change) is checked on every request, not here.
        self._verified: dict[str, tuple[AccessClaims, float]] = {}

    def issue(self, user_id: int, is_admin: bool, now: datetime | None = None,
              session_epoch: int = 0) -> tuple[str, datetime]:
        now = now or datetime.now(timezone.utc)
        expires = now + self.ttl
        claims = {
            "sub": str(user_id),
            "adm": is_admin,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "typ": "access",
            "jti": uuid.uuid4().hex,
            # The user's session epoch when issued: a password change or a deactivation bumps it,
            # and every request compares, so older tokens stop working at once.
            "ep": session_epoch,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM), expires

    def verify(self, token: str) -> AccessClaims:
        hit = self._verified.get(token)
        if hit is not None and time.time() < hit[1]:
            return hit[0]
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("access token has expired; refresh it") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"access token is not valid: {exc}") from None
        if claims.get("typ") != "access" or not re.fullmatch(r"[0-9]{1,18}", str(claims.get("sub", ""))):
            raise Unauthorized("access token is not valid")
        epoch = claims.get("ep", 0)
        verified = AccessClaims(int(claims["sub"]), bool(claims.get("adm")), epoch if isinstance(epoch, int) else -1)
        if len(self._verified) >= _CACHED_TOKENS:
            self._verified.clear()
        self._verified[token] = (verified, float(claims["exp"]))
        return verified
