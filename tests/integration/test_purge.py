"""Purging ended sessions: what goes, what stays, the advisory lock, and tokens of purged sessions.

These tests commit (the purge runs in transactions of its own, on several connections),
so each makes its own user and deletes it, with its sessions, afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import delete, select, update

from api.config.settings import Settings
from api.maintenance.purge import purge
from api.maintenance.schedule import PurgeSchedule
from db.audit import NewEvent
from db.emails import normalise_email
from db.engine import create_engine, create_session_factory
from db.models import AuditEvent, DeviceSession, User
from db.sessions import Opening
from db.unit_of_work import UnitOfWork
from tests.conftest import ROOT
from tests.e2e.server import settings_env
from tests.integration.conftest import bearer, start_harness, stop_harness

DAY = timedelta(days=1)
RETENTION = 7 * 24 * 3600


@dataclass
class Sessions:
    """Sessions of one committed user, made with explicit end times."""

    new_unit_of_work: Callable[[], UnitOfWork]
    user_id: uuid.UUID

    async def add(
        self,
        count: int = 1,
        *,
        expires_at: datetime | None = None,
        revoked_at: datetime | None = None,
    ) -> list[uuid.UUID]:
        now = datetime.now(UTC)
        ids = [uuid.uuid4() for _ in range(count)]
        async with self.new_unit_of_work() as uow:
            for session_id in ids:
                await uow.sessions.add(
                    Opening(
                        session_id=session_id,
                        user_id=self.user_id,
                        refresh_jti=uuid.uuid4(),
                        expires_at=expires_at or now + 30 * DAY,
                        device_name="test",
                        ip=None,
                        user_agent=None,
                        now=now,
                    )
                )
            if revoked_at is not None:
                await uow.session.execute(
                    update(DeviceSession)
                    .where(DeviceSession.id.in_(ids))
                    .values(revoked_at=revoked_at)
                )
            await uow.commit()
        return ids

    async def remaining(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        async with self.new_unit_of_work() as uow:
            query = select(DeviceSession.id).where(DeviceSession.id.in_(ids))
            return set((await uow.session.execute(query)).scalars())


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[Sessions]:
    engine = create_engine(
        settings.database_url, pool_size=4, pool_timeout=5, application_name="purge-tests"
    )
    factory = create_session_factory(engine)

    def new_unit_of_work() -> UnitOfWork:
        return UnitOfWork(factory)

    try:
        async with new_unit_of_work() as uow:
            email = f"purge-{uuid.uuid4().hex}@example.com"
            user = await uow.users.add(email, normalise_email(email), "not-a-hash")
            await uow.commit()
        try:
            yield Sessions(new_unit_of_work, user.id)
        finally:
            async with new_unit_of_work() as uow:
                stored = await uow.session.get(User, user.id)
                if stored is not None:
                    await uow.users.delete(stored)
                await uow.commit()
    finally:
        await engine.dispose()


async def test_purge_deletes_sessions_ended_before_the_retention_and_keeps_the_rest(
    sessions: Sessions, settings: Settings
) -> None:
    now = datetime.now(UTC)
    kept_settings = replace(settings, session_retention=RETENTION)
    old_revoked = await sessions.add(3, revoked_at=now - 8 * DAY)
    old_expired = await sessions.add(3, expires_at=now - 8 * DAY)
    # Revoked long ago, though its refresh token would still run for weeks.
    old_revoked_unexpired = await sessions.add(
        2, expires_at=now + 20 * DAY, revoked_at=now - 8 * DAY
    )
    recent_revoked = await sessions.add(2, revoked_at=now - 6 * DAY)
    recent_expired = await sessions.add(2, expires_at=now - DAY)
    active = await sessions.add(3)
    old = old_revoked + old_expired + old_revoked_unexpired
    kept = recent_revoked + recent_expired + active

    report = await purge(sessions.new_unit_of_work, kept_settings)

    purged = len(old) - len(await sessions.remaining(old))
    stayed = len(await sessions.remaining(kept))
    print(f"old purged: {purged} of {len(old)}; recent and active kept: {stayed} of {len(kept)}")
    assert not report.skipped
    assert (purged, stayed) == (len(old), len(kept))
    assert report.deleted["sessions"] >= len(old)


async def test_purge_works_through_a_backlog_in_bounded_batches(
    sessions: Sessions, settings: Settings
) -> None:
    now = datetime.now(UTC)
    old = await sessions.add(45, revoked_at=now - 30 * DAY)
    active = await sessions.add(2)

    report = await purge(sessions.new_unit_of_work, settings, batch_size=10)

    assert await sessions.remaining(old) == set()
    assert await sessions.remaining(active) == set(active)
    assert report.deleted["sessions"] >= len(old)
    print(f"backlog purged in batches of 10: {report.deleted['sessions']} rows")


async def test_purge_skips_while_another_instance_holds_the_lock(
    sessions: Sessions, settings: Settings
) -> None:
    old = await sessions.add(5, revoked_at=datetime.now(UTC) - 30 * DAY)
    async with sessions.new_unit_of_work() as holder:
        assert await holder.locks.try_purge()
        report = await purge(sessions.new_unit_of_work, settings)
        assert report.skipped
        assert report.deleted["sessions"] == 0
        assert await sessions.remaining(old) == set(old)
    # Released with the holder's transaction: the next purge does the work.
    again = await purge(sessions.new_unit_of_work, settings)
    assert not again.skipped
    assert await sessions.remaining(old) == set()


async def test_concurrent_purges_never_fail_and_delete_each_row_once(
    sessions: Sessions, settings: Settings
) -> None:
    rounds, rows = 15, 40
    skipped = 0
    for _ in range(rounds):
        old = await sessions.add(rows, revoked_at=datetime.now(UTC) - 30 * DAY)
        first, second = await asyncio.gather(
            purge(sessions.new_unit_of_work, settings, batch_size=10),
            purge(sessions.new_unit_of_work, settings, batch_size=10),
        )
        assert await sessions.remaining(old) == set()
        assert first.deleted["sessions"] + second.deleted["sessions"] >= rows
        skipped += first.skipped + second.skipped
        # One of them always finishes the work: never both stop on the lock.
        assert not (first.skipped and second.skipped)
    print(f"purges that found the lock taken and skipped: {skipped} of {2 * rounds}")


async def test_refresh_of_a_purged_session_is_refused_even_without_its_redis_marks(
    settings: Settings,
) -> None:
    """Deleting a revoked row must never revive its refresh token, however the race falls."""
    rounds, refreshes = 10, 4
    email = f"purged-{uuid.uuid4().hex}@example.com"
    _, harness = await start_harness(settings)
    accepted = total = 0
    try:
        async with harness.client:
            user = await harness.register(email)
            for _ in range(rounds):
                tokens = await harness.login(email)
                response = await harness.client.post(
                    "/auth/logout", headers=bearer(tokens["access_token"])
                )
                assert response.status_code == 204
                async with harness.resources.database.unit_of_work() as uow:
                    await uow.session.execute(
                        update(DeviceSession)
                        .where(DeviceSession.id == uuid.UUID(tokens["session_id"]))
                        .values(revoked_at=datetime.now(UTC) - 30 * DAY)
                    )
                    await uow.commit()
                # As if the session's Redis mark had expired: only Postgres can refuse now.
                marks = [
                    k
                    async for k in harness.resources.redis.scan_iter(
                        harness.resources.revocations.user_keys(user["id"])
                    )
                ]
                await harness.resources.redis.delete(*marks)
                refresh = [
                    harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
                    for _ in range(refreshes)
                ]
                _, *responses = await asyncio.gather(
                    purge(harness.resources.database.unit_of_work, settings), *refresh
                )
                for response in responses:
                    total += 1
                    accepted += response.status_code == 200
                    assert response.json()["code"] == "token_revoked", response.text
                async with harness.resources.database.unit_of_work() as uow:
                    gone = await uow.session.get(DeviceSession, uuid.UUID(tokens["session_id"]))
                assert gone is None
                after = await harness.client.post(
                    "/auth/refresh", headers=bearer(tokens["refresh_token"])
                )
                total += 1
                accepted += after.status_code == 200
                assert after.json()["code"] == "token_revoked"
    finally:
        await stop_harness(harness, email)
    print(f"refreshes of purged sessions accepted: {accepted} of {total}")
    assert accepted == 0


async def _flask_purge(settings: Settings, database_url: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        **settings_env(settings),
        "DATABASE_URL": database_url,
        "SESSION_RETENTION": str(RETENTION),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flask",
        "--app",
        "api",
        "purge",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_purge_command_prints_one_line_of_what_it_deleted_and_exits_0(
    sessions: Sessions, settings: Settings
) -> None:
    now = datetime.now(UTC)
    old = await sessions.add(3, revoked_at=now - 8 * DAY) + await sessions.add(
        2, expires_at=now - 8 * DAY
    )
    kept = await sessions.add(2, revoked_at=now - DAY) + await sessions.add(2)

    code, out, err = await _flask_purge(settings, settings.database_url)

    assert code == 0, err
    match = re.fullmatch(
        r"purged sessions: (\d+), audit events: \d+, message tokens: \d+, sent mail: \d+\n", out
    )
    assert match, out
    assert int(match.group(1)) >= len(old)
    assert await sessions.remaining(old) == set()
    assert await sessions.remaining(kept) == set(kept)
    print(f"flask purge: exit {code}, {out.strip()!r}")


async def test_purge_command_exits_non_zero_with_one_line_when_postgres_is_unreachable(
    settings: Settings,
) -> None:
    parts = urlsplit(settings.database_url)
    unreachable = urlunsplit(parts._replace(netloc="postgres@127.0.0.1:1"))

    code, out, err = await _flask_purge(settings, unreachable)

    assert code != 0
    assert out == ""
    assert err.count("\n") == 1, err
    assert "Postgres is unreachable at 127.0.0.1:1" in err
    print(f"flask purge, Postgres unreachable: exit {code}, {err.strip()!r}")


async def test_purge_schedule_purges_periodically_and_stops_cleanly(
    sessions: Sessions, settings: Settings
) -> None:
    old = await sessions.add(3, revoked_at=datetime.now(UTC) - 30 * DAY)
    schedule = PurgeSchedule(sessions.new_unit_of_work, replace(settings, session_purge_interval=1))
    schedule.start()
    try:
        for _ in range(150):  # bounded: at most ~30 s for a purge that runs every second
            if not await sessions.remaining(old):
                break
            await asyncio.sleep(0.2)
    finally:
        await schedule.stop()
    assert await sessions.remaining(old) == set()
    # Stopped between purges: nothing left running on the loop.
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "purge-schedule"]


async def test_purge_deletes_audit_events_past_their_retention_only(settings: Settings) -> None:
    engine = create_engine(
        settings.database_url, pool_size=1, pool_timeout=5, application_name="purge-audit-test"
    )
    factory = create_session_factory(engine)
    now = datetime.now(UTC)
    marker = {"test": uuid.uuid4().hex}
    try:
        async with UnitOfWork(factory) as uow:
            for age in (400, 366, 364, 1):
                await uow.audit.add(
                    NewEvent(type="test.event", occurred_at=now - age * DAY, details=marker)
                )
            await uow.commit()
        report = await purge(
            lambda: UnitOfWork(factory), replace(settings, audit_retention_days=365)
        )
        async with UnitOfWork(factory) as uow:
            left = await uow.session.execute(
                select(AuditEvent.occurred_at).where(
                    AuditEvent.details["test"].astext == marker["test"]
                )
            )
            ages = sorted(round((now - at) / DAY) for at in left.scalars())
            await uow.session.execute(
                delete(AuditEvent).where(AuditEvent.details["test"].astext == marker["test"])
            )
            await uow.commit()
    finally:
        await engine.dispose()
    print(f"audit purge: {report.summary()}; ages left {ages}")
    assert report.deleted["audit events"] >= 2
    assert ages == [1, 364]
