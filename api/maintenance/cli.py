"""`flask --app api purge`: one purge, for a scheduler (cron, a platform's job runner)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from api.config.settings import Settings
from api.maintenance.own_loop import run_command
from api.maintenance.purge import purge
from api.resources import build_database


@click.command("purge")
@with_appcontext
def purge_command() -> None:
    """Delete sessions that ended more than SESSION_RETENTION ago, and audit events older
    than AUDIT_RETENTION_DAYS."""
    settings: Settings = current_app.extensions["runtime"].settings
    report = run_command(
        settings,
        "purge",
        lambda engine: purge(build_database(engine, settings).unit_of_work, settings),
        unchanged="nothing was purged",
        refused="refused the purge",
    )
    click.echo(report.summary())
