"""`flask --app api keys ...`: make a signing key, and show which keys the settings name.

Registered as a Flask plugin command (pyproject.toml), so it runs before, and without,
the app: `keys generate` needs no settings at all, and `keys show` reads them itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from api.maintenance.own_loop import command_settings
from api.security.keys import (
    ASYMMETRIC,
    KeySet,
    generate_private_key,
    private_pem,
    verification_key,
)


@click.group("keys")
def keys_command() -> None:
    """Signing keys: make one, show the configured ones."""


@keys_command.command("generate")
@click.option(
    "--algorithm",
    type=click.Choice(ASYMMETRIC),
    required=True,
    help="RS256 (RSA 3072), ES256 (P-256) or EdDSA (Ed25519).",
)
@click.option(
    "--out",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the private key (PEM, mode 0600); never overwritten.",
)
def generate_command(algorithm: str, path: Path) -> None:
    """Write a new private key to PATH and print its kid."""
    key = generate_private_key(algorithm)
    # Missing folders are made private too: they will hold signing keys.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        # O_EXCL: an existing file (a key in use, or a link planted there) is never touched.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"{path} exists; choose another path.") from None
    except OSError as error:
        raise click.ClickException(f"can't write {path}: {error.strerror}.") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(private_pem(key))
    click.echo(verification_key(key.public_key(), algorithm).kid)


@keys_command.command("show")
def show_command() -> None:
    """Print every configured key: whether it signs or only verifies, its kid, algorithm
    and where it was read from."""
    keys = KeySet.from_settings(command_settings())
    for key in keys.keys:
        role = "signs" if key is keys.signing else "verifies"
        click.echo(f"{role:8}  {key.kid}  {key.algorithm:5}  {key.source}")
