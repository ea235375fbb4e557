"""The rules of the second factor: enrolment, the login's code step, turning it off,
recovery codes, an administrator's reset, and what step-up asks.

A one-time code is accepted once: the time step it belongs to is remembered per user
until no verifier would take it any more. A recovery code is spent by a conditional
UPDATE, so of many concurrent uses one wins. Every code checked holds one of the account's
failed-check reservations (the password limit's), kept when the code is wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from api.config.settings import Settings
from api.domain.audit import AuditTrail, EventType
from api.domain.clock import Clock
from api.domain.errors import (
    Forbidden,
    MfaAlreadyEnrolled,
    MfaInvalid,
    MfaRequired,
    NotFound,
    TokenRevoked,
)
from api.domain.session_ending import SessionEnding
from api.mfa import codes
from api.mfa.secrets import SecretBox
from api.security.claims import AccessClaims
from api.security.permissions import permissions_of
from api.security.rate_limits import RateLimits, account_key
from api.security.tokens import WITH_ONE_TIME_CODE, WITH_RECOVERY_CODE
from db.audit import NewEvent
from db.engine import Database
from db.mfa_store import SecondFactorStore
from db.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from api.auth.service import Device, Login

# What the login's `401 mfa_required` offers.
METHODS = ("totp", "recovery_code")


@dataclass(frozen=True)
class Enrolment:
    """A pending TOTP factor as the user's app needs it."""

    secret: str
    otpauth_uri: str


@dataclass(frozen=True)
class Proof:
    """What a user offers as their second factor: a one-time code or a recovery code."""

    code: str | None = None
    recovery_code: str | None = None


class _WrongFactor(MfaInvalid):
    """A code that was checked and refused; `reason` goes to the audit trail."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def _token_hash(mfa_token: str) -> str:
    # Redis holds only a digest: a copy of it can't finish anyone's login.
    return hashlib.sha256(mfa_token.encode()).hexdigest()


class SecondFactorGate:
    """What login asks of an account with a second factor: a challenge."""

    def __init__(self, store: SecondFactorStore, settings: Settings) -> None:
        self._store = store
        self._ttl = settings.mfa_token_ttl

    async def challenge(
        self, user_id: uuid.UUID, version: int, email: str, device: Device, *, remember: bool
    ) -> None:
        """Remember the login of an enrolled account (its password was right, the account
        at `version`) and ask for its code.

        Raises:
            MfaRequired: always; carries the `mfa_token` that finishes the login.
        """
        mfa_token = secrets.token_urlsafe(32)
        facts = {
            "user_id": str(user_id),
            "version": version,
            "account": account_key(email),
            "device_name": device.name,
            "ip": device.ip,
            "user_agent": device.user_agent,
            "remember": remember,
        }
        await self._store.put_challenge(_token_hash(mfa_token), facts, self._ttl)
        raise MfaRequired(
            "Correct password; send a code from the authenticator app (or a recovery code) "
            "to POST /auth/mfa/verify with this mfa_token.",
            mfa_token=mfa_token,
            methods=METHODS,
        )


SessionOpener = Callable[..., Awaitable["Login"]]


class MfaService:
    """Built once per worker with its stores; each method owns its transaction."""

    def __init__(
        self,
        database: Database,
        store: SecondFactorStore,
        box: SecretBox,
        limits: RateLimits,
        ending: SessionEnding,
        trail: AuditTrail,
        settings: Settings,
        clock: Clock,
        open_session: SessionOpener,
    ) -> None:
        self._database = database
        self._store = store
        self._box = box
        self._limits = limits
        self._ending = ending
        self._trail = trail
        self._settings = settings
        self._clock = clock
        self._open_session = open_session

    async def is_enrolled(self, user_id: str) -> bool:
        """Whether the user has a confirmed second factor."""
        async with self._database.statements() as statements:
            return await statements.mfa.enrolled(uuid.UUID(user_id))

    async def enrol(self, claims: AccessClaims) -> Enrolment:
        """Start (or restart) a TOTP enrolment; nothing changes at login until confirmed.

        Raises:
            MfaAlreadyEnrolled: a confirmed factor exists.
            MfaKeyMissing: production without MFA_ENCRYPTION_KEY.
        """
        user_id = uuid.UUID(claims.user_id)
        email = await self._email(user_id)
        secret = codes.new_secret()
        stored = self._box.encrypt(secret)
        async with self._database.unit_of_work() as uow:
            if not await uow.mfa.start(user_id, stored, self._clock()):
                raise MfaAlreadyEnrolled()
            await uow.commit()
        return Enrolment(secret, codes.provisioning_uri(secret, email, self._settings.mfa_issuer))

    async def confirm(self, claims: AccessClaims, code: str) -> list[str]:
        """Confirm the pending factor with a code from the app; the recovery codes, once.

        Raises:
            MfaInvalid: no enrolment pending, or a wrong or used code.
            MfaAlreadyEnrolled: already confirmed.
            RateLimited: too many failed checks for this account.
        """
        user_id = uuid.UUID(claims.user_id)
        account = account_key(await self._email(user_id))
        async with self._failures_recorded(user_id), self._database.unit_of_work() as uow:
            factor = await uow.mfa.lock_factor(user_id)
            if factor is None:
                raise MfaInvalid("No enrolment is pending: start one with POST /me/mfa/totp.")
            if factor.confirmed_at is not None:
                raise MfaAlreadyEnrolled()
            secret = self._box.decrypt(factor.secret_encrypted)
            await self._checked(uow, user_id, account, Proof(code=code), secret)
            await uow.mfa.confirm(user_id, self._clock())
            recovery = await self._new_recovery_codes(uow, user_id)
            event = self._event(EventType.MFA_ENROLLED, claims, {"method": "totp"})
            await uow.record(event)
            await uow.commit()
        return recovery

    async def disable(self, claims: AccessClaims, proof: Proof) -> None:
        """Turn the second factor off, proven with a current code or a recovery code.

        Raises:
            NotFound: no second factor is enrolled.
            MfaInvalid: a wrong or used code.
            RateLimited: too many failed checks for this account.
        """
        user_id = uuid.UUID(claims.user_id)
        account = account_key(await self._email(user_id))
        secret = await self._confirmed_secret(user_id)
        async with self._failures_recorded(user_id), self._database.unit_of_work() as uow:
            amr = await self._checked(uow, user_id, account, proof, secret)
            await uow.mfa.remove(user_id)
            event = self._event(EventType.MFA_DISABLED, claims, {"proof": amr[-1]})
            await uow.record(event)
            await uow.commit()

    async def replace_recovery_codes(self, claims: AccessClaims, code: str) -> list[str]:
        """A new set of recovery codes (proven with a current code); the old set stops working.

        Raises:
            NotFound: no second factor is enrolled.
            MfaInvalid: a wrong or used code.
            RateLimited: too many failed checks for this account.
        """
        user_id = uuid.UUID(claims.user_id)
        account = account_key(await self._email(user_id))
        secret = await self._confirmed_secret(user_id)
        async with self._failures_recorded(user_id), self._database.unit_of_work() as uow:
            await self._checked(uow, user_id, account, Proof(code=code), secret)
            recovery = await self._new_recovery_codes(uow, user_id)
            event = self._event(EventType.MFA_RECOVERY_CODES_REPLACED, claims)
            await uow.record(event)
            await uow.commit()
        return recovery

    async def _new_recovery_codes(self, uow: UnitOfWork, user_id: uuid.UUID) -> list[str]:
        """A new set of recovery codes, stored as hashes in place of the old set."""
        recovery = codes.new_recovery_codes()
        hashes = [codes.recovery_code_hash(c) for c in recovery]
        await uow.mfa.replace_codes(user_id, hashes, self._clock())
        return recovery

    async def verify(self, mfa_token: str, proof: Proof, user_agent: str | None) -> Login:
        """Finish a login that answered `mfa_required`: check the code, open the session.

        Raises:
            MfaInvalid: unknown, expired or used `mfa_token`, another device's, or a wrong
                or used code.
            RateLimited: too many failed checks for this account.
            AccountDisabled: the account was disabled meanwhile.
        """
        # As in login: a revocation after this moment covers the tokens about to be issued.
        issued_at = time.time()
        token_hash = _token_hash(mfa_token)
        facts = await self._store.challenge(token_hash)
        # Bound to the device that sent the password: a leaked token is no use elsewhere.
        if facts is None or not hmac.compare_digest(
            (facts["user_agent"] or "").encode(), (user_agent or "").encode()
        ):
            raise MfaInvalid()
        user_id = uuid.UUID(facts["user_id"])
        secret = await self._confirmed_secret(user_id, missing=MfaInvalid)
        async with self._failures_recorded(user_id), self._database.unit_of_work() as uow:
            amr = await self._checked(uow, user_id, facts["account"], proof, secret)
            # Single use: of concurrent verifications that each had a good code, one wins.
            if not await self._store.take_challenge(token_hash):
                raise MfaInvalid()
            await self._spent(uow, user_id, amr)
            await uow.commit()
        login = await self._open_session(
            user_id,
            int(facts["version"]),
            _device(facts),
            remember=bool(facts["remember"]),
            issued_at=issued_at,
            amr=amr,
        )
        return login

    async def reset(self, actor: AccessClaims, target: uuid.UUID) -> None:
        """An administrator removes a user's second factor (lost phone) and signs them out
        everywhere.

        Raises:
            NotFound: no user has this id.
            Forbidden: the user's role holds a permission the actor lacks.
        """
        async with self._database.unit_of_work() as uow:
            user = await uow.users.lock(target)
            if user is None:
                raise NotFound("No such user.")
            held = permissions_of(self._settings.role_permissions, user.role)
            if not set(held).issubset(actor.permissions):
                raise Forbidden("The user's role holds a permission you lack.")
            removed = await uow.mfa.remove(target)
            await self._ending.everything(uow, str(target))
            event = self._trail.event(
                EventType.ADMIN_MFA_RESET,
                user_id=target,
                actor_id=actor.user_id,
                session_id=actor.session_id,
                details={"had_second_factor": removed},
            )
            await uow.record(event)
            await uow.commit()

    async def _checked(
        self,
        uow: UnitOfWork,
        user_id: uuid.UUID,
        account: str,
        proof: Proof,
        secret: str,
    ) -> tuple[str, ...]:
        """Check `proof` within the account's failure limit; the `amr` it earns. A recovery
        code is spent in `uow` (rolled back with it).

        Raises:
            _WrongFactor: wrong or used (see _failures_recorded).
            RateLimited: too many failed checks for this account.
        """
        async with self._limits.second_factor_check(account):
            if proof.recovery_code is not None:
                code_hash = codes.recovery_code_hash(proof.recovery_code)
                if not await uow.mfa.use_code(user_id, code_hash, self._clock()):
                    raise _WrongFactor("wrong_recovery_code")
                return WITH_RECOVERY_CODE
            match = codes.match(secret, codes.normalised_code(proof.code or ""), time.time())
            if match is None:
                raise _WrongFactor("wrong_code")
            if not await self._store.use_code(str(user_id), match.counter, match.acceptable_for):
                raise _WrongFactor("replayed_code")
            return WITH_ONE_TIME_CODE

    @asynccontextmanager
    async def _failures_recorded(self, user_id: uuid.UUID) -> AsyncIterator[None]:
        """Record a code refused in the block as mfa.failed, once the block's transaction
        has ended (it rolled back; holding its connection meanwhile could starve the pool)."""
        try:
            yield
        except _WrongFactor as wrong:
            event = self._trail.event(
                EventType.MFA_FAILED, user_id=user_id, details={"reason": wrong.reason}
            )
            async with self._database.statements() as statements:
                await statements.record(event)
            raise MfaInvalid() from None

    async def _spent(self, uow: UnitOfWork, user_id: uuid.UUID, amr: tuple[str, ...]) -> None:
        method = amr[-1]
        events = [
            self._trail.event(EventType.MFA_SUCCEEDED, user_id=user_id, details={"method": method})
        ]
        if amr == WITH_RECOVERY_CODE:
            left = await uow.mfa.unused_codes(user_id)
            events.append(
                self._trail.event(
                    EventType.MFA_RECOVERY_CODE_USED, user_id=user_id, details={"remaining": left}
                )
            )
        await uow.record(*events)

    async def _email(self, user_id: uuid.UUID) -> str:
        async with self._database.statements() as statements:
            profile = await statements.users.profile(user_id)
        if profile is None:
            raise TokenRevoked()
        return str(profile.email)

    async def _confirmed_secret(
        self, user_id: uuid.UUID, missing: type[Exception] = NotFound
    ) -> str:
        async with self._database.statements() as statements:
            stored = await statements.mfa.secret(user_id)
        if stored is None:
            raise missing("No second factor is enrolled.")
        return self._box.decrypt(stored)

    def _event(
        self, type: EventType, claims: AccessClaims, details: dict[str, Any] | None = None
    ) -> NewEvent:
        return self._trail.event(
            type, user_id=claims.user_id, session_id=claims.session_id, details=details
        )


def _device(facts: dict[str, Any]) -> Device:
    # api.auth.service builds its gate from this module: imported here, when first needed.
    from api.auth.service import Device

    return Device(name=facts["device_name"], ip=facts["ip"], user_agent=facts["user_agent"])


async def reencrypt(database: Database, box: SecretBox, batch: int = 500) -> int:
    """Rewrite every stored secret under MFA_ENCRYPTION_KEY's first key; how many changed.

    After it, keys other than the first can be dropped from MFA_ENCRYPTION_KEY.
    """
    changed = 0
    after: uuid.UUID | None = None
    while True:
        async with database.unit_of_work() as uow:
            rows = await uow.mfa.secrets(after, batch)
            for user_id, stored in rows:
                fresh = box.under_first_key(stored)
                if fresh is not None:
                    await uow.mfa.set_secret(user_id, fresh)
                    changed += 1
            await uow.commit()
        if len(rows) < batch:
            return changed
        after = rows[-1][0]
