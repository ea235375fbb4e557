"""Rate limits: login and registration per client IP, and password checks per account.

Every check runs before any password hashing, so saying no stays cheap.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from limits import RateLimitItem, parse

from api.errors import InvalidCredentials, MfaInvalid, RateLimited
from api.metrics import RATE_LIMIT_HITS
from api.settings import Settings
from db.emails import normalise_email
from db.rate_limit_store import RateLimitStore, Verdict


def account_key(email: str) -> str:
    """The identifier of an account's limits: every route that checks a password uses it."""
    # Keys name a digest, never the address itself. The account's own normalisation
    # (idempotent, so a caller may pass the normalised address or the raw one).
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()


class RateLimits:
    def __init__(self, store: RateLimitStore, settings: Settings) -> None:
        self._store = store
        self._enabled = settings.rate_limits_enabled
        self._login: RateLimitItem = parse(settings.login_rate_limit)
        self._register: RateLimitItem = parse(settings.register_rate_limit)
        self._register_attempts: RateLimitItem = parse(settings.register_attempt_limit)
        self._failures: RateLimitItem = parse(settings.login_failure_limit)

    async def count_login(self, ip: str) -> None:
        """Count a login request from `ip`.

        Raises:
            RateLimited: the IP made too many login requests.
        """
        if self._enabled:
            _raise_if_refused(await self._store.hit(self._login, "login-ip", ip), "login_ip")

    @asynccontextmanager
    async def registration(self, ip: str) -> AsyncIterator[None]:
        """Count a registration attempt from `ip`, and reserve one of its account creations.

        Every attempt counts against REGISTER_ATTEMPT_LIMIT (which also bounds how many
        addresses an IP can probe for `email_taken`). Only accounts created count against
        REGISTER_RATE_LIMIT: the creation is reserved atomically before the work and given
        back when the block raises (a taken email, a refused password, an outage), so
        concurrent registrations can't overshoot and a newcomer's mistakes cost nothing.

        Raises:
            RateLimited: the IP made too many attempts, or created too many accounts.
        """
        if not self._enabled:
            yield
            return
        attempt = await self._store.hit(self._register_attempts, "register-attempt-ip", ip)
        _raise_if_refused(attempt, "register_attempt_ip")
        reservation = await self._store.reserve(self._register, "register-ip", ip)
        _raise_if_refused(reservation.verdict, "register_ip")
        try:
            yield
        # A cancelled block (not an Exception) keeps its reservation: the account may exist.
        except Exception:
            await self._store.release(reservation)
            raise

    @asynccontextmanager
    async def password_check(self, email: str) -> AsyncIterator[None]:
        """Reserve one of the account's password checks for the block, whatever the IP.

        Reserved before any hashing and atomically, so however many attempts arrive
        together, at most the limit's worth are checked per window. The block keeps the
        reservation only when it raises InvalidCredentials (a wrong password, or an
        unknown email: the answer must not tell); any other outcome gives it back, so
        successes never count as failures.

        Raises:
            RateLimited: the account's failed checks reached the limit.
        """
        async with self._failure_check(account_key(email), InvalidCredentials):
            yield

    def second_factor_check(self, account: str) -> AbstractAsyncContextManager[None]:
        """Reserve one of the account's failed checks for a one-time or recovery code: the
        same limit as passwords (`account`: its account_key), kept when the block raises
        MfaInvalid, so concurrent guesses get at most the limit's worth checked.

        Raises:
            RateLimited: the account's failed checks reached the limit.
        """
        return self._failure_check(account, MfaInvalid)

    @asynccontextmanager
    async def _failure_check(self, account: str, failure: type[Exception]) -> AsyncIterator[None]:
        if not self._enabled:
            yield
            return
        reservation = await self._store.reserve(self._failures, "password-failures", account)
        _raise_if_refused(reservation.verdict, "login_account")
        try:
            yield
        except failure:
            raise
        # A cancelled block keeps its reservation too: its check may have run.
        except Exception:
            await self._store.release(reservation)
            raise
        await self._store.release(reservation)


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
