"""DeviceSessionRepository: the only code that reads and writes the sessions table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.audit import NewEvent, Written, recorded
from db.batches import delete_batch
from db.driver_statements import DriverStatement
from db.models import DeviceSession, User

# What GET /auth/sessions lists at most: a user's newest active sessions.
LISTED_SESSIONS = 100


@dataclass(frozen=True)
class Opening:
    """A new device session: its id, its user, the first link of its refresh chain, its device."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    refresh_jti: uuid.UUID
    expires_at: datetime
    device_name: str | None
    ip: str | None
    user_agent: str | None
    now: datetime
    # How the login authenticated, as the session's tokens carry it (`amr`).
    amr: tuple[str, ...] = ("pwd",)

    def columns(self) -> dict[str, object]:
        """The session row's columns."""
        return {
            "id": self.session_id,
            "user_id": self.user_id,
            "current_refresh_jti": self.refresh_jti,
            "expires_at": self.expires_at,
            "device_name": self.device_name,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "created_at": self.now,
            "last_used_at": self.now,
            "amr": " ".join(self.amr),
        }

    def params(self) -> dict[str, object]:
        """The session's columns as the parameters of the prebuilt INSERT."""
        return {f"s_{name}": value for name, value in self.columns().items()}

    def statement(self) -> Insert:
        # A plain INSERT: nothing here needs the ORM's unit of work.
        return insert(DeviceSession).values(self.columns())


# Built once: SQLAlchemy caches their compiled form, asyncpg their prepared statement.
_SESSION_COLUMNS = (
    "id",
    "user_id",
    "current_refresh_jti",
    "expires_at",
    "device_name",
    "ip",
    "user_agent",
    "created_at",
    "last_used_at",
    "amr",
)
_SESSIONS = cast(Table, DeviceSession.__table__)
_USERS = cast(Table, User.__table__)
# Only while the user row still carries what the login read: the version (bumped by every
# change that ends sessions or changes privileges), not disabled, not deleted. FOR SHARE
# waits for such a change under way (it holds the row lock, FOR SHARE conflicts even
# with the no-key UPDATE of the bump), then sees its result: the two serialise on the row.
_STILL_AS_READ = (
    select(
        *(bindparam(f"s_{name}", type_=_SESSIONS.c[name].type) for name in _SESSION_COLUMNS),
        _USERS.c.version,
    )
    .where(
        _USERS.c.id == bindparam("s_user_id", type_=_USERS.c.id.type),
        _USERS.c.version == bindparam("s_user_version", type_=_USERS.c.version.type),
        _USERS.c.disabled.is_(False),
    )
    .with_for_update(read=True)
)
_OPEN_RECORDED = recorded(
    insert(_SESSIONS)
    .from_select([*_SESSION_COLUMNS, "user_version"], _STILL_AS_READ)
    .returning(_SESSIONS.c.id)
)
_ROTATE_RECORDED = recorded(
    update(_SESSIONS)
    .where(
        _SESSIONS.c.id == bindparam("r_session_id"),
        _SESSIONS.c.user_id == bindparam("r_user_id"),
        _SESSIONS.c.current_refresh_jti == bindparam("r_presented_jti"),
        _SESSIONS.c.revoked_at.is_(None),
        # The version the caller read with the user row share-locked: a change to the user
        # since the session was opened refuses its refresh.
        _SESSIONS.c.user_version == bindparam("r_user_version"),
    )
    .values(
        previous_refresh_jti=_SESSIONS.c.current_refresh_jti,
        current_refresh_jti=bindparam("r_new_jti"),
        rotated_at=bindparam("r_now"),
        last_used_at=bindparam("r_now"),
        expires_at=bindparam("r_expires_at"),
    )
    .returning(_SESSIONS.c.id)
)


# Run on the driver's connection: every login opens a session (db.driver_statements).
_OPEN_ON_DRIVER = DriverStatement(_OPEN_RECORDED)


async def driver_open(
    connection: Any, opening: Opening, event: NewEvent, user_version: int
) -> bool:
    """Insert the session row and the event that records it, in one statement atomic on
    its own, on an asyncpg connection, if the user still exists, is not disabled and is at
    `user_version`; whether it was."""
    params = {**opening.params(), **event.params(), "s_user_version": user_version}
    row = await connection.fetchrow(_OPEN_ON_DRIVER.sql, *_OPEN_ON_DRIVER.args(params))
    return row is not None


class DeviceSessionRepository:
    def __init__(self, session: AsyncSession, written: Written) -> None:
        self._session = session
        self._written = written

    async def add(self, opening: Opening) -> None:
        """Open a device session whose refresh chain starts with `opening.refresh_jti`."""
        await self._session.execute(opening.statement())

    async def get(self, session_id: uuid.UUID, user_id: uuid.UUID) -> DeviceSession | None:
        """The user's session with this id, revoked or not."""
        query = select(DeviceSession).where(
            DeviceSession.id == session_id, DeviceSession.user_id == user_id
        )
        return (await self._session.execute(query)).scalar_one_or_none()

    async def rotate_refresh(
        self,
        *,
        session_id: uuid.UUID,
        user_id: uuid.UUID,
        presented_jti: uuid.UUID,
        user_version: int,
        new_jti: uuid.UUID,
        expires_at: datetime,
        now: datetime,
        event: NewEvent,
    ) -> bool:
        """Make `new_jti` current if `presented_jti` still is and the session was opened at
        `user_version`, and record `event` if so; at most one caller wins.

        The condition, the write and the event are one statement, so two concurrent
        refreshes with the same token can't both succeed, and no event lacks its rotation.
        """
        params = {
            "r_session_id": session_id,
            "r_user_id": user_id,
            "r_presented_jti": presented_jti,
            "r_user_version": user_version,
            "r_new_jti": new_jti,
            "r_now": now,
            "r_expires_at": expires_at,
            **event.params(),
        }
        rotated = (await self._session.execute(_ROTATE_RECORDED, params)).first() is not None
        if rotated:
            self._written(event)
        return rotated

    async def revoke(
        self, session_id: uuid.UUID, user_id: uuid.UUID, now: datetime
    ) -> datetime | None:
        """Revoke one active session; its refresh expiry, or None if it wasn't active."""
        statement = (
            update(DeviceSession)
            .where(
                DeviceSession.id == session_id,
                DeviceSession.user_id == user_id,
                DeviceSession.revoked_at.is_(None),
                DeviceSession.expires_at > now,
            )
            .values(revoked_at=now)
            .returning(DeviceSession.expires_at)
            .execution_options(synchronize_session=False)
        )
        return (await self._session.execute(statement)).scalar_one_or_none()

    async def revoke_all(
        self, user_id: uuid.UUID, now: datetime, keep: uuid.UUID | None = None
    ) -> list[tuple[uuid.UUID, datetime]]:
        """Revoke every active session of the user but `keep`; their ids and refresh expiries."""
        conditions = [DeviceSession.user_id == user_id, DeviceSession.revoked_at.is_(None)]
        if keep is not None:
            conditions.append(DeviceSession.id != keep)
        statement = (
            update(DeviceSession)
            .where(*conditions)
            .values(revoked_at=now)
            .returning(DeviceSession.id, DeviceSession.expires_at)
            .execution_options(synchronize_session=False)
        )
        return [(row.id, row.expires_at) for row in await self._session.execute(statement)]

    async def keep_at_version(
        self, session_id: uuid.UUID, user_id: uuid.UUID, user_version: int
    ) -> None:
        """Carry a session its user keeps through a change over to the user's new version."""
        statement = (
            update(DeviceSession)
            .where(DeviceSession.id == session_id, DeviceSession.user_id == user_id)
            .values(user_version=user_version)
            .execution_options(synchronize_session=False)
        )
        await self._session.execute(statement)

    async def list_active(
        self, user_id: uuid.UUID, now: datetime, limit: int = LISTED_SESSIONS
    ) -> list[DeviceSession]:
        """The user's newest `limit` sessions that are neither revoked nor expired, newest first."""
        query = (
            select(DeviceSession)
            .where(
                DeviceSession.user_id == user_id,
                DeviceSession.revoked_at.is_(None),
                DeviceSession.expires_at > now,
            )
            .order_by(DeviceSession.created_at.desc(), DeviceSession.id.desc())
            .limit(limit)
        )
        return list((await self._session.execute(query)).scalars())

    async def delete_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete at most `limit` sessions that expired or were revoked before `cutoff`.

        Returns how many were deleted. Rows another transaction holds are skipped,
        so a purge never waits behind a request.
        """
        # LEAST skips NULL: the revocation moment, else the expiry; ix_sessions_ended_at.
        ended_at = func.least(DeviceSession.expires_at, DeviceSession.revoked_at)
        return await delete_batch(
            self._session, DeviceSession.id, ended_at < cutoff, limit, skip_locked=True
        )
