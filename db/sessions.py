"""SessionRepository: the only code that reads and writes the sessions table."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Session


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
    ) -> Session:
        """Open a device session whose refresh chain starts with `refresh_jti`."""
        row = Session(
            id=session_id,
            user_id=user_id,
            current_refresh_jti=refresh_jti,
            expires_at=expires_at,
            device_name=device_name,
            ip=ip,
            user_agent=user_agent,
        )
        self._session.add(row)
        await self._session.flush()
        return row
