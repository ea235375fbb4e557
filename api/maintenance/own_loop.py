"""How a command talks to Postgres: on its own loop and engine, a failure told in one line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.config.settings import Settings, SettingsError
from api.maintenance import postgres_problems
from api.resources import build_engine
from db.errors import StoreUnavailable

T = TypeVar("T")


def run_command(
    settings: Settings,
    command: str,
    work: Callable[[AsyncEngine], Awaitable[T]],
    *,
    unchanged: str = "nothing was changed",
) -> T:
    """Run `work` with an engine of its own (named `command`), disposed after it.

    An unreachable or refusing Postgres ends the command with one line naming the server,
    the likely cause and its fix (api.maintenance.postgres_problems; `unchanged`: what was
    left as it was).
    """
    try:
        # The server's pools live on its workers' loops: a command has its own.
        return asyncio.run(_on_own_engine(settings, command, work))
    except StoreUnavailable:
        line = postgres_problems.unreachable(settings.database_url)
        raise click.ClickException(f"{line}; {unchanged}.") from None
    except DBAPIError as error:
        line = postgres_problems.refusal(error, settings.database_url)
        raise click.ClickException(f"{line}; {unchanged}.") from None


def command_settings() -> Settings:
    """This environment's settings, or the command's one-line error naming the bad one."""
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


async def _on_own_engine(
    settings: Settings, command: str, work: Callable[[AsyncEngine], Awaitable[T]]
) -> T:
    engine = build_engine(settings, command=command, pool_size=1)
    try:
        return await work(engine)
    finally:
        await engine.dispose()
