"""The login endpoint's rate limits: per client IP, and per account on failed logins.

Every check runs before any password hashing, so saying no stays cheap.
"""

from __future__ import annotations

import hashlib

from limits import RateLimitItem, parse

from api.errors import RateLimited
from api.metrics import RATE_LIMIT_HITS
from api.settings import Settings
from db.emails import normalise_email
from db.limits import RateLimitStore, Verdict


def _account(email: str) -> str:
    # Keys name a digest, never the address itself. The account's own normalisation
    # (idempotent, so a caller may pass the normalised address or the raw one).
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()


class RateLimits:
    def __init__(self, store: RateLimitStore, settings: Settings) -> None:
        self._store = store
        self._enabled = settings.rate_limits_enabled
        self._login: RateLimitItem = parse(settings.login_rate_limit)
        self._register: RateLimitItem = parse(settings.register_rate_limit)
        self._failures: RateLimitItem = parse(settings.login_failure_limit)

    async def count_login(self, ip: str) -> None:
        """Count a login request from `ip`.

        Raises:
            RateLimited: the IP made too many login requests.
        """
        if self._enabled:
            _raise_if_refused(await self._store.hit(self._login, "login-ip", ip), "login_ip")

    async def count_registration(self, ip: str) -> None:
        """Count a registration request from `ip`.

        Raises:
            RateLimited: the IP made too many registration requests.
        """
        if self._enabled:
            _raise_if_refused(
                await self._store.hit(self._register, "register-ip", ip), "register_ip"
            )

    async def check_account(self, email: str) -> None:
        """Refuse a login for an account with too many recent failures, whatever the IP.

        Raises:
            RateLimited: too many failed logins for this email.
        """
        if self._enabled:
            _raise_if_refused(
                await self._store.test(self._failures, "login-failures", _account(email)),
                "login_account",
            )

    async def record_failure(self, email: str) -> None:
        """Count a failed login against the account (known or not: the answer must not tell)."""
        if self._enabled:
            await self._store.hit(self._failures, "login-failures", _account(email))


def _raise_if_refused(verdict: Verdict, limit: str) -> None:
    if verdict.allowed:
        return
    RATE_LIMIT_HITS.labels(limit).inc()
    raise RateLimited(
        headers={
            "Retry-After": str(verdict.reset_after),
            "RateLimit-Limit": str(verdict.limit),
            "RateLimit-Remaining": str(max(verdict.remaining, 0)),
            "RateLimit-Reset": str(verdict.reset_after),
        }
    )
