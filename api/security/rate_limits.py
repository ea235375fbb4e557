"""Rate limits: login and registration per client IP, and password checks per account.

Every check runs before any password hashing, so saying no stays cheap.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from limits import RateLimitItem, parse

from api.errors import InvalidCredentials, RateLimited
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
        self._forgot_ip: RateLimitItem = parse(settings.forgot_password_ip_limit)
        self._forgot_email: RateLimitItem = parse(settings.forgot_password_email_limit)
        self._account_mail: RateLimitItem = parse(settings.account_mail_limit)

    async def count_login(self, ip: str) -> None:
        """Count a login request from `ip`.

        Raises:
            RateLimited: the IP made too many login requests.
        """
        if self._enabled:
            _raise_if_refused(await self._store.hit(self._login, "login-ip", ip), "login_ip")

    async def count_forgot_password(self, ip: str, email: str) -> None:
        """Count a forgotten-password request from `ip` for `email` (an account or not).

        Raises:
            RateLimited: the IP, or the address, asked too often.
        """
        if not self._enabled:
            return
        ip_verdict = await self._store.hit(self._forgot_ip, "forgot-ip", ip)
        _raise_if_refused(ip_verdict, "forgot_ip")
        email_verdict = await self._store.hit(
            self._forgot_email, "forgot-email", account_key(email)
        )
        _raise_if_refused(email_verdict, "forgot_email")

    async def count_account_mail(self, user_id: str) -> None:
        """Count a message a signed-in account asked for (verification, email change).

        Raises:
            RateLimited: the account asked for too many.
        """
        if self._enabled:
            verdict = await self._store.hit(self._account_mail, "account-mail", user_id)
            _raise_if_refused(verdict, "account_mail")

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
        if not self._enabled:
            yield
            return
        reservation = await self._store.reserve(
            self._failures, "password-failures", account_key(email)
        )
        _raise_if_refused(reservation.verdict, "login_account")
        try:
            yield
        except InvalidCredentials:
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
