"""Domain errors. Every rule the domain enforces raises one of these."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error raised by a domain rule. `field` names the offending input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """The request breaks a rule of the domain (a rating of 6, an empty album name)."""


class NotFound(DomainError):
    """The thing does not exist, or belongs to somebody else (we do not leak which)."""


class Conflict(DomainError):
    """The change collides with the current state (duplicate username, concurrent edit)."""


class Unauthorized(DomainError):
    """Credentials or a token are missing, wrong, expired or revoked."""


class Forbidden(DomainError):
    """Authenticated, but not allowed to do this."""


class Unsupported(DomainError):
    """A file whose content Darkroom cannot recognise as a photo, video, audio or document."""


class TooLarge(DomainError):
    """A body or file past the configured limit."""


class TooManyRequests(DomainError):
    """A client passed a rate limit (or a bounded queue is full); retry after `retry_after` s."""

    def __init__(self, message: str, retry_after: int = 1, field: str | None = None) -> None:
        super().__init__(message, field)
        self.retry_after = max(1, int(retry_after))


class Unavailable(DomainError):
    """A backend the request needs is down; `backend` names it (the answer is a 503)."""

    def __init__(self, message: str, backend: str) -> None:
        super().__init__(message)
        self.backend = backend


class Unprocessable(DomainError):
    """Well-formed, but contradicts an earlier request (an Idempotency-Key reused with another body)."""
