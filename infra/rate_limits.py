"""Rate limits on the abuse-prone routes (login, register, refresh, password change).

Moving windows from the `limits` library, kept in this process's memory: a limit is a defence
against a flood on this server, not an account setting, so it need not outlive a restart. The
client address is the peer's, or the first untrusted hop of `X-Forwarded-For` when the peer is a
trusted proxy (`DARKROOM_TRUSTED_PROXIES`).
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from domain.errors import TooManyRequests
from infra.settings import Settings, SettingsError


@dataclass(frozen=True)
class Limit:
    """One named limit, e.g. failed logins per username."""

    name: str
    item: RateLimitItem


class RateLimits:
    """The limits of one server process; `check` before the work, `hit` to count one."""

    def __init__(self, settings: Settings) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.limits: dict[str, Limit] = {}
        for name in ("login_user", "login_address", "register_address", "refresh_address",
                     "password_user"):
            raw = getattr(settings, f"rate_limit_{name}")
            try:
                self.limits[name] = Limit(name, parse(raw))
            except ValueError:
                raise SettingsError(
                    f"DARKROOM_RATE_LIMIT_{name.upper()} is {raw!r}; use N/second, N/minute or N/hour"
                ) from None
        self._proxies = _networks(settings.trusted_proxies)

    def check(self, name: str, key: str) -> None:
        """Raise `TooManyRequests` (429, with `Retry-After`) when the limit is spent."""
        limit = self.limits[name]
        if not self._limiter.test(limit.item, name, key):
            raise TooManyRequests(f"too many requests ({name.replace('_', ' per ')}); slow down",
                                  self.retry_after(name, key))

    def hit(self, name: str, key: str) -> None:
        """Count one request (a failed login, a registration) against the limit."""
        self._limiter.hit(self.limits[name].item, name, key)

    def check_and_hit(self, name: str, key: str) -> None:
        """Count this request, refusing it when the limit is already spent."""
        limit = self.limits[name]
        if not self._limiter.hit(limit.item, name, key):
            raise TooManyRequests(f"too many requests ({name.replace('_', ' per ')}); slow down",
                                  self.retry_after(name, key))

    def retry_after(self, name: str, key: str) -> int:
        stats = self._limiter.get_window_stats(self.limits[name].item, name, key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str:
        """The address a limit counts: the peer, unless it is a trusted proxy that forwarded."""
        address = peer or "unknown"
        if not forwarded_for or not self._trusted(address):
            return address
        # Walk from the nearest hop back; the first address that is not a trusted proxy is the client.
        for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
            if not self._trusted(hop):
                return hop
            address = hop
        return address

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._proxies)


def _networks(raw: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(f"DARKROOM_TRUSTED_PROXIES has {part!r}, not an address or network") from None
    return nets
