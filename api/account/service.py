"""Verification, forgotten passwords and email change: the rules of links sent by mail."""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from datetime import datetime

from api.account.links import Purpose, password_digest, token_hash, well_formed
from api.account.messages import AccountMail
from api.config.settings import Settings
from api.domain.audit import AuditTrail, EventType
from api.domain.clock import Clock
from api.domain.errors import (
    EmailTaken,
    InvalidCredentials,
    LinkInvalid,
    TokenRevoked,
    ValidationFailed,
)
from api.domain.session_ending import SessionEnding
from api.edge.metrics import REVOCATIONS
from api.security.claims import AccessClaims
from api.security.passwords import Passwords, password_problems
from api.security.rate_limits import RateLimits
from db.emails import NORMALISED_EMAIL_MAX_LENGTH, NormalisedEmail, normalise_email
from db.engine import Database
from db.errors import ConflictError
from db.models import MessageToken
from db.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)


class RecoveryService:
    """Built once per worker; each method owns its transaction, and every message it causes
    is written to the outbox in that transaction."""

    def __init__(
        self,
        database: Database,
        passwords: Passwords,
        limits: RateLimits,
        ending: SessionEnding,
        mail: AccountMail,
        trail: AuditTrail,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._database = database
        self._passwords = passwords
        self._limits = limits
        self._ending = ending
        self._mail = mail
        self._trail = trail
        self._settings = settings
        self._clock = clock
        # Forgotten-password work under way after its answer was sent.
        self._pending: set[asyncio.Task[None]] = set()

    async def settled(self) -> None:
        """Wait for the forgotten-password work already answered (a stopping worker, tests)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def request_verification(self, claims: AccessClaims) -> None:
        """Send a new verification link (superseding the last); nothing if already verified.

        Raises:
            RateLimited: the account asked for too many messages.
            TokenRevoked: the user no longer exists.
        """
        await self._limits.count_account_mail(claims.user_id)
        async with self._database.unit_of_work() as uow:
            user = await uow.users.get(uuid.UUID(claims.user_id))
            if user is None:
                raise TokenRevoked()
            if user.email_verified_at is not None:
                return
            await self._mail.verification(uow, user)
            event = self._trail.event(
                EventType.EMAIL_VERIFICATION_SENT,
                user_id=user.id,
                session_id=claims.session_id,
            )
            await uow.record(event)
            await uow.commit()
        self._mail.queued()

    async def verify_email(self, token: str) -> None:
        """Mark the address the link was sent to as verified.

        Raises:
            LinkInvalid: unknown, used, expired, superseded or wrong-purpose token, or the
                address is no longer the account's.
        """
        async with self._database.unit_of_work() as uow:
            row = await self._use(uow, token, Purpose.VERIFY_EMAIL)
            user = await uow.users.lock(row.user_id)
            if user is None or user.email_normalised != row.address:
                raise LinkInvalid()
            await uow.users.mark_email_verified(user, self._clock())
            event = self._trail.event(EventType.EMAIL_VERIFIED, user_id=user.id)
            await uow.record(event)
            await uow.commit()

    async def forgot_password(self, email: str, ip: str) -> None:
        """Count the request, then look for the account and send it a reset link after the
        answer: the answer's time can't tell whether an account has `email`.

        Raises:
            RateLimited: the IP, or the address, asked too often.
        """
        normalised = normalise_email(email)
        await self._limits.count_forgot_password(ip, normalised)
        # The task copies the request's context: its audit event names the request's origin.
        task = asyncio.get_running_loop().create_task(self._send_reset(normalised))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send_reset(self, normalised: NormalisedEmail) -> None:
        try:
            await self._queue_reset(normalised)
        except Exception:
            # Nobody waits for this answer: the client was told 202 already.
            logger.exception("password reset request not processed")

    async def _queue_reset(self, normalised: NormalisedEmail) -> None:
        async with self._database.unit_of_work() as uow:
            user = await uow.users.get_by_email(normalised)
            if user is not None and not user.disabled:
                await self._mail.password_reset(uow, user)
                event = self._trail.event(EventType.PASSWORD_RESET_REQUESTED, user_id=user.id)
            else:
                # The statements an account's request makes, on nothing: the answer must
                # take as long as for an account.
                await uow.message_tokens.supersede(
                    uuid.uuid4(), Purpose.RESET_PASSWORD, self._clock()
                )
                event = self._trail.event(
                    EventType.PASSWORD_RESET_REQUESTED,
                    details={"account": "none", "email_hash": self._trail.email_hash(normalised)},
                )
            await uow.record(event)
            await uow.commit()
        self._mail.queued()

    async def reset_password(self, token: str, new_password: str) -> None:
        """Set a new password, end every session and token of the user, mark the address
        verified.

        Raises:
            ValidationFailed: the new password breaks a rule.
            LinkInvalid: the token is not a live reset token of the account's current
                address and password.
            HashingBusy: too many password hashes are waiting.
        """
        problems = password_problems(new_password, self._settings.password_min_length)
        if problems:
            raise ValidationFailed([{"field": "new_password", "message": m} for m in problems])
        # A cheap look first, so a made-up token costs no hashing.
        if not well_formed(token):
            raise LinkInvalid()
        async with self._database.unit_of_work() as uow:
            usable = await uow.message_tokens.find_usable(
                token_hash(token), Purpose.RESET_PASSWORD, self._clock()
            )
        if not usable:
            raise LinkInvalid()
        password_hash = await self._passwords.hash(new_password)
        async with self._database.unit_of_work() as uow:
            row = await self._use(uow, token, Purpose.RESET_PASSWORD)
            user = await uow.users.lock(row.user_id)
            if (
                user is None
                or user.email_normalised != row.address
                or row.password_digest is None
                or not hmac.compare_digest(row.password_digest, password_digest(user.password_hash))
            ):
                raise LinkInvalid()
            await uow.users.change_password(user, password_hash)
            await uow.users.mark_email_verified(user, self._clock())
            await self._ending.everything(uow, str(user.id))
            event = self._trail.event(EventType.PASSWORD_RESET, user_id=user.id)
            await uow.record(event)
            await uow.commit()
        REVOCATIONS.labels("password_reset").inc()

    async def request_email_change(
        self, claims: AccessClaims, new_email: str, password: str
    ) -> None:
        """Send a confirmation link to `new_email` and a notice to the current address.

        Raises:
            ValidationFailed: the address is too long, or already the account's.
            RateLimited: too many messages or failed password checks for this account.
            InvalidCredentials: `password` is wrong.
            EmailTaken: another account has `new_email`.
            TokenRevoked: the user no longer exists.
        """
        normalised = normalise_email(new_email)
        if len(normalised) > NORMALISED_EMAIL_MAX_LENGTH:
            raise ValidationFailed(
                [{"field": "new_email", "message": "The email address is too long."}]
            )
        await self._limits.count_account_mail(claims.user_id)
        async with self._database.unit_of_work() as uow:
            user = await uow.users.get(uuid.UUID(claims.user_id))
            if user is None:
                raise TokenRevoked()
            await uow.release()
            # The same per-account limit as login: a token must not make a better password oracle.
            async with self._limits.password_check(user.email):
                if not await self._passwords.verify(user.password_hash, password):
                    raise InvalidCredentials("The password is incorrect.")
            if normalised == user.email_normalised:
                raise ValidationFailed(
                    [{"field": "new_email", "message": "This is already the account's address."}]
                )
            if await uow.users.get_by_email(normalised) is not None:
                raise EmailTaken()
            await self._mail.email_change(uow, user, new_email, normalised)
            event = self._trail.event(
                EventType.EMAIL_CHANGE_REQUESTED, user_id=user.id, session_id=claims.session_id
            )
            await uow.record(event)
            await uow.commit()
        self._mail.queued()

    async def confirm_email_change(self, token: str) -> None:
        """Switch the account to the address the link was sent to (now verified).

        Raises:
            LinkInvalid: the token is not a live email-change token.
            EmailTaken: another account took the address since the link was sent.
        """
        async with self._database.unit_of_work() as uow:
            row = await self._use(uow, token, Purpose.CHANGE_EMAIL)
            user = await uow.users.lock(row.user_id)
            if user is None or row.new_email is None:
                raise LinkInvalid()
            now: datetime = self._clock()
            try:
                await uow.users.change_email(user, row.new_email, NormalisedEmail(row.address), now)
            except ConflictError:
                raise EmailTaken() from None
            event = self._trail.event(EventType.EMAIL_CHANGED, user_id=user.id)
            await uow.record(event)
            await uow.commit()

    async def _use(self, uow: UnitOfWork, token: str, purpose: Purpose) -> MessageToken:
        if not well_formed(token):
            raise LinkInvalid()
        row = await uow.message_tokens.use(token_hash(token), purpose, self._clock())
        if row is None:
            raise LinkInvalid()
        return row
