"""GET /auth/sessions is bounded: the newest 100 active sessions, newest first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from db.models import DeviceSession
from db.sessions import Opening
from tests.integration.conftest import Harness, bearer

EMAIL = "many-devices@example.com"


async def _add_sessions(harness: Harness, user_id: str, count: int) -> list[str]:
    """Sessions straight through the repository, oldest first: no argon2 login for each."""
    ids = [uuid.uuid4() for _ in range(count)]
    async with harness.resources.database.unit_of_work() as uow:
        for session_id in ids:
            await uow.sessions.add(
                Opening(
                    session_id=session_id,
                    user_id=uuid.UUID(user_id),
                    refresh_jti=uuid.uuid4(),
                    expires_at=datetime.now(UTC) + timedelta(days=30),
                    device_name="device",
                    ip=None,
                    user_agent=None,
                    now=datetime.now(UTC),
                )
            )
        await uow.commit()
    return [str(i) for i in ids]


async def test_sessions_list_returns_the_newest_100_active_sessions(harness: Harness) -> None:
    user = await harness.register(EMAIL)
    older = await _add_sessions(harness, user["id"], 100)
    revoked = await _add_sessions(harness, user["id"], 5)
    async with harness.resources.database.unit_of_work() as uow:
        await uow.session.execute(
            update(DeviceSession)
            .where(DeviceSession.id.in_([uuid.UUID(i) for i in revoked]))
            .values(revoked_at=datetime.now(UTC))
        )
        await uow.commit()
    current = await harness.login(EMAIL)  # 101 active sessions now, this one the newest

    response = await harness.client.get("/auth/sessions", headers=bearer(current["access_token"]))

    assert response.status_code == 200
    listed = [s["id"] for s in response.json()["sessions"]]
    print(f"active sessions: 101, listed: {len(listed)}")
    assert len(listed) == 100
    assert listed == [current["session_id"], *reversed(older[1:])]
    assert response.json()["sessions"][0]["current"] is True
