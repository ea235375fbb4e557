"""`flask --app api create-admin EMAIL`: make the first administrator (or promote one)."""

from __future__ import annotations

import sys

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from api.admin.first_admin import FirstAdmin, Outcome
from api.config.settings import Settings
from api.domain.audit import AuditTrail
from api.domain.clock import utc_now
from api.domain.errors import ValidationFailed
from api.maintenance.own_loop import command_settings, run_command
from api.resources import build_database, build_passwords
from api.security.keys import KeySet


@click.command("create-admin")
@click.argument("email")
def create_admin_command(email: str) -> None:
    """Create EMAIL's account as admin (password from stdin, or prompted on a terminal),
    or promote the existing account, whose password must then be given: an address anyone
    may have registered is not proof of who holds it."""
    settings = command_settings()
    try:
        outcome = run_command(
            settings, "create-admin", lambda engine: _create_or_promote(settings, engine, email)
        )
    except ValidationFailed as error:
        reasons = "; ".join(f"{e['field']}: {e['message']}" for e in error.errors)
        raise click.ClickException(f"{email} was not made an admin: {reasons}") from None
    click.echo(_LINES[outcome].format(email=email))
    if outcome is not Outcome.ALREADY_ADMIN and "admin" in settings.mfa_required_roles:
        click.echo(_SECOND_FACTOR_STEPS.format(email=email))


_LINES = {
    Outcome.CREATED: "created {email} as admin",
    Outcome.PROMOTED: "promoted {email} to admin (its next login carries the admin permissions)",
    Outcome.ALREADY_ADMIN: "{email} is already an admin; nothing changed",
}


# MFA_REQUIRED_ROLES names admin (the default): the admin routes stay closed until then.
_SECOND_FACTOR_STEPS = """\
next: {email} must enrol a second factor before the admin routes answer (MFA_REQUIRED_ROLES):
  1. POST /auth/login with the password; the tokens carry amr ["pwd"]
  2. POST /me/mfa/totp with that access token; add the otpauth_uri to an authenticator app
  3. POST /me/mfa/totp/confirm {{"code": "<6 digits>"}}; keep the 10 recovery codes offline
  4. log in again: POST /auth/login answers 401 mfa_required with an mfa_token, then
     POST /auth/mfa/verify {{"mfa_token", "code"}} answers tokens with amr ["pwd", "otp"]"""


def _read_password(*, confirm: bool = True) -> str:
    if sys.stdin.isatty():
        password: str = click.prompt(
            "Password", hide_input=True, confirmation_prompt=confirm, err=True
        )
        return password
    # Taken as sent but for the line break that ends it (passwords are never trimmed).
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


async def _create_or_promote(settings: Settings, engine: AsyncEngine, email: str) -> Outcome:
    passwords = build_passwords(settings, workers=1, queue_max=1)
    trail = AuditTrail(KeySet.from_settings(settings).secret_material(), utc_now)
    first_admin = FirstAdmin(
        build_database(engine, settings).reporting_to(trail.logged), passwords, trail, settings
    )
    try:
        if await first_admin.exists(email):
            return await first_admin.promote(email, _read_password(confirm=False))
        return await first_admin.create(email, _read_password())
    finally:
        passwords.close()
