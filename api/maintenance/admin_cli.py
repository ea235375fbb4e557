"""`flask --app api create-admin EMAIL`: make the first administrator (or promote one)."""

from __future__ import annotations

import asyncio
import sys

import click
from sqlalchemy.exc import DBAPIError

from api.admin.first_admin import FirstAdmin, Outcome
from api.config.settings import Settings
from api.domain.audit import AuditTrail
from api.domain.clock import utc_now
from api.errors import ValidationFailed
from api.maintenance.cli import command_settings, postgres_failure
from api.resources import build_database, build_engine, build_passwords
from api.security.keys import KeySet
from db.errors import StoreUnavailable


@click.command("create-admin")
@click.argument("email")
def create_admin_command(email: str) -> None:
    """Create EMAIL's account as admin (password from stdin, or prompted on a terminal),
    or promote the existing account, whose password must then be given: an address anyone
    may have registered is not proof of who holds it."""
    settings = command_settings()
    try:
        # The server's pools live on its workers' loops: this command has its own.
        outcome = asyncio.run(_create_or_promote(settings, email))
    except ValidationFailed as error:
        reasons = "; ".join(f"{e['field']}: {e['message']}" for e in error.errors)
        raise click.ClickException(f"{email} was not made an admin: {reasons}") from None
    except (StoreUnavailable, DBAPIError) as error:
        raise postgres_failure(error, settings, "nothing was changed") from None
    click.echo(_LINES[outcome].format(email=email))


_LINES = {
    Outcome.CREATED: "created {email} as admin",
    Outcome.PROMOTED: "promoted {email} to admin (its next login carries the admin permissions)",
    Outcome.ALREADY_ADMIN: "{email} is already an admin; nothing changed",
}


def _read_password(*, confirm: bool = True) -> str:
    if sys.stdin.isatty():
        password: str = click.prompt(
            "Password", hide_input=True, confirmation_prompt=confirm, err=True
        )
        return password
    # Taken as sent but for the line break that ends it (passwords are never trimmed).
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


async def _create_or_promote(settings: Settings, email: str) -> Outcome:
    engine = build_engine(settings, command="create-admin", pool_size=1)
    passwords = build_passwords(settings, workers=1, queue_max=1)
    first_admin = FirstAdmin(
        build_database(engine, settings),
        passwords,
        AuditTrail(KeySet.from_settings(settings).secret_material(), utc_now),
        settings,
    )
    try:
        if await first_admin.exists(email):
            return await first_admin.promote(email, _read_password(confirm=False))
        return await first_admin.create(email, _read_password())
    finally:
        passwords.close()
        await engine.dispose()
