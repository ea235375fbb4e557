"""Shared fixtures: the test database (created and migrated once) and the test settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from api.config.settings import (
    DEFAULT_REDIS_URL,
    Settings,
    database_url_from_env,
    normalise_database_url,
)

ROOT = Path(__file__).resolve().parent.parent
TEST_DB_SUFFIX = "_auth_tests"


def _test_database_url() -> str:
    """DATABASE_URL's server, with a database of the tests' own."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return normalise_database_url(explicit)
    base = urlsplit(database_url_from_env())
    name = base.path.lstrip("/") or "postgres"
    return urlunsplit(base._replace(path="/" + name + TEST_DB_SUFFIX))


def _test_redis_url() -> str:
    explicit = os.environ.get("TEST_REDIS_URL")
    if explicit:
        return explicit
    base = urlsplit(os.environ.get("REDIS_URL", "").strip() or DEFAULT_REDIS_URL)
    return urlunsplit(base._replace(path="/15"))


def ensure_database(url: str) -> None:
    """Create the database of `url` if it does not exist (through asyncpg, outside any loop)."""
    import asyncio

    import asyncpg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres", query=""))

    async def create() -> None:
        conn = await asyncpg.connect(maintenance)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())


def migrate(url: str, revision: str = "head", direction: str = "upgrade") -> None:
    """Run alembic in a subprocess: migrations never run inside a test's event loop."""
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "alembic", direction, revision],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def schema_drift(url: str) -> list[str]:
    """The models' tables and columns the database at `url` lacks (through asyncpg)."""
    import asyncio

    import asyncpg

    from db.models import Base

    parts = urlsplit(url)
    plain = urlunsplit(parts._replace(scheme="postgresql", query=""))

    async def columns() -> set[tuple[str, str]]:
        conn = await asyncpg.connect(plain)
        try:
            rows = await conn.fetch(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public'"
            )
        finally:
            await conn.close()
        return {(row["table_name"], row["column_name"]) for row in rows}

    present = asyncio.run(columns())
    wanted = {(t.name, c.name) for t in Base.metadata.tables.values() for c in t.columns}
    return sorted(f"{table}.{column}" for table, column in wanted - present)


def recreate_database(url: str) -> None:
    """Drop the tests' own database of `url` and create it empty."""
    import asyncio

    import asyncpg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres", query=""))

    async def recreate() -> None:
        conn = await asyncpg.connect(maintenance)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(recreate())


@pytest.fixture(scope="session")
def database_url() -> str:
    url = _test_database_url()
    ensure_database(url)
    migrate(url)
    # A database left by another branch's migrations can be "at head" by revision id and
    # still lack tables: it is the tests' own, so it is made again from nothing.
    if schema_drift(url):
        recreate_database(url)
        migrate(url)
        assert not schema_drift(url), schema_drift(url)
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _test_redis_url()


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    """Test settings: the tests' own database and Redis index, a key of their own, cheap
    argon2, no rate limits."""
    return replace(
        Settings.from_env({"APP_ENV": "test", "JWT_SECRET_KEY": secrets.token_urlsafe(48)}),
        database_url=database_url,
        redis_url=redis_url,
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        db_pool_size=5,
        redis_pool_size=5,
        # Tests of the limits switch them on; the rest register and log in freely.
        rate_limits_enabled=False,
        # Tests of the second factor switch MFA_REQUIRED_ROLES on; the other admin tests
        # use admins who log in with a password alone.
        mfa_required_roles=(),
        # A sender task would share a test's one connection; tests that deliver run their own.
        mail_send_in_workers=False,
        # Every key of this run under its own prefix: runs sharing one Redis can't meet,
        # and cleaning up deletes this run's keys only.
        redis_key_prefix=f"test-{uuid.uuid4().hex[:12]}:",
    )


async def forget_redis_keys(redis: Any, prefix: str) -> None:
    """Delete every key under `prefix` (a test run's own), in place of FLUSHDB."""
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await redis.delete(*keys)
