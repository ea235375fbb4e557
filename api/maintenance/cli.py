"""`flask --app api purge`: one purge, for a scheduler (cron, a platform's job runner)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import DBAPIError

from api.config.settings import Settings
from api.maintenance.purge import PurgeReport, purge
from api.resources import build_database, build_engine
from db.errors import StoreUnavailable


@click.command("purge")
@with_appcontext
def purge_command() -> None:
    """Delete sessions that ended more than SESSION_RETENTION ago, and audit events older
    than AUDIT_RETENTION_DAYS."""
    settings: Settings = current_app.extensions["runtime"].settings
    where = server_of(settings.database_url)
    try:
        # The server's pools live on its workers' loops: this command has its own loop and engine.
        report = asyncio.run(_purge_once(settings))
    except StoreUnavailable:
        raise click.ClickException(
            f"Postgres is unreachable at {where} (DATABASE_URL); nothing was purged."
        ) from None
    except DBAPIError as error:
        reason = str(error.orig).splitlines()[0] if error.orig else type(error).__name__
        raise click.ClickException(f"Postgres at {where} refused the purge: {reason}.") from None
    click.echo(report.summary())


async def _purge_once(settings: Settings) -> PurgeReport:
    engine = build_engine(settings, command="purge", pool_size=1)
    try:
        return await purge(build_database(engine, settings).unit_of_work, settings)
    finally:
        await engine.dispose()


def server_of(database_url: str) -> str:
    # Host, port and database only: the URL may carry a password.
    parts = urlsplit(database_url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"
