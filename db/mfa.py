"""The second factor's tables: TOTP secrets and recovery codes (the only SQL over them)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, exists, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db.models import RecoveryCode, TotpFactor

# Built once: SQLAlchemy caches its compiled form, asyncpg its prepared statement.
_ENROLLED = select(
    exists().where(TotpFactor.user_id == bindparam("user_id"), TotpFactor.confirmed_at.is_not(None))
)
_SECRET = select(TotpFactor.secret_encrypted).where(
    TotpFactor.user_id == bindparam("user_id"), TotpFactor.confirmed_at.is_not(None)
)


class MfaReader:
    """Reads that need no transaction: is a user enrolled, and their confirmed secret."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def enrolled(self, user_id: uuid.UUID) -> bool:
        """Whether the user has a confirmed TOTP factor."""
        return bool((await self._connection.execute(_ENROLLED, {"user_id": user_id})).scalar())

    async def secret(self, user_id: uuid.UUID) -> str | None:
        """The encrypted secret of the user's confirmed TOTP factor, if any."""
        result = await self._connection.execute(_SECRET, {"user_id": user_id})
        return result.scalar_one_or_none()


class MfaRepository:
    """TOTP factors and recovery codes inside a unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_factor(self, user_id: uuid.UUID) -> TotpFactor | None:
        """The user's TOTP factor (confirmed or pending), its row locked until the end."""
        query = select(TotpFactor).where(TotpFactor.user_id == user_id).with_for_update()
        return (await self._session.execute(query)).scalar_one_or_none()

    async def start(self, user_id: uuid.UUID, secret_encrypted: str, now: datetime) -> bool:
        """Store a pending factor, replacing a pending one; False if one is confirmed."""
        statement = (
            pg_insert(TotpFactor)
            .values(user_id=user_id, secret_encrypted=secret_encrypted, created_at=now)
            .on_conflict_do_update(
                index_elements=[TotpFactor.user_id],
                set_={"secret_encrypted": secret_encrypted, "created_at": now},
                where=TotpFactor.confirmed_at.is_(None),
            )
            .returning(TotpFactor.user_id)
        )
        return (await self._session.execute(statement)).first() is not None

    async def confirm(self, user_id: uuid.UUID, now: datetime) -> bool:
        """Confirm the pending factor; False if there was none pending."""
        statement = (
            update(TotpFactor)
            .where(TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_(None))
            .values(confirmed_at=now)
            .returning(TotpFactor.user_id)
            .execution_options(synchronize_session=False)
        )
        return (await self._session.execute(statement)).first() is not None

    async def remove(self, user_id: uuid.UUID) -> bool:
        """Delete the user's factor and recovery codes; whether a confirmed factor went."""
        await self._session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        statement = (
            delete(TotpFactor)
            .where(TotpFactor.user_id == user_id)
            .returning(TotpFactor.confirmed_at)
            .execution_options(synchronize_session=False)
        )
        confirmed = (await self._session.execute(statement)).first()
        return confirmed is not None and confirmed.confirmed_at is not None

    async def replace_codes(
        self, user_id: uuid.UUID, code_hashes: Sequence[str], now: datetime
    ) -> None:
        """Make `code_hashes` the user's only recovery codes."""
        await self._session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        await self._session.execute(
            insert(RecoveryCode),
            [
                {"id": uuid.uuid4(), "user_id": user_id, "code_hash": h, "created_at": now}
                for h in code_hashes
            ],
        )

    async def use_code(self, user_id: uuid.UUID, code_hash: str, now: datetime) -> bool:
        """Mark an unused recovery code used; True for exactly one of any concurrent callers.

        The condition and the write are one statement: a second caller waits on the row
        and then finds `used_at` set.
        """
        statement = (
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
            .returning(RecoveryCode.id)
            .execution_options(synchronize_session=False)
        )
        return (await self._session.execute(statement)).first() is not None

    async def unused_codes(self, user_id: uuid.UUID) -> int:
        """How many of the user's recovery codes are left."""
        query = select(RecoveryCode.id).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
        )
        return len((await self._session.execute(query)).all())

    async def secrets(self, after: uuid.UUID | None, limit: int) -> list[tuple[uuid.UUID, str]]:
        """Up to `limit` stored secrets by user id, after `after` (for re-encryption)."""
        query = select(TotpFactor.user_id, TotpFactor.secret_encrypted).order_by(TotpFactor.user_id)
        if after is not None:
            query = query.where(TotpFactor.user_id > after)
        rows = await self._session.execute(query.limit(limit).with_for_update())
        return [(row.user_id, row.secret_encrypted) for row in rows]

    async def set_secret(self, user_id: uuid.UUID, secret_encrypted: str) -> None:
        """Replace the stored (encrypted) secret of the user's factor."""
        await self._session.execute(
            update(TotpFactor)
            .where(TotpFactor.user_id == user_id)
            .values(secret_encrypted=secret_encrypted)
            .execution_options(synchronize_session=False)
        )
