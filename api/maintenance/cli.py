"""`flask --app api purge`: one purge, for a scheduler (cron, a platform's job runner).

The commands are Flask plugin commands (pyproject.toml): listed by `flask --app api
--help` and run without loading the app, so a bad setting is one line naming it, never
a traceback. Each reads the settings itself (api.maintenance.own_loop.command_settings).
"""

from __future__ import annotations

import click

from api.maintenance.own_loop import command_settings, run_command
from api.maintenance.purge import purge
from api.resources import build_database


@click.command("purge")
def purge_command() -> None:
    """Delete sessions that ended more than SESSION_RETENTION ago, and audit events older
    than AUDIT_RETENTION_DAYS."""
    settings = command_settings()
    report = run_command(
        settings,
        "purge",
        lambda engine: purge(build_database(engine, settings).unit_of_work, settings),
        unchanged="nothing was purged",
    )
    click.echo(report.summary())
