"""`flask --app api send-mail`: deliver the outbox from a process of its own."""

from __future__ import annotations

import asyncio

import click
from flask import current_app
from flask.cli import with_appcontext

from api.account.mailer import POLL_SECONDS, OutboxSender, Step, transport_for
from api.domain.audit import AuditTrail
from api.domain.clock import utc_now
from api.maintenance.cli import server_of
from api.runtime import Runtime
from db.engine import create_engine, create_session_factory
from db.errors import StoreUnavailable
from db.unit_of_work import UnitOfWork


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
    try:
        counts = asyncio.run(_deliver(runtime, watch))
    except StoreUnavailable:
        where = server_of(runtime.settings.database_url)
        raise click.ClickException(
            f"Postgres is unreachable at {where} (DATABASE_URL); nothing was sent."
        ) from None
    except KeyboardInterrupt:
        return
    if counts[Step.ELSEWHERE]:
        click.echo("another sender holds the outbox lock; it delivers the messages")
    click.echo(f"delivered {counts[Step.DELIVERED]}, failed attempts {counts[Step.FAILED]}")


async def _deliver(runtime: Runtime, watch: bool) -> dict[Step, int]:
    settings = runtime.settings
    engine = create_engine(
        settings.database_url,
        pool_size=1,
        pool_timeout=settings.db_pool_timeout,
        application_name=f"{settings.db_application_name}-mail",
        statement_cache_size=settings.database_statement_cache_size,
    )
    factory = create_session_factory(engine)
    trail = AuditTrail(runtime.keys.secret_material(), utc_now)
    sender = OutboxSender(
        lambda: UnitOfWork(factory), transport_for(settings), settings, trail, utc_now
    )
    total = dict.fromkeys(Step, 0)
    try:
        while True:
            counts = await sender.deliver_due()
            for step, count in counts.items():
                total[step] += count
            if not watch:
                return total
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await engine.dispose()
