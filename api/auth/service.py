"""Registration, login and refresh: the rules of getting and renewing tokens."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from api.account.messages import AccountMail
from api.audit import AuditTrail, EventType
from api.auth.rotation import Rotation
from api.clock import Clock
from api.errors import (
    AccountDisabled,
    EmailTaken,
    EmailUnverified,
    InvalidCredentials,
    ValidationFailed,
)
from api.security.claims import RefreshClaims
from api.security.passwords import Passwords, password_problems
from api.security.rate_limits import RateLimits
from api.security.tokens import IssuedTokens, issue_tokens
from api.settings import Settings
from db.emails import NORMALISED_EMAIL_MAX_LENGTH, normalise_email
from db.engine import Database
from db.errors import ConflictError
from db.models import User
from db.sessions import Opening


@dataclass(frozen=True)
class Device:
    """Where a login comes from, as recorded on its session."""

    name: str | None
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class Login:
    session_id: str
    tokens: IssuedTokens


class AuthService:
    """Built once per worker with its stores; every method is one request's work."""

    def __init__(
        self,
        database: Database,
        passwords: Passwords,
        limits: RateLimits,
        rotation: Rotation,
        trail: AuditTrail,
        settings: Settings,
        clock: Clock,
        mail: AccountMail,
    ) -> None:
        self._database = database
        self._passwords = passwords
        self._limits = limits
        self._rotation = rotation
        self._trail = trail
        self._settings = settings
        self._clock = clock
        self._mail = mail

    def registration_attempt(self, ip: str) -> AbstractAsyncContextManager[None]:
        """Count a registration attempt from `ip` and hold one of its account creations for
        the block, given back unless the block creates the account.

        Raises:
            RateLimited: the IP made too many attempts, or created too many accounts.
        """
        return self._limits.registration(ip)

    @asynccontextmanager
    async def login_attempt(self, ip: str) -> AsyncIterator[None]:
        """Count a login request from `ip`, before its body is even parsed.

        Raises:
            RateLimited: the IP made too many login requests.
        """
        await self._limits.count_login(ip)
        yield

    async def register(self, email: str, password: str) -> User:
        """Create a user with role `user`, and queue the message that verifies the address.

        Raises:
            ValidationFailed: the password breaks a rule.
            EmailTaken: the email exists, once normalised (case, width, compatibility forms).
        """
        problems = password_problems(password, self._settings.password_min_length)
        if problems:
            raise ValidationFailed([{"field": "password", "message": m} for m in problems])
        normalised = normalise_email(email)
        if len(normalised) > NORMALISED_EMAIL_MAX_LENGTH:
            raise ValidationFailed(
                [{"field": "email", "message": "The email address is too long."}]
            )
        # A cheap look-up first, so a taken email costs no hashing.
        async with self._database.statements() as statements:
            if await statements.users.credentials(normalised) is not None:
                raise EmailTaken()
        password_hash = await self._passwords.hash(password)
        async with self._database.unit_of_work() as uow:
            try:
                user = await uow.users.add(email, normalised, password_hash)
            except ConflictError:
                raise EmailTaken() from None
            await self._mail.verification(uow, user)
            event = self._trail.event(EventType.USER_REGISTERED, user_id=user.id)
            sent = self._trail.event(EventType.EMAIL_VERIFICATION_SENT, user_id=user.id)
            await uow.audit.add(event)
            await uow.audit.add(sent)
            await uow.commit()
        self._trail.logged(event, sent)
        self._mail.queued()
        return user

    async def login(
        self, email: str, password: str, device: Device, *, remember: bool = False
    ) -> Login:
        """Check the credentials and open a new device session (`remember`: see issue_tokens).

        Raises:
            RateLimited: too many failed password checks for this account (reserved first).
            HashingBusy: too many password checks are waiting for the hashing threads.
            InvalidCredentials: unknown email or wrong password (same answer, same work).
            AccountDisabled: right password, but the account is disabled.
            EmailUnverified: right password, but REQUIRE_VERIFIED_EMAIL is on and the address
                is not verified.
        """
        # Stamped before the account is read: a role change or sign-out that lands while the
        # password is being checked comes after `iat`, so its "before" mark covers these tokens.
        issued_at = time.time()
        normalised = normalise_email(email)
        passwords = self._passwords
        failure: tuple[uuid.UUID | None, str] | None = None
        try:
            async with self._limits.password_check(normalised):
                async with self._database.statements() as statements:
                    user = await statements.users.credentials(normalised)
                if user is None:
                    await passwords.verify_dummy(password)
                    failure = (None, "unknown_email")
                elif not await passwords.verify(user.password_hash, password):
                    failure = (user.id, "wrong_password")
                if failure is not None:
                    # Leaving the block this way keeps the reservation of the failed check.
                    raise InvalidCredentials()
        except InvalidCredentials:
            # Recorded after the reservation is kept: a failing write can't give it back.
            assert failure is not None
            user_id, reason = failure
            await self._login_failed(user_id, reason, normalised if user_id is None else None)
            raise
        assert user is not None
        if user.disabled:
            await self._login_failed(user.id, "account_disabled")
            raise AccountDisabled()
        if self._settings.require_verified_email and not user.email_verified:
            await self._login_failed(user.id, "email_unverified")
            raise EmailUnverified()
        if passwords.needs_rehash(user.password_hash):
            await self._rehash(user.id, password)
        session_id = uuid.uuid4()
        now = self._clock()
        tokens = issue_tokens(
            user_id=user.id,
            role=user.role,
            session_id=session_id,
            fresh=True,
            settings=self._settings,
            issued_at=issued_at,
            remember=remember,
        )
        opening = Opening(
            session_id=session_id,
            user_id=user.id,
            refresh_jti=tokens.refresh_jti,
            expires_at=tokens.refresh_expires_at,
            device_name=device.name,
            ip=device.ip,
            user_agent=device.user_agent,
            now=now,
        )
        event = self._trail.event(
            EventType.LOGIN_SUCCEEDED,
            user_id=user.id,
            session_id=session_id,
            details={"device_name": device.name},
        )
        # The session and its event are one statement, atomic alone: no transaction around it.
        async with self._database.statements() as statements:
            await statements.sessions.open(opening, event)
        self._trail.logged(event)
        return Login(session_id=str(session_id), tokens=tokens)

    async def refresh(self, claims: RefreshClaims) -> IssuedTokens:
        """Exchange a verified, unrevoked refresh token for a new pair (see api.auth.rotation).

        Raises:
            TokenRevoked, RefreshTokenReused, AccountDisabled, StoreUnavailable.
        """
        async with self._database.unit_of_work() as uow:
            return await self._rotation.exchange(uow, claims)

    async def _login_failed(
        self, user_id: uuid.UUID | None, reason: str, unknown_email: str | None = None
    ) -> None:
        details = {"reason": reason}
        if unknown_email is not None:
            details["email_hash"] = self._trail.email_hash(unknown_email)
        event = self._trail.event(EventType.LOGIN_FAILED, user_id=user_id, details=details)
        async with self._database.statements() as statements:
            await statements.audit.add(event)
        self._trail.logged(event)

    async def _rehash(self, user_id: uuid.UUID, password: str) -> None:
        password_hash = await self._passwords.hash(password)
        async with self._database.unit_of_work() as uow:
            user = await uow.users.get(user_id)
            if user is not None:
                await uow.users.set_password_hash(user, password_hash)
                await uow.commit()
