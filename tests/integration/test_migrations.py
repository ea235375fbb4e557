"""Alembic: the migrations build and tear down the schema, and match the models exactly."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from db.emails import normalise_email
from db.models import Base
from tests.conftest import ROOT, migrate


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


EMAIL_NORMALISED = "0004"


def _before(revision: str) -> str:
    """The revision that `revision` upgrades from."""
    script = ScriptDirectory(str(ROOT / "alembic"))
    down = script.get_revision(revision).down_revision
    assert isinstance(down, str)
    return down


async def _execute(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(_plain(url, urlsplit(url).path.lstrip("/")))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def _add_users(url: str, *emails: str) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in emails]
    for user_id, email in zip(ids, emails, strict=True):
        await _execute(
            url,
            "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'x')",
            user_id,
            email,
        )
    return ids


async def _columns(url: str, table: str) -> set[str]:
    rows = await _execute(
        url, "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table
    )
    return {row["column_name"] for row in rows}


async def test_upgrade_backfills_the_normalised_email_with_python(empty_database: str) -> None:
    migrate(empty_database, _before(EMAIL_NORMALISED), "upgrade")
    # Postgres's lower() would give 'ivan.petrov@example.com' for the first one.
    emails = (
        "İvan.Petrov@example.com",
        "Straße@example.com",
        "ＪＯＨＮ@example.com",  # noqa: RUF001 (fullwidth, on purpose)
        "Mixed@x.org",
    )
    await _add_users(empty_database, *emails)

    migrate(empty_database, "head", "upgrade")

    rows = await _execute(empty_database, "SELECT email, email_normalised FROM users")
    assert {row["email"]: row["email_normalised"] for row in rows} == {
        email: normalise_email(email) for email in emails
    }
    assert normalise_email(emails[0]) == "i\u0307van.petrov@example.com"
    migrate(empty_database, _before(EMAIL_NORMALISED), "downgrade")
    assert "email_normalised" not in await _columns(empty_database, "users")
    assert len(await _execute(empty_database, "SELECT id FROM users")) == len(emails)
    migrate(empty_database, "head", "upgrade")
    assert await _differences(empty_database) == []


async def test_upgrade_refuses_users_whose_emails_normalise_alike(empty_database: str) -> None:
    migrate(empty_database, _before(EMAIL_NORMALISED), "upgrade")
    # Distinct under lower(), so the old index let both in; one address once normalised.
    ids = await _add_users(empty_database, "STRASSE@example.com", "straße@example.com")

    with pytest.raises(subprocess.CalledProcessError) as failed:
        migrate(empty_database, "head", "upgrade")

    message = failed.value.stderr.decode()
    assert "same address once normalised" in message
    assert all(str(user_id) in message for user_id in ids)
    version = await _execute(empty_database, "SELECT version_num FROM alembic_version")
    assert [row["version_num"] for row in version] == [_before(EMAIL_NORMALISED)]
    assert "email_normalised" not in await _columns(empty_database, "users")
