"""`flask --app api purge`: one purge, for a scheduler (cron, a platform's job runner).

The commands are Flask plugin commands (pyproject.toml): listed by `flask --app api
--help` and run without loading the app, so a bad setting is one line naming it, never
a traceback. Each reads the settings itself (`command_settings`).
"""

from __future__ import annotations

import asyncio

import click
from sqlalchemy.exc import DBAPIError

from api.config.settings import Settings, SettingsError
from api.maintenance import postgres_problems
from api.maintenance.purge import PurgeReport, purge
from api.resources import build_database, build_engine
from db.errors import StoreUnavailable


def command_settings() -> Settings:
    """This environment's settings, or the command's one-line error naming the bad one."""
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def postgres_failure(error: Exception, settings: Settings, outcome: str) -> click.ClickException:
    """The one line a command prints when Postgres is unreachable or refuses it."""
    if isinstance(error, DBAPIError):
        line = postgres_problems.refusal(error, settings.database_url)
    else:
        line = postgres_problems.unreachable(settings.database_url)
    return click.ClickException(f"{line}; {outcome}.")


@click.command("purge")
def purge_command() -> None:
    """Delete sessions that ended more than SESSION_RETENTION ago, and audit events older
    than AUDIT_RETENTION_DAYS."""
    settings = command_settings()
    try:
        # The server's pools live on its workers' loops: this command has its own loop and engine.
        report = asyncio.run(_purge_once(settings))
    except (StoreUnavailable, DBAPIError) as error:
        raise postgres_failure(error, settings, "nothing was purged") from None
    click.echo(report.summary())


async def _purge_once(settings: Settings) -> PurgeReport:
    engine = build_engine(settings, command="purge", pool_size=1)
    try:
        return await purge(build_database(engine, settings).unit_of_work, settings)
    finally:
        await engine.dispose()
