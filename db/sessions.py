"""SessionRepository: the only code that reads and writes the sessions table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Session

# What GET /auth/sessions lists at most: a user's newest active sessions.
LISTED_SESSIONS = 100


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        *,
        session_id: uuid.UUID,
        user_id: uuid.UUID,
        refresh_jti: uuid.UUID,
        expires_at: datetime,
        device_name: str | None,
        ip: str | None,
        user_agent: str | None,
    ) -> None:
        """Open a device session whose refresh chain starts with `refresh_jti`."""
        # The login's own moment (not the transaction's), so sessions order as they happened.
        now = datetime.now(UTC)
        # A plain INSERT: logins are hot, and nothing here needs the ORM's unit of work.
        await self._session.execute(
            insert(Session).values(
                id=session_id,
                user_id=user_id,
                current_refresh_jti=refresh_jti,
                expires_at=expires_at,
                device_name=device_name,
                ip=ip,
                user_agent=user_agent,
                created_at=now,
                last_used_at=now,
            )
        )

    async def get(self, session_id: uuid.UUID, user_id: uuid.UUID) -> Session | None:
        """The user's session with this id, revoked or not."""
        query = select(Session).where(Session.id == session_id, Session.user_id == user_id)
        return (await self._session.execute(query)).scalar_one_or_none()

    async def rotate_refresh(
        self,
        *,
        session_id: uuid.UUID,
        user_id: uuid.UUID,
        presented_jti: uuid.UUID,
        new_jti: uuid.UUID,
        expires_at: datetime,
    ) -> bool:
        """Make `new_jti` current if `presented_jti` still is; at most one caller wins.

        The condition and the write are one statement, so two concurrent refreshes
        with the same token can't both succeed.
        """
        statement = (
            update(Session)
            .where(
                Session.id == session_id,
                Session.user_id == user_id,
                Session.current_refresh_jti == presented_jti,
                Session.revoked_at.is_(None),
            )
            .values(
                previous_refresh_jti=Session.current_refresh_jti,
                current_refresh_jti=new_jti,
                # The moment of the rotation itself, not of the transaction's start.
                rotated_at=func.clock_timestamp(),
                last_used_at=func.clock_timestamp(),
                expires_at=expires_at,
            )
            .returning(Session.id)
            .execution_options(synchronize_session=False)
        )
        return (await self._session.execute(statement)).first() is not None

    async def revoke(self, session_id: uuid.UUID, user_id: uuid.UUID) -> datetime | None:
        """Revoke one active session; its refresh expiry, or None if it wasn't active."""
        statement = (
            update(Session)
            .where(
                Session.id == session_id,
                Session.user_id == user_id,
                Session.revoked_at.is_(None),
                Session.expires_at > func.now(),
            )
            .values(revoked_at=func.now())
            .returning(Session.expires_at)
            .execution_options(synchronize_session=False)
        )
        return (await self._session.execute(statement)).scalar_one_or_none()

    async def revoke_all(
        self, user_id: uuid.UUID, keep: uuid.UUID | None = None
    ) -> list[tuple[uuid.UUID, datetime]]:
        """Revoke every active session of the user but `keep`; their ids and refresh expiries."""
        conditions = [Session.user_id == user_id, Session.revoked_at.is_(None)]
        if keep is not None:
            conditions.append(Session.id != keep)
        statement = (
            update(Session)
            .where(*conditions)
            .values(revoked_at=func.now())
            .returning(Session.id, Session.expires_at)
            .execution_options(synchronize_session=False)
        )
        return [(row.id, row.expires_at) for row in await self._session.execute(statement)]

    async def list_active(self, user_id: uuid.UUID, limit: int = LISTED_SESSIONS) -> list[Session]:
        """The user's newest `limit` sessions that are neither revoked nor expired, newest first."""
        query = (
            select(Session)
            .where(
                Session.user_id == user_id,
                Session.revoked_at.is_(None),
                Session.expires_at > func.now(),
            )
            .order_by(Session.created_at.desc(), Session.id.desc())
            .limit(limit)
        )
        return list((await self._session.execute(query)).scalars())

    async def delete_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete at most `limit` sessions that expired or were revoked before `cutoff`.

        Returns how many were deleted. Rows another transaction holds are skipped,
        so a purge never waits behind a request.
        """
        # LEAST skips NULL: the revocation moment, else the expiry; ix_sessions_ended_at.
        ended_at = func.least(Session.expires_at, Session.revoked_at)
        batch = (
            select(Session.id)
            .where(ended_at < cutoff)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            delete(Session)
            .where(Session.id.in_(batch))
            .returning(Session.id)
            .execution_options(synchronize_session=False)
        )
        return len((await self._session.execute(statement)).all())
