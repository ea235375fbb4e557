"""How a command talks to Postgres: on its own loop and engine, a failure told in one line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import click
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.config.settings import Settings
from api.resources import build_engine
from db.errors import StoreUnavailable

T = TypeVar("T")


def run_command(
    settings: Settings,
    command: str,
    work: Callable[[AsyncEngine], Awaitable[T]],
    *,
    unchanged: str = "nothing was changed",
    refused: str = "refused",
) -> T:
    """Run `work` with an engine of its own (named `command`), disposed after it.

    An unreachable or refusing Postgres ends the command with one line naming the server
    (`unchanged`: what was left as it was; `refused`: the verb for a refusal).
    """
    where = server_of(settings.database_url)
    try:
        # The server's pools live on its workers' loops: a command has its own.
        return asyncio.run(_on_own_engine(settings, command, work))
    except StoreUnavailable:
        raise click.ClickException(
            f"Postgres is unreachable at {where} (DATABASE_URL); {unchanged}."
        ) from None
    except DBAPIError as error:
        reason = str(error.orig).splitlines()[0] if error.orig else type(error).__name__
        raise click.ClickException(f"Postgres at {where} {refused}: {reason}.") from None


async def _on_own_engine(
    settings: Settings, command: str, work: Callable[[AsyncEngine], Awaitable[T]]
) -> T:
    engine = build_engine(settings, command=command, pool_size=1)
    try:
        return await work(engine)
    finally:
        await engine.dispose()


def server_of(database_url: str) -> str:
    """Host, port and database of `database_url` (never its password)."""
    parts = urlsplit(database_url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"
