"""UserRepository and UserReader: the only code that reads and writes the users table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, bindparam, exists, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db.driver_statements import DriverStatement
from db.emails import NormalisedEmail
from db.errors import ConflictError
from db.models import TotpFactor, User

# LIKE's own wildcards and its escape character, matched literally in a prefix search.
_LIKE_SPECIAL = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})

# Built once: SQLAlchemy caches its compiled form, asyncpg its prepared statement.
_ENROLLED = (
    exists()
    .where(TotpFactor.user_id == User.id, TotpFactor.confirmed_at.is_not(None))
    .label("mfa_enabled")
)
_VERIFIED = User.email_verified_at.is_not(None).label("email_verified")
_PROFILE = select(
    User.id, User.email, User.role, User.disabled, User.created_at, _VERIFIED, _ENROLLED
).where(User.id == bindparam("user_id"))
Profile = Row[uuid.UUID, str, str, bool, datetime, bool, bool]
# Read on the driver's connection by GET /me's lane (db.driver_statements).
_PROFILE_ON_DRIVER = DriverStatement(_PROFILE)
# Whether a second factor is enrolled comes with them: login asks no extra round trip.
_CREDENTIALS = select(
    User.id,
    User.role,
    User.disabled,
    User.password_hash,
    User.version,
    _VERIFIED,
    _ENROLLED,
).where(User.email_normalised == bindparam("email"))
# Read on the driver's connection: every login reads it (db.driver_statements).
_CREDENTIALS_ON_DRIVER = DriverStatement(_CREDENTIALS)


class Credentials(NamedTuple):
    """What a login checks: the user's id, role, disabled flag, password hash, version,
    whether the address is verified and whether a second factor is enrolled."""

    id: uuid.UUID
    role: str
    disabled: bool
    password_hash: str
    version: int
    email_verified: bool
    mfa_enabled: bool


class UserReader:
    """Reads of the users table that need no transaction: one compiled statement each."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def profile(self, user_id: uuid.UUID) -> Profile | None:
        """The user's id, email, role, disabled flag, creation time and whether a second
        factor is enrolled, if the user exists."""
        result = await self._connection.execute(_PROFILE, {"user_id": user_id})
        return result.first()


async def driver_credentials(connection: Any, email: NormalisedEmail) -> Credentials | None:
    """The credentials of the user with this address, read on an asyncpg connection."""
    row = await connection.fetchrow(_CREDENTIALS_ON_DRIVER.sql, email)
    return None if row is None else Credentials(*row)


async def driver_profile(connection: Any, user_id: str) -> Any:
    """`UserReader.profile` on an asyncpg connection: an asyncpg Record with the same
    columns (names and order), or None."""
    return await connection.fetchrow(_PROFILE_ON_DRIVER.sql, user_id)


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        email: str,
        email_normalised: NormalisedEmail,
        password_hash: str,
        role: str | None = None,
    ) -> User:
        """Insert a user (email as registered, and normalised; role `user` unless given) and
        return it.

        Raises:
            ConflictError: another user has this normalised email.
        """
        user = User(email=email, email_normalised=email_normalised, password_hash=password_hash)
        if role is not None:
            user.role = role
        self._session.add(user)
        try:
            await self._session.flush()
        except IntegrityError:
            raise ConflictError("email") from None
        await self._session.refresh(user)
        return user

    async def get(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, if any."""
        return await self._session.get(User, user_id)

    async def get_by_email(self, email: NormalisedEmail) -> User | None:
        """The user whose normalised email is `email` (see db.emails), if any."""
        query = select(User).where(User.email_normalised == email)
        return (await self._session.execute(query)).scalar_one_or_none()

    async def set_password_hash(self, user: User, password_hash: str) -> None:
        """Replace the stored hash (after a parameter change or a new password)."""
        user.password_hash = password_hash
        await self._session.flush()

    async def change_password(self, user: User, password_hash: str) -> None:
        """The password changed (a new one set, or reset): store its hash.

        Every route that changes a password calls this, and only those: reset tokens
        issued before are void from now on (they are bound to the old hash).
        """
        user.password_hash = password_hash
        await self._session.flush()

    async def mark_email_verified(self, user: User, now: datetime) -> None:
        """Record that the user proved they hold their address (kept if already recorded)."""
        if user.email_verified_at is None:
            user.email_verified_at = now
            await self._session.flush()

    async def change_email(
        self, user: User, email: str, email_normalised: NormalisedEmail, now: datetime
    ) -> None:
        """Switch the user's address to one they proved they hold.

        Raises:
            ConflictError: another user has this normalised email.
        """
        user.email = email
        user.email_normalised = email_normalised
        user.email_verified_at = now
        try:
            await self._session.flush()
        except IntegrityError:
            raise ConflictError("email") from None

    async def delete(self, user: User) -> None:
        """Delete the user; their sessions go with them (ON DELETE CASCADE)."""
        await self._session.delete(user)
        await self._session.flush()

    async def page(
        self,
        email_prefix: NormalisedEmail | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[User]:
        """Up to `limit` users, newest first, older than the key `after`, whose normalised
        address starts with `email_prefix`."""
        query = select(User)
        if email_prefix:
            pattern = email_prefix.translate(_LIKE_SPECIAL) + "%"
            query = query.where(User.email_normalised.like(pattern, escape="\\"))
        if after is not None:
            query = query.where(tuple_(User.created_at, User.id) < tuple_(*after))
        query = query.order_by(User.created_at.desc(), User.id.desc()).limit(limit)
        return list((await self._session.execute(query)).scalars())

    async def lock_active_admins(self, role: str) -> list[uuid.UUID]:
        """Lock the users holding `role` who are not disabled, until the transaction ends;
        their ids.

        Two changes that could each leave no active admin wait for each other here, and
        the second sees the first's result.
        """
        query = (
            select(User.id)
            .where(User.role == role, User.disabled.is_(False))
            .order_by(User.id)
            .with_for_update()
        )
        return list((await self._session.execute(query)).scalars())

    async def share_lock(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, its row share-locked until the transaction ends: a change
        to the user (which bumps its version) waits for the transaction, or it for the change."""
        query = (
            select(User)
            .where(User.id == user_id)
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        )
        return (await self._session.execute(query)).scalar_one_or_none()

    async def bump_version(self, user_id: uuid.UUID) -> int | None:
        """Add one to the user's version, the row locked until the transaction ends; the new
        version, or None if no such user.

        Every change that ends the user's sessions or changes what the user may do calls it
        (through api.domain.session_ending) before it ends them: a login or refresh that read the
        older version then opens or rotates nothing (db.sessions).
        """
        statement = (
            update(User)
            .where(User.id == user_id)
            .values(version=User.version + 1)
            .returning(User.version)
            .execution_options(synchronize_session=False)
        )
        return (await self._session.execute(statement)).scalar_one_or_none()

    async def lock(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, its row locked until the transaction ends."""
        query = select(User).where(User.id == user_id).with_for_update()
        return (await self._session.execute(query)).scalar_one_or_none()

    async def update_access(self, user: User, *, role: str, disabled: bool) -> None:
        """Set the user's role and disabled flag."""
        user.role = role
        user.disabled = disabled
        await self._session.flush()
        await self._session.refresh(user, ["updated_at"])

    async def roles_other_than(self, roles: list[str]) -> list[str]:
        """The roles users hold that are not among `roles` (a few, for an error message)."""
        query = (
            select(User.role)
            .where(User.role.not_in(roles))
            .group_by(User.role)
            .order_by(User.role)
            .limit(5)
        )
        return list((await self._session.execute(query)).scalars())
