"""Every audit event is reported (logged) by the one step, once what wrote it committed:
those of `record`, and those a session's opening or rotation writes in its own statement."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from api.config.settings import Settings
from db.audit import NewEvent
from db.emails import normalise_email
from db.engine import Database
from db.models import User
from db.sessions import Opening


class Reported:
    """The events the database reported, in order."""

    def __init__(self) -> None:
        self.events: list[NewEvent] = []

    def __call__(self, *events: NewEvent) -> None:
        self.events.extend(events)


@pytest.fixture
def reported() -> Reported:
    return Reported()


@pytest.fixture
async def database(settings: Settings, reported: Reported) -> AsyncIterator[Database]:
    """A database reporting to `reported`, every write rolled back at the end."""
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            # asyncpg's BEGIN waits for SQLAlchemy's first statement: sent now, so a statement
            # on the driver's own connection (db.driver_statements) runs inside it too.
            await connection.exec_driver_sql("SELECT 1")
            try:
                yield Database.on_connection(connection).reporting_to(reported)
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()


async def _user(database: Database) -> User:
    email = f"reported-{uuid.uuid4().hex}@example.com"
    async with database.unit_of_work() as uow:
        user = await uow.users.add(email, normalise_email(email), "not-a-hash")
        await uow.commit()
    return user


def _event(type: str, user: User, session_id: uuid.UUID) -> NewEvent:
    return NewEvent(
        type=type, occurred_at=datetime.now(UTC), user_id=user.id, session_id=session_id
    )


async def _open(database: Database, user: User, version: int) -> tuple[Opening, NewEvent, bool]:
    now = datetime.now(UTC)
    opening = Opening(
        session_id=uuid.uuid4(),
        user_id=user.id,
        refresh_jti=uuid.uuid4(),
        expires_at=now + timedelta(days=1),
        device_name="phone",
        ip=None,
        user_agent=None,
        now=now,
    )
    event = _event("login.succeeded", user, opening.session_id)
    async with database.driver_statements() as statements:
        opened = await statements.open_session(opening, event, version)
    return opening, event, opened


async def test_a_session_opened_with_its_event_reports_it_once(
    database: Database, reported: Reported
) -> None:
    user = await _user(database)
    _, event, opened = await _open(database, user, user.version)
    assert opened
    assert reported.events == [event]


async def test_a_session_that_did_not_open_reports_no_event(
    database: Database, reported: Reported
) -> None:
    user = await _user(database)
    _, _, opened = await _open(database, user, user.version + 1)
    assert not opened
    assert reported.events == []


async def _rotate(
    database: Database, reported: Reported, user: User, opening: Opening, *, commit: bool
) -> tuple[NewEvent, bool, list[NewEvent]]:
    """Rotate `opening`'s chain from its first link; the event, whether it rotated, and
    what was reported before the commit."""
    event = _event("token.refreshed", user, opening.session_id)
    async with database.unit_of_work() as uow:
        locked = await uow.users.share_lock(user.id)
        assert locked is not None
        rotated = await uow.sessions.rotate_refresh(
            session_id=opening.session_id,
            user_id=user.id,
            presented_jti=opening.refresh_jti,
            user_version=locked.version,
            new_jti=uuid.uuid4(),
            expires_at=opening.expires_at,
            now=datetime.now(UTC),
            event=event,
        )
        before_commit = list(reported.events)
        if commit:
            await uow.commit()
    return event, rotated, before_commit


async def test_a_rotation_reports_its_event_once_committed_and_never_when_rolled_back(
    database: Database, reported: Reported
) -> None:
    user = await _user(database)
    opening, opened_event, _ = await _open(database, user, user.version)

    _, rotated, _ = await _rotate(database, reported, user, opening, commit=False)
    assert rotated
    assert reported.events == [opened_event]  # rolled back: nothing to report

    event, rotated, before_commit = await _rotate(database, reported, user, opening, commit=True)
    assert rotated
    assert before_commit == [opened_event]
    assert reported.events == [opened_event, event]

    # The superseded link rotates nothing and reports nothing.
    _, rotated, _ = await _rotate(database, reported, user, opening, commit=True)
    assert not rotated
    assert reported.events == [opened_event, event]
