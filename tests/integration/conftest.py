"""Integration fixtures: the real app over an ASGI transport on the test's loop,
against real Postgres (one rolled-back transaction per test) and real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from api import create_app
from api.runtime import Runtime
from api.serving import AsgiApp
from api.settings import Settings
from db.emails import normalise_email


@dataclass
class Harness:
    client: httpx.AsyncClient
    runtime: Runtime

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


async def start_harness(settings: Settings) -> tuple[AsgiApp, Harness]:
    """The app with its runtime started on the running (test) loop."""
    asgi = AsgiApp(create_app(settings))
    await asgi.runtime.start()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://test")
    return asgi, Harness(client, asgi.runtime)


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    """The app, with every Postgres write of the test rolled back at the end."""
    asgi, harness = await start_harness(settings)
    runtime = asgi.runtime
    try:
        async with runtime.engine.connect() as connection:
            transaction = await connection.begin()
            # Code under test may commit: its commits become savepoints of this transaction.
            runtime.session_factory = async_sessionmaker(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )
            try:
                async with harness.client:
                    yield harness
            finally:
                await transaction.rollback()
    finally:
        await runtime.redis.flushdb()
        await runtime.stop()


@pytest.fixture
async def client(harness: Harness) -> httpx.AsyncClient:
    return harness.client


@pytest.fixture
async def redis(harness: Harness) -> Redis:
    return harness.runtime.redis


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def stop_harness(harness: Harness, *emails: str) -> None:
    """For a harness whose writes commit: delete the users it made, empty Redis, stop it."""
    try:
        async with harness.runtime.unit_of_work() as uow:
            for email in emails:
                user = await uow.users.get_by_email(normalise_email(email))
                if user is not None:
                    await uow.users.delete(user)
            await uow.commit()
        await harness.runtime.redis.flushdb()
    finally:
        await harness.runtime.stop()
