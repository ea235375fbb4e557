"""`flask --app api mfa reencrypt`: every TOTP secret under MFA_ENCRYPTION_KEY's first key."""

from __future__ import annotations

import asyncio

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import DBAPIError

from api.config.settings import Settings
from api.maintenance.cli import server_of
from api.mfa.secrets import SecretBox
from api.mfa.service import reencrypt
from api.security.keys import KeySet
from db.engine import Database, create_engine
from db.errors import StoreUnavailable

mfa_command = AppGroup("mfa", help="Second-factor maintenance.")


@mfa_command.command("reencrypt")
def reencrypt_command() -> None:
    """Re-encrypt every stored TOTP secret under the first key of MFA_ENCRYPTION_KEY, so
    the keys after it can be dropped."""
    settings: Settings = current_app.extensions["runtime"].settings
    where = server_of(settings.database_url)
    try:
        # The server's pools live on its workers' loops: this command has its own.
        changed = asyncio.run(_reencrypt(settings))
    except StoreUnavailable:
        raise click.ClickException(
            f"Postgres is unreachable at {where} (DATABASE_URL); nothing was changed."
        ) from None
    except DBAPIError as error:
        reason = str(error.orig).splitlines()[0] if error.orig else type(error).__name__
        raise click.ClickException(f"Postgres at {where} refused: {reason}.") from None
    click.echo(f"re-encrypted {changed} secret(s) under the first MFA_ENCRYPTION_KEY")


async def _reencrypt(settings: Settings) -> int:
    box = SecretBox.from_settings(settings, KeySet.from_settings(settings).secret_material())
    if not box.available:
        raise click.ClickException("MFA_ENCRYPTION_KEY is not set; there is no key to use.")
    engine = create_engine(
        settings.database_url,
        pool_size=1,
        pool_timeout=settings.db_pool_timeout,
        application_name=f"{settings.db_application_name}-mfa",
        statement_cache_size=settings.database_statement_cache_size,
    )
    try:
        return await reencrypt(Database.on_engine(engine), box)
    finally:
        await engine.dispose()
