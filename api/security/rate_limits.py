"""Rate limits: failed logins and registrations per client IP, password checks per account
and per device, and logins for unknown addresses across all IPs.

Every check runs before any password hashing, so saying no stays cheap. Limits on failures
are reservations: taken before the work, atomically, and given back when the work turns
out not to be a failure, so concurrent attempts can't overshoot and successes never count.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from limits import RateLimitItem, parse

from api.config.settings import Settings
from api.domain.errors import (
    DomainError,
    InternalError,
    InvalidCredentials,
    MfaInvalid,
    RateLimited,
    ServiceUnavailable,
)
from api.edge.metrics import RATE_LIMIT_HITS
from db.emails import normalise_email
from db.rate_limit_store import RateLimitStore, Reservation, Verdict


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
        self._device_failures: RateLimitItem = parse(settings.device_failure_limit)
        self._unknown: RateLimitItem = parse(settings.login_unknown_limit)
        self._forgot_ip: RateLimitItem = parse(settings.forgot_password_ip_limit)
        self._forgot_email: RateLimitItem = parse(settings.forgot_password_email_limit)
        self._account_mail: RateLimitItem = parse(settings.account_mail_limit)

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
    async def login(self, ip: str) -> AsyncIterator[None]:
        """Hold one of `ip`'s failed-login attempts for the block, given back unless it fails.

        A block that ends in a client error (any 4xx: a wrong password, an unknown address,
        a refused body, a locked account) keeps it; success and the server's own failures
        (5xx) give it back, so honest users sharing one address (a carrier NAT) never
        use up each other's logins.

        Raises:
            RateLimited: the IP's failed logins (with those in progress) reached the limit.
        """
        if not self._enabled:
            yield
            return
        reservation = await self._store.reserve(self._login, "login-failures-ip", ip)
        _raise_if_refused(reservation.verdict, "login_ip")
        async with self._kept_on_client_error(reservation):
            yield

    @asynccontextmanager
    async def registration(self, ip: str) -> AsyncIterator[None]:
        """Hold one of `ip`'s failed registrations and one of its account creations for the
        block.

        Both are reserved atomically before the work. The account creation is given back
        when the block raises (a taken email, a refused password, an outage), so
        concurrent registrations can't overshoot and a newcomer's mistakes create nothing;
        the failed-attempt one is given back when the account is created, so only
        mistakes count against REGISTER_ATTEMPT_LIMIT (which bounds how many addresses an
        IP can probe for `email_taken`).

        Raises:
            RateLimited: the IP failed too many times, or created too many accounts.
        """
        if not self._enabled:
            yield
            return
        attempt = await self._store.reserve(self._register_attempts, "register-failures-ip", ip)
        _raise_if_refused(attempt.verdict, "register_attempt_ip")
        async with self._kept_on_client_error(attempt):
            reservation = await self._store.reserve(self._register, "register-ip", ip)
            _raise_if_refused(reservation.verdict, "register_ip")
            try:
                yield
            # A cancelled block (not an Exception) keeps its reservation: the account may exist.
            except Exception:
                await self._store.release(reservation)
                raise

    @asynccontextmanager
    async def password_check(self, email: str, device: str | None = None) -> AsyncIterator[None]:
        """Reserve one of the account's password checks for the block, whatever the IP.

        `device`: the id of a valid device token of this account the request presented;
        its checks count against that device's own budget (DEVICE_FAILURE_LIMIT) instead
        of the account-wide one, so guesses from elsewhere never lock the owner out.

        Reserved before any hashing and atomically, so however many attempts arrive
        together, at most the limit's worth are checked per window. The block keeps the
        reservation only when it raises InvalidCredentials (a wrong password, or an
        unknown email: the answer must not tell); any other outcome gives it back, so
        successes never count as failures.

        Raises:
            RateLimited: the account's (or the device's) failed checks reached the limit.
        """
        async with self._failure_check(account_key(email), InvalidCredentials, device):
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
    async def _failure_check(
        self, account: str, failure: type[Exception], device: str | None = None
    ) -> AsyncIterator[None]:
        if not self._enabled:
            yield
            return
        if device is None:
            reservation = await self._store.reserve(self._failures, "password-failures", account)
            _raise_if_refused(reservation.verdict, "login_account")
        else:
            reservation = await self._store.reserve(
                self._device_failures, "password-failures-device", account, device
            )
            _raise_if_refused(reservation.verdict, "login_device")
        try:
            yield
        except failure:
            raise
        # A cancelled block keeps its reservation too: its check may have run.
        except Exception:
            await self._store.release(reservation)
            raise
        await self._store.release(reservation)

    async def count_unknown_address(self) -> None:
        """Count a login for an address that has no account, across all IPs (before its
        dummy check).

        Raises:
            RateLimited: too many logins for unknown addresses, from everywhere together.
        """
        if self._enabled:
            verdict = await self._store.hit(self._unknown, "login-unknown")
            _raise_if_refused(verdict, "login_unknown")

    @asynccontextmanager
    async def _kept_on_client_error(self, reservation: Reservation) -> AsyncIterator[None]:
        try:
            yield
        except DomainError as error:
            if isinstance(error, (ServiceUnavailable, InternalError)):
                await self._store.release(reservation)
            raise
        # Anything else is the server's failure (an internal error); a cancelled block
        # (not an Exception) keeps its reservation.
        except Exception:
            await self._store.release(reservation)
            raise
        await self._store.release(reservation)


def _raise_if_refused(verdict: Verdict, limit: str) -> None:
    if verdict.allowed:
        return
    RATE_LIMIT_HITS.labels(limit).inc()
    raise RateLimited(
        retry_after=verdict.reset_after, limit=verdict.limit, remaining=verdict.remaining
    )
