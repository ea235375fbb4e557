"""Alembic: the migrations build and tear down the schema, and match the models exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from db.models import Base
from tests.conftest import migrate


def _plain(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql", path=f"/{database}", query=""))


@pytest.fixture
async def empty_database(database_url: str) -> AsyncIterator[str]:
    """A database of its own, created empty and dropped afterwards."""
    name = urlsplit(database_url).path.lstrip("/") + "_migrations"
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    maintenance = await asyncpg.connect(_plain(database_url, "postgres"))
    try:
        await maintenance.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await maintenance.execute(f'CREATE DATABASE "{name}"')
        yield url
    finally:
        await maintenance.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await maintenance.close()


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(_plain(url, urlsplit(url).path.lstrip("/")))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}
    finally:
        await conn.close()


async def _differences(url: str) -> list[object]:
    def compare(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def test_upgrade_then_downgrade_on_an_empty_database(empty_database: str) -> None:
    migrate(empty_database, "head", "upgrade")
    assert {"users", "sessions"} <= await _tables(empty_database)
    migrate(empty_database, "base", "downgrade")
    assert await _tables(empty_database) == {"alembic_version"}
    migrate(empty_database, "head", "upgrade")
    assert {"users", "sessions"} <= await _tables(empty_database)


async def test_models_and_migrations_agree(empty_database: str) -> None:
    migrate(empty_database, "head", "upgrade")
    assert await _differences(empty_database) == []
