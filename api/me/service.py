"""Rules of the signed-in user's own account."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from api.config.settings import Settings
from api.domain.audit import AuditTrail, EventType
from api.domain.errors import InvalidCredentials, LastAdmin, TokenRevoked, ValidationFailed
from api.domain.session_ending import SessionEnding
from api.edge.metrics import REVOCATIONS
from api.security.claims import AccessClaims
from api.security.passwords import Passwords, password_problems
from api.security.permissions import ADMIN
from api.security.rate_limits import RateLimits
from db.engine import Database
from db.models import User
from db.unit_of_work import UnitOfWork
from db.users import Profile, driver_profile


@dataclass(frozen=True)
class ProfileView:
    """The signed-in user as GET /me shows them."""

    id: uuid.UUID
    email: str
    role: str
    disabled: bool
    created_at: datetime
    email_verified: bool
    mfa_enabled: bool


def profile_view(profile: Profile) -> ProfileView:
    """The view of a profile row."""
    return ProfileView(
        id=profile.id,
        email=profile.email,
        role=profile.role,
        disabled=profile.disabled,
        created_at=profile.created_at,
        email_verified=profile.email_verified,
        mfa_enabled=profile.mfa_enabled,
    )


class AccountService:
    """Built once per worker; each method owns its transaction."""

    def __init__(
        self,
        database: Database,
        passwords: Passwords,
        limits: RateLimits,
        ending: SessionEnding,
        trail: AuditTrail,
        settings: Settings,
    ) -> None:
        self._database = database
        self._passwords = passwords
        self._limits = limits
        self._ending = ending
        self._trail = trail
        self._settings = settings

    async def profile(self, claims: AccessClaims) -> ProfileView:
        """The user the token belongs to: one statement, no transaction.

        Raises:
            TokenRevoked: the user no longer exists (deleted after the token was issued).
        """
        async with self._database.statements() as statements:
            profile = await statements.users.profile(uuid.UUID(claims.user_id))
        if profile is None:
            raise TokenRevoked()
        return profile_view(profile)

    async def profile_on_driver(self, user_id: str) -> ProfileView:
        """`profile`, read in its one fixed statement on the driver's own connection (the
        GET /me lane): the same row, none of SQLAlchemy's per-statement work.

        Raises:
            TokenRevoked: the user no longer exists.
            StoreUnavailable: Postgres could not be reached.
        """
        async with self._database.driver_connection() as connection:
            row = await driver_profile(connection, user_id)
        if row is None:
            raise TokenRevoked()
        return ProfileView(**row)

    async def change_password(
        self, claims: AccessClaims, current_password: str, new_password: str
    ) -> None:
        """Set a new password and sign out every other session; the current one stays.

        Raises:
            InvalidCredentials: `current_password` is wrong.
            RateLimited: too many failed password checks for this account.
            ValidationFailed: the new password breaks a rule.
        """
        problems = password_problems(new_password, self._settings.password_min_length)
        if problems:
            raise ValidationFailed([{"field": "new_password", "message": m} for m in problems])
        async with self._database.unit_of_work() as uow:
            user = await self._check_password(uow, claims, current_password)
            await uow.users.change_password(user, await self._passwords.hash(new_password))
            await self._ending.all_but(uow, claims.user_id, keep=claims.session_id)
            event = self._trail.event(
                EventType.PASSWORD_CHANGED, user_id=claims.user_id, session_id=claims.session_id
            )
            await uow.record(event)
            await uow.commit()
        REVOCATIONS.labels("other_sessions").inc()

    async def delete(self, claims: AccessClaims, password: str) -> None:
        """Delete the account and revoke every token it ever had.

        Raises:
            InvalidCredentials: `password` is wrong.
            RateLimited: too many failed password checks for this account.
            LastAdmin: the account is the last active admin.
        """
        async with self._database.unit_of_work() as uow:
            user = await self._check_password(uow, claims, password)
            if user.role == ADMIN and not user.disabled:
                # Locked like every admin change, so two last admins can't both leave.
                admins = await uow.users.lock_active_admins(ADMIN)
                if admins == [user.id]:
                    raise LastAdmin()
            # Sessions are revoked (rows locked, Redis marks written) before the rows go
            # with the user, so a refresh running at this moment can't outlive the account.
            await self._ending.everything(uow, claims.user_id)
            await uow.users.delete(user)
            event = self._trail.event(
                EventType.ACCOUNT_DELETED, user_id=claims.user_id, session_id=claims.session_id
            )
            await uow.record(event)
            await uow.commit()
        REVOCATIONS.labels("account_deleted").inc()

    async def _check_password(self, uow: UnitOfWork, claims: AccessClaims, password: str) -> User:
        user = await uow.users.get(uuid.UUID(claims.user_id))
        if user is None:
            raise TokenRevoked()
        await uow.release()
        # The same per-account limit as login: a token must not make a better password oracle.
        async with self._limits.password_check(user.email):
            if not await self._passwords.verify(user.password_hash, password):
                raise InvalidCredentials("The password is incorrect.")
        return user
