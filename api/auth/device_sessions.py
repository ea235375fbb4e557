"""A user's device sessions: list them, sign one out, this one, or all of them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from api.domain.audit import AuditTrail, EventType
from api.domain.clock import Clock
from api.domain.session_ending import SessionEnding
from api.edge.metrics import REVOCATIONS
from api.security.claims import AccessClaims
from db.engine import Database
from db.models import DeviceSession


@dataclass(frozen=True)
class SessionView:
    """An active session as GET /auth/sessions lists it; `current` marks the caller's own."""

    id: uuid.UUID
    device_name: str | None
    created_at: datetime
    last_used_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


def session_view(session: DeviceSession, current: str) -> SessionView:
    """The view of a loaded row, taken while its unit of work is open; `current` is the
    caller's session id."""
    return SessionView(
        id=session.id,
        device_name=session.device_name,
        created_at=session.created_at,
        last_used_at=session.last_used_at,
        ip=session.ip,
        user_agent=session.user_agent,
        current=str(session.id) == current,
    )


class DeviceSessionService:
    """Built once per worker; each method owns its transaction."""

    def __init__(
        self, database: Database, ending: SessionEnding, trail: AuditTrail, clock: Clock
    ) -> None:
        self._database = database
        self._ending = ending
        self._trail = trail
        self._clock = clock

    async def active(self, claims: AccessClaims) -> list[SessionView]:
        """The user's active sessions, newest first (at most db.sessions.LISTED_SESSIONS),
        the caller's own marked."""
        async with self._database.unit_of_work() as uow:
            sessions = await uow.sessions.list_active(uuid.UUID(claims.user_id), self._clock())
            return [session_view(session, claims.session_id) for session in sessions]

    async def logout(self, claims: AccessClaims) -> None:
        """Revoke the caller's session: this access token, its refresh token and every other."""
        event = self._trail.event(
            EventType.SESSION_LOGOUT, user_id=claims.user_id, session_id=claims.session_id
        )
        async with self._database.unit_of_work() as uow:
            await self._ending.current(uow, claims)
            await uow.record(event)
            await uow.commit()

    async def logout_all(self, claims: AccessClaims) -> None:
        """Revoke every session of the user, on every device, at once."""
        event = self._trail.event(
            EventType.SESSIONS_LOGOUT_ALL, user_id=claims.user_id, session_id=claims.session_id
        )
        async with self._database.unit_of_work() as uow:
            await self._ending.everything(uow, claims.user_id)
            await uow.record(event)
            await uow.commit()
        REVOCATIONS.labels("logout_all").inc()

    async def revoke(self, claims: AccessClaims, session_id: uuid.UUID) -> None:
        """Revoke one of the user's active sessions.

        Raises:
            NotFound: not an active session of this user.
        """
        async with self._database.unit_of_work() as uow:
            await self._ending.one(uow, claims.user_id, session_id)
            # `one` refused anything but a session id of this user's.
            event = self._trail.event(
                EventType.SESSION_REVOKED,
                user_id=claims.user_id,
                session_id=session_id,
                details={"by_session": claims.session_id},
            )
            await uow.record(event)
            await uow.commit()
