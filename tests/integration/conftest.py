"""Integration fixtures: the real app over an ASGI transport on the test's loop,
against real Postgres (one rolled-back transaction per test) and real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from flask import Flask
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from api import create_app
from api.config.settings import Settings
from api.domain.clock import Clock, utc_now
from api.edge.bridge import AsgiApp
from api.resources import Resources
from api.runtime import Runtime
from db.emails import normalise_email
from tests.conftest import forget_redis_keys
from tests.redis_server import OwnRedis


@dataclass
class Harness:
    client: httpx.AsyncClient
    runtime: Runtime
    resources: Resources
    # The connection whose rolled-back transaction holds the app's writes, if any.
    bind: AsyncConnection | None = None
    started_at: datetime = field(default_factory=utc_now)
    # The Flask app behind `client`'s bridge (for a client without lanes, say).
    flask: Flask | None = None

    async def register(self, email: str, password: str = "a long enough passphrase") -> Any:
        response = await self.client.post(
            "/auth/register", json={"email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def login(
        self, email: str, password: str = "a long enough passphrase", **extra: Any
    ) -> Any:
        response = await self.client.post(
            "/auth/login", json={"email": email, "password": password, **extra}
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def user_with_token(self, email: str = "user@example.com") -> tuple[Any, str]:
        user = await self.register(email)
        tokens = await self.login(email)
        return user, tokens["access_token"]


@asynccontextmanager
async def without_lanes(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same app and runtime whose bridge has no lanes: Flask answers all
    (what a lane's answers are compared with)."""
    assert harness.flask is not None
    transport = httpx.ASGITransport(app=AsgiApp(harness.flask, lanes=[]))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def start_harness(
    settings: Settings, *, bind: AsyncConnection | None = None, clock: Clock = utc_now
) -> tuple[AsgiApp, Harness]:
    """The app with its runtime started on the running (test) loop.

    `bind` runs every Postgres statement inside the caller's transaction; without it the
    app's writes commit (see stop_harness).
    """
    asgi = AsgiApp(create_app(settings))
    resources = await asgi.runtime.start(bind=bind, clock=clock)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://test")
    return asgi, Harness(client, asgi.runtime, resources, bind, flask=asgi.flask)


HarnessFactory = Callable[..., Awaitable[Harness]]


class MovableClock:
    """The app's clock in a test: time moves when the test says, no sleeping."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def make_harness(settings: Settings) -> AsyncIterator[HarnessFactory]:
    """Harnesses with settings overrides (and a clock of the test's), every Postgres write of
    each rolled back at the end: `await make_harness(access_token_ttl=60, clock=clock)`."""
    async with AsyncExitStack() as stack:

        async def make(*, clock: Clock = utc_now, **overrides: Any) -> Harness:
            engine = create_async_engine(settings.database_url, poolclass=NullPool)
            stack.push_async_callback(engine.dispose)
            connection = await stack.enter_async_context(engine.connect())
            transaction = await connection.begin()
            # asyncpg's BEGIN waits for SQLAlchemy's first statement: sent now, so a statement
            # on the driver's own connection (db.driver_statements) runs inside it too.
            await connection.exec_driver_sql("SELECT 1")
            stack.push_async_callback(transaction.rollback)
            # Code under test may commit: its commits become savepoints of this transaction.
            asgi, harness = await start_harness(
                replace(settings, **overrides), bind=connection, clock=clock
            )
            stack.push_async_callback(asgi.runtime.stop)
            stack.push_async_callback(
                forget_redis_keys,
                harness.resources.redis,
                harness.resources.settings.redis_key_prefix,
            )
            await stack.enter_async_context(harness.client)
            return harness

        yield make


@pytest.fixture
async def harness(make_harness: HarnessFactory) -> Harness:
    """The app with the test settings, every Postgres write of the test rolled back."""
    return await make_harness()


@pytest.fixture
async def client(harness: Harness) -> httpx.AsyncClient:
    return harness.client


@pytest.fixture
async def redis(harness: Harness) -> Redis:
    return harness.resources.redis


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


_WHEN = {"audit_events": "occurred_at", "outbox": "created_at"}


async def stop_harness(harness: Harness, *emails: str) -> None:
    """For a harness whose writes commit: delete the users it made and the audit events it
    wrote, empty Redis, stop it."""
    try:
        async with harness.resources.database.unit_of_work() as uow:
            for email in emails:
                user = await uow.users.get_by_email(normalise_email(email))
                if user is not None:
                    await uow.users.delete(user)
            for table in ("audit_events", "outbox"):
                await uow.session.execute(
                    text(f"DELETE FROM {table} WHERE {_WHEN[table]} >= :started"),  # noqa: S608
                    {"started": harness.started_at},
                )
            await uow.commit()
        await forget_redis_keys(
            harness.resources.redis, harness.resources.settings.redis_key_prefix
        )
    finally:
        await harness.runtime.stop()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    """A Redis server of the test's own, to stop, freeze and start again."""
    server = OwnRedis()
    server.start()
    yield server
    server.stop()
