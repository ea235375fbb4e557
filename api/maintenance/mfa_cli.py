"""`flask --app api mfa reencrypt`: every TOTP secret under MFA_ENCRYPTION_KEY's first key."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from api.config.settings import Settings
from api.maintenance.own_loop import run_command
from api.mfa.secrets import SecretBox
from api.mfa.service import reencrypt
from api.resources import build_database
from api.security.keys import KeySet

mfa_command = AppGroup("mfa", help="Second-factor maintenance.")


@mfa_command.command("reencrypt")
def reencrypt_command() -> None:
    """Re-encrypt every stored TOTP secret under the first key of MFA_ENCRYPTION_KEY, so
    the keys after it can be dropped."""
    settings: Settings = current_app.extensions["runtime"].settings
    box = SecretBox.from_settings(settings, KeySet.from_settings(settings).secret_material())
    if not box.available:
        raise click.ClickException("MFA_ENCRYPTION_KEY is not set; there is no key to use.")
    changed = run_command(
        settings, "mfa", lambda engine: reencrypt(build_database(engine, settings), box)
    )
    click.echo(f"re-encrypted {changed} secret(s) under the first MFA_ENCRYPTION_KEY")
