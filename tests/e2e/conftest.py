"""End-to-end fixtures: the real 2-worker Hypercorn server, and cleanup of what tests create."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from api.config.settings import Settings
from db.emails import normalise_email
from tests.e2e.server import SHUTDOWN_PROBLEMS, Server, settings_env
from tests.e2e.smtp_process import SmtpProcess

PASSWORD = "a long enough passphrase"
# Seconds a client keeps an idle connection: well under Hypercorn's keep_alive_timeout (5 s).
KEEPALIVE_EXPIRY = 2.0


@pytest.fixture(scope="session")
def e2e_settings(settings: Settings) -> Settings:
    return replace(settings, db_application_name=f"auth-api-e2e-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def server(e2e_settings: Settings) -> Iterator[Server]:
    """One 2-worker server for the whole session; its shutdown must be clean, and the audit
    events it wrote go with it."""
    started = datetime.now(UTC)
    server = Server(settings_env(e2e_settings), workers=2)
    yield server
    asyncio.run(_delete_events_since(e2e_settings.database_url, started))
    output = server.stop()
    problems = [line for line in output.splitlines() if any(p in line for p in SHUTDOWN_PROBLEMS)]
    assert not problems, output


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpProcess]:
    """`python -m aiosmtpd` in a process of its own, for one test module."""
    process = SmtpProcess(tmp_path_factory.mktemp("smtp"))
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    # An idle connection is dropped by the client before the server's keep-alive timeout
    # (5 s) closes it: a request sent on it as the server's close crossed it would fail
    # with ReadError (seen after a test's CLI commands kept the client idle about 5 s).
    limits = httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
        yield client


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _delete_events_since(database_url: str, started: datetime) -> None:
    conn = await asyncpg.connect(_plain_dsn(database_url))
    try:
        await conn.execute("DELETE FROM audit_events WHERE occurred_at >= $1", started)
        await conn.execute("DELETE FROM outbox WHERE created_at >= $1", started)
    finally:
        await conn.close()


@pytest.fixture
async def pg(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(_plain_dsn(database_url))
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def users(pg: asyncpg.Connection, redis_url: str) -> AsyncIterator[Users]:
    """Creates users through the API, and deletes them and their Redis keys afterwards."""
    tracker = Users()
    yield tracker
    if tracker.emails:
        ids = await pg.fetch(
            "DELETE FROM users WHERE email_normalised = ANY($1::text[]) RETURNING id::text",
            [normalise_email(e) for e in tracker.emails],
        )
        await pg.execute(
            "DELETE FROM audit_events WHERE user_id = ANY($1::uuid[])", [r["id"] for r in ids]
        )
        await pg.execute("DELETE FROM outbox WHERE recipient = ANY($1::text[])", tracker.emails)
        redis = Redis.from_url(redis_url)
        try:
            for row in ids:
                keys = [k async for k in redis.scan_iter(match=f"*{{{row['id']}}}*")]
                if keys:
                    await redis.delete(*keys)
        finally:
            await redis.aclose()


class Users:
    def __init__(self) -> None:
        self.emails: list[str] = []

    def new_email(self) -> str:
        email = f"e2e-{uuid.uuid4().hex}@example.com"
        self.emails.append(email)
        return email

    async def register(self, http: httpx.AsyncClient, email: str | None = None) -> str:
        email = email or self.new_email()
        if email not in self.emails:
            self.emails.append(email)
        response = await http.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert response.status_code == 201, response.text
        return email

    async def login(self, http: httpx.AsyncClient, email: str) -> dict[str, str]:
        response = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return response.json()
