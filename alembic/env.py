"""Alembic environment: async engine from DATABASE_URL, metadata from db.models."""

from __future__ import annotations

import asyncio
import sys
from logging.config import fileConfig

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import context
from api.config.settings import SettingsError, database_url_from_env
from db.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url: str | None = config.attributes.get("database_url")
    if url:
        return url
    # Migrations need DATABASE_URL alone; a bad one stops them with one line, as it
    # stops the server (api.edge.preflight), rather than a traceback.
    try:
        return database_url_from_env()
    except SettingsError as error:
        print(f"alembic: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
