"""`flask --app api send-mail`: deliver the outbox from a process of its own."""

from __future__ import annotations

import asyncio

import click
from flask import current_app
from flask.cli import with_appcontext

from api.account.mailer import POLL_SECONDS, OutboxSender, Step, transport_for
from api.domain.audit import AuditTrail
from api.domain.clock import utc_now
from api.maintenance.own_loop import run_command
from api.resources import build_database
from api.runtime import Runtime
from db.engine import Database


@click.command("send-mail")
@click.option(
    "--watch",
    is_flag=True,
    help="Keep delivering (polling every second) until interrupted, instead of once.",
)
@with_appcontext
def send_mail_command(watch: bool) -> None:
    """Deliver every message of the outbox that is due now (and, with --watch, keep going).

    Under the same advisory lock as the server's workers: one sender at a time.
    """
    runtime: Runtime = current_app.extensions["runtime"]
    settings = runtime.settings
    try:
        counts = run_command(
            settings,
            "mail",
            lambda engine: _deliver(runtime, build_database(engine, settings), watch),
            unchanged="nothing was sent",
        )
    except KeyboardInterrupt:
        return
    if counts[Step.ELSEWHERE]:
        click.echo("another sender holds the outbox lock; it delivers the messages")
    click.echo(f"delivered {counts[Step.DELIVERED]}, failed attempts {counts[Step.FAILED]}")


async def _deliver(runtime: Runtime, database: Database, watch: bool) -> dict[Step, int]:
    settings = runtime.settings
    trail = AuditTrail(runtime.keys.secret_material(), utc_now)
    sender = OutboxSender(
        database.reporting_to(trail.logged).unit_of_work,
        transport_for(settings),
        settings,
        trail,
        utc_now,
    )
    total = dict.fromkeys(Step, 0)
    while True:
        counts = await sender.deliver_due()
        for step, count in counts.items():
            total[step] += count
        if not watch:
            return total
        await asyncio.sleep(POLL_SECONDS)
