"""Registration, login and refresh: the rules of getting and renewing tokens."""

from __future__ import annotations

import time
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from api.account.messages import AccountMail
from api.auth.rotation import Rotation
from api.config.settings import Settings
from api.domain.audit import AuditTrail, EventType
from api.domain.clock import Clock
from api.domain.errors import (
    AccountDisabled,
    EmailTaken,
    EmailUnverified,
    InvalidCredentials,
    MfaInvalid,
    ValidationFailed,
)
from api.domain.user_view import UserView, user_view
from api.security.claims import RefreshClaims
from api.security.device_tokens import DeviceTokens, IssuedDeviceToken
from api.security.passwords import Passwords, password_problems
from api.security.rate_limits import RateLimits
from api.security.tokens import PASSWORD_ONLY, IssuedTokens, TokenIssuer
from db.emails import NORMALISED_EMAIL_MAX_LENGTH, NormalisedEmail, normalise_email
from db.engine import Database
from db.errors import ConflictError
from db.sessions import Opening
from db.users import Credentials

if TYPE_CHECKING:
    from api.mfa.service import SecondFactorGate


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
    device_token: IssuedDeviceToken


class AuthService:
    """Built once per worker with its stores; every method is one request's work."""

    def __init__(
        self,
        database: Database,
        passwords: Passwords,
        limits: RateLimits,
        device_tokens: DeviceTokens,
        rotation: Rotation,
        issuer: TokenIssuer,
        trail: AuditTrail,
        settings: Settings,
        clock: Clock,
        second_factor: SecondFactorGate,
        mail: AccountMail,
    ) -> None:
        self._second_factor = second_factor
        self._database = database
        self._passwords = passwords
        self._limits = limits
        self._device_tokens = device_tokens
        self._rotation = rotation
        self._issuer = issuer
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

    def login_attempt(self, ip: str) -> AbstractAsyncContextManager[None]:
        """Hold one of `ip`'s failed logins for the block, from before the body is even
        parsed; given back unless the login fails.

        Raises:
            RateLimited: the IP's failed logins reached the limit.
        """
        return self._limits.login(ip)

    async def register(self, email: str, password: str) -> UserView:
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
        async with self._database.driver_statements() as statements:
            if await statements.credentials(normalised) is not None:
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
            await uow.record(event, sent)
            await uow.commit()
            view = user_view(user)
        self._mail.queued()
        return view

    async def login(
        self,
        email: str,
        password: str,
        device: Device,
        *,
        remember: bool = False,
        device_token: str | None = None,
    ) -> Login:
        """Check the credentials and open a new device session (`remember`: see issue_tokens).

        `device_token`: what the client presented as its device token; a valid one of this
        account puts the check on that device's own failure budget, anything else is none.

        Raises:
            RateLimited: too many failed password checks for this account or device, or too
                many logins for unknown addresses (each reserved or counted first).
            HashingBusy: too many password checks are waiting for the hashing threads.
            InvalidCredentials: unknown email or wrong password (same answer, same work).
            AccountDisabled: right password, but the account is disabled.
            EmailUnverified: right password, but REQUIRE_VERIFIED_EMAIL is on and the address
                is not verified.
            MfaRequired: right password, and the account has a second factor (api.mfa).

        The session opens only if the account is still as read (db.sessions): a change
        committed meanwhile (demotion, disable, deletion, password change, sign-out
        everywhere) wins, and the login is answered as if it came after it.
        """
        # Stamped before the account is read: a role change or sign-out that lands while the
        # password is being checked comes after `iat`, so its "before" mark covers these tokens.
        issued_at = time.time()
        normalised = normalise_email(email)
        passwords = self._passwords
        failure: tuple[uuid.UUID | None, str] | None = None
        # A check the hashing would refuse costs no Redis or Postgres round trip.
        passwords.check_admission()
        user: Credentials | None = None
        known_device: str | None = None
        # Only a request with a device token needs the account before the limits (to
        # check the token's binding); the others are refused without reading it.
        if device_token is not None:
            user = await self._credentials(normalised)
            if user is not None:
                known_device = self._device_tokens.device_of(device_token, user.id)
        try:
            async with self._limits.password_check(normalised, known_device):
                if device_token is None:
                    user = await self._credentials(normalised)
                if user is None:
                    await self._limits.count_unknown_address()
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
        await self._refuse_unless_admissible(user)
        if passwords.needs_rehash(user.password_hash):
            await self._rehash(user.id, password)
        opened = await self._challenge_or_open(user, normalised, device, issued_at, remember)
        if opened is None:
            opened = await self._after_lost_race(user, normalised, password, device, remember)
        return opened

    async def open_verified_session(
        self,
        user_id: uuid.UUID,
        version: int,
        device: Device,
        *,
        remember: bool,
        issued_at: float,
        amr: tuple[str, ...],
    ) -> Login:
        """Open the session of a login whose second factor was just verified (api.mfa), if
        the account is still as its password check read it (`version`).

        Raises:
            MfaInvalid: the account is gone, or changed since the password was checked
                (the login starts over).
            AccountDisabled: the account was disabled since its password was checked.
        """
        async with self._database.statements() as statements:
            user = await statements.users.profile(user_id)
        if user is None:
            raise MfaInvalid()
        if user.disabled:
            raise AccountDisabled()
        opened = await self._open(user.id, user.role, version, device, issued_at, remember, amr)
        if opened is None:
            raise MfaInvalid()
        return opened

    async def refresh(self, claims: RefreshClaims) -> IssuedTokens:
        """Exchange a verified, unrevoked refresh token for a new pair (see api.auth.rotation).

        Raises:
            TokenRevoked, RefreshTokenReused, AccountDisabled, StoreUnavailable.
        """
        async with self._database.unit_of_work() as uow:
            return await self._rotation.exchange(uow, claims)

    async def _open(
        self,
        user_id: uuid.UUID,
        role: str,
        version: int,
        device: Device,
        issued_at: float,
        remember: bool,
        amr: tuple[str, ...],
    ) -> Login | None:
        """Open a session with tokens for `role` and `amr`, if the user still is as read
        (`version`, not disabled, not deleted); None if a change to the account came first."""
        session_id = uuid.uuid4()
        tokens = self._issuer.issue(
            user_id=user_id,
            role=role,
            session_id=session_id,
            fresh=True,
            issued_at=issued_at,
            remember=remember,
            amr=amr,
        )
        opening = Opening(
            session_id=session_id,
            user_id=user_id,
            refresh_jti=tokens.refresh_jti,
            expires_at=tokens.refresh_expires_at,
            device_name=device.name,
            ip=device.ip,
            user_agent=device.user_agent,
            now=self._clock(),
            amr=amr,
        )
        event = self._trail.event(
            EventType.LOGIN_SUCCEEDED,
            user_id=user_id,
            session_id=session_id,
            details={"device_name": device.name},
        )
        # The session and its event are one statement, atomic alone: no transaction around it;
        # the event is reported like any other once the statements are done.
        async with self._database.driver_statements() as statements:
            if not await statements.open_session(opening, event, version):
                return None
        return Login(
            session_id=str(session_id),
            tokens=tokens,
            device_token=self._device_tokens.issue(user_id),
        )

    async def _after_lost_race(
        self,
        read: Credentials,
        normalised: NormalisedEmail,
        password: str,
        device: Device,
        remember: bool,
    ) -> Login:
        """Answer a login whose session lost to a change of the account made after its read,
        as a login made after that change: read the account again and try once more.

        A demoted or signed-out user gets a session with what the account is now (the
        owner only logged in at that moment, and expects to be in); a deleted account is
        unknown, a disabled one disabled, and a changed password is checked again.
        A second lost race (another change at once) is answered as invalid credentials.

        Raises:
            InvalidCredentials: the account is gone, the password changed, or it changed again.
            AccountDisabled: the account was disabled.
            EmailUnverified: the address is no longer verified (REQUIRE_VERIFIED_EMAIL).
            MfaRequired: the account has a second factor (enrolled meanwhile, or before).
        """
        # Stamped before the read again: the change's "before" mark must not cover the
        # tokens of this session, opened after the change.
        issued_at = time.time()
        user = await self._credentials(normalised)
        if user is None or user.id != read.id:
            await self._login_failed(read.id, "account_deleted")
            raise InvalidCredentials()
        if user.password_hash != read.password_hash and not await self._passwords.verify(
            user.password_hash, password
        ):
            await self._login_failed(user.id, "wrong_password")
            raise InvalidCredentials()
        await self._refuse_unless_admissible(user)
        opened = await self._challenge_or_open(user, normalised, device, issued_at, remember)
        if opened is None:
            await self._login_failed(user.id, "account_changed")
            raise InvalidCredentials()
        return opened

    async def _refuse_unless_admissible(self, user: Credentials) -> None:
        """Refuse a login whose password was right but whose account may not log in.

        Raises:
            AccountDisabled: the account is disabled.
            EmailUnverified: REQUIRE_VERIFIED_EMAIL is on and the address is not verified.
        """
        if user.disabled:
            await self._login_failed(user.id, "account_disabled")
            raise AccountDisabled()
        if self._settings.require_verified_email and not user.email_verified:
            await self._login_failed(user.id, "email_unverified")
            raise EmailUnverified()

    async def _challenge_or_open(
        self,
        user: Credentials,
        normalised: NormalisedEmail,
        device: Device,
        issued_at: float,
        remember: bool,
    ) -> Login | None:
        """The session of a proven password, None if the account changed since `user` was
        read.

        Raises:
            MfaRequired: the account has a second factor; POST /auth/mfa/verify ends the login.
        """
        if user.mfa_enabled:
            await self._second_factor.challenge(
                user.id, user.version, normalised, device, remember=remember
            )
        return await self._open(
            user.id, user.role, user.version, device, issued_at, remember, PASSWORD_ONLY
        )

    async def _credentials(self, normalised_email: NormalisedEmail) -> Credentials | None:
        async with self._database.driver_statements() as statements:
            return await statements.credentials(normalised_email)

    async def _login_failed(
        self, user_id: uuid.UUID | None, reason: str, unknown_email: str | None = None
    ) -> None:
        details = {"reason": reason}
        if unknown_email is not None:
            details["email_hash"] = self._trail.email_hash(unknown_email)
        event = self._trail.event(EventType.LOGIN_FAILED, user_id=user_id, details=details)
        async with self._database.statements() as statements:
            await statements.record(event)

    async def _rehash(self, user_id: uuid.UUID, password: str) -> None:
        password_hash = await self._passwords.hash(password)
        async with self._database.unit_of_work() as uow:
            user = await uow.users.get(user_id)
            if user is not None:
                await uow.users.set_password_hash(user, password_hash)
                await uow.commit()
