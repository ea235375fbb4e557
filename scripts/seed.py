"""Bulk-create (and remove) load-test users straight in Postgres.

    python -m scripts.seed --count 100000 --prefix load     # create load-0..99999@load.example.com
    python -m scripts.seed --prefix load --delete           # remove them again

Every user gets the same password and ONE argon2id hash of it, computed once with
the ARGON2_* parameters of the environment (the app's own defaults when unset), so
a login of a seeded user costs what a real login costs. Rows go in through COPY
into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING per batch:
emails that exist already (once normalised, see db.emails) keep their row and their
password.
DATABASE_URL is read as the app reads it (postgres://, postgresql+asyncpg://, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from argon2 import PasswordHasher, Type

from api.config.settings import (
    DEFAULT_DATABASE_URL,
    Settings,
    SettingsError,
    normalise_database_url,
)
from db.emails import normalise_email

# Not the reserved `.test`: the API's email validation refuses special-use domains
# with 422, while the `example` domains are accepted (RFC 6761 says they may be).
EMAIL_DOMAIN = "load.example.com"
DEFAULT_PREFIX = "load"
DEFAULT_PASSWORD = "load-test-passphrase-0001"
DEFAULT_BATCH = 50_000

# The temporary table lives only as long as the seeding transaction.
_CREATE_STAGING = (
    "CREATE TEMPORARY TABLE seed_staging (id uuid, email text, email_normalised text) "
    "ON COMMIT DROP"
)
# No conflict target: a bare DO NOTHING skips a clash on the normalised email (or on
# the primary key) either way.
_INSERT_FROM_STAGING = """
    INSERT INTO users (id, email, email_normalised, password_hash)
    SELECT id, email, email_normalised, $1 FROM seed_staging
    ON CONFLICT DO NOTHING
"""


def seed_email(email_prefix: str, index: int) -> str:
    """The email of seeded user number `index` (0-based)."""
    return f"{email_prefix}-{index}@{EMAIL_DOMAIN}"


def asyncpg_connect_args(database_url: str) -> tuple[str, dict[str, str]]:
    """A DSN for asyncpg.connect, plus its keyword arguments, from any URL the app accepts.

    Raises:
        SettingsError: the URL is not a Postgres URL.
    """
    parts = urlsplit(normalise_database_url(database_url))
    query = parse_qsl(parts.query)
    # The app's URL spells the TLS mode `ssl` (SQLAlchemy hands it to asyncpg as an
    # argument); in a raw asyncpg DSN an unknown parameter would become a server setting.
    kwargs = {k: v for k, v in query if k == "ssl"}
    rest = urlencode([(k, v) for k, v in query if k != "ssl"])
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, rest, ""))
    return dsn, kwargs


def hash_password(password: str, settings: Settings | None = None) -> str:
    """An argon2id hash of `password` with the ARGON2_* parameters of `settings` (default: env)."""
    settings = settings or _settings_from_env()
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        type=Type.ID,
    )
    return hasher.hash(password)


async def seed_users(
    database_url: str,
    count: int,
    *,
    password: str,
    email_prefix: str = DEFAULT_PREFIX,
    batch: int = DEFAULT_BATCH,
    password_hash: str | None = None,
) -> list[str]:
    """Make sure users <email_prefix>-<0..count-1>@load.example.com exist; return their emails.

    All new users share one hash of `password` (`password_hash` when given, else one
    computed with the environment's ARGON2_* parameters). Emails that exist already are
    left untouched, password included. Everything happens in one transaction.

    Raises:
        SettingsError: `database_url` is not a Postgres URL.
        asyncpg.PostgresError: the database refused (no users table: migrate first).
    """
    if count < 0 or batch < 1:
        raise ValueError(f"count must be >= 0 and batch >= 1; got {count} and {batch}.")
    if password_hash is None:
        password_hash = await asyncio.to_thread(hash_password, password)
    emails = [seed_email(email_prefix, i) for i in range(count)]
    dsn, kwargs = asyncpg_connect_args(database_url)
    connection = await asyncpg.connect(dsn, **kwargs)
    try:
        async with connection.transaction():
            await connection.execute(_CREATE_STAGING)
            for chunk in _chunks(emails, batch):
                # Normalised here, in Python, exactly as the app does it.
                records = [(uuid.uuid4(), email, normalise_email(email)) for email in chunk]
                await connection.copy_records_to_table(
                    "seed_staging", records=records, columns=("id", "email", "email_normalised")
                )
                await connection.execute(_INSERT_FROM_STAGING, password_hash)
                await connection.execute("TRUNCATE seed_staging")
    finally:
        await connection.close()
    return emails


async def count_seeded(database_url: str, email_prefix: str) -> int:
    """How many users seeded with `email_prefix` exist."""
    dsn, kwargs = asyncpg_connect_args(database_url)
    connection = await asyncpg.connect(dsn, **kwargs)
    try:
        like, regex = _patterns(email_prefix)
        query = (
            "SELECT count(*) FROM users WHERE email_normalised LIKE $1 AND email_normalised ~ $2"
        )
        return int(await connection.fetchval(query, like, regex))
    finally:
        await connection.close()


async def delete_seeded(database_url: str, email_prefix: str) -> int:
    """Delete the users seeded with `email_prefix` (their sessions go too); return how many."""
    dsn, kwargs = asyncpg_connect_args(database_url)
    connection = await asyncpg.connect(dsn, **kwargs)
    try:
        like, regex = _patterns(email_prefix)
        status = await connection.execute(
            "DELETE FROM users WHERE email_normalised LIKE $1 AND email_normalised ~ $2",
            like,
            regex,
        )
    finally:
        await connection.close()
    return int(status.split()[-1])  # "DELETE <n>"


def _patterns(email_prefix: str) -> tuple[str, str]:
    # LIKE narrows cheaply; the regex makes it exact, so prefix "load" never matches
    # the users of prefix "load-2" ("load-2-7@load.example.com").
    prefix = normalise_email(email_prefix)
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = f"{escaped}-%@{EMAIL_DOMAIN}"
    regex = f"^{re.escape(prefix)}-[0-9]+@{re.escape(EMAIL_DOMAIN)}$"
    return like, regex


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _settings_from_env() -> Settings:
    # Only the argon2 parameters matter here; the seeder never signs a token, so a
    # missing JWT secret must not stop it (a random one stands in).
    environ = {
        **os.environ,
        "JWT_SECRET_KEY": os.environ.get("JWT_SECRET_KEY") or secrets.token_urlsafe(48),
    }
    return Settings.from_env(environ)


def default_database_url() -> str:
    """DATABASE_URL, or the app's default when unset."""
    return os.environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.seed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--count", type=int, default=10_000, help="users to create (10000)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="email prefix (load)")
    parser.add_argument(
        "--password", default=DEFAULT_PASSWORD, help=f"their password ({DEFAULT_PASSWORD})"
    )
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="rows per COPY")
    parser.add_argument(
        "--database-url",
        default=None,
        help="Postgres of the target server (default: DATABASE_URL, else the app's default)",
    )
    parser.add_argument(
        "--delete", action="store_true", help="delete the users of --prefix instead"
    )
    return parser


async def _main(args: argparse.Namespace) -> None:
    url = args.database_url or default_database_url()
    started = time.perf_counter()
    if args.delete:
        deleted = await delete_seeded(url, args.prefix)
        print(f"seed: deleted {deleted} users of prefix {args.prefix!r} in {_since(started)}")
        return
    before = await count_seeded(url, args.prefix)
    await seed_users(
        url, args.count, password=args.password, email_prefix=args.prefix, batch=args.batch
    )
    after = await count_seeded(url, args.prefix)
    print(
        f"seed: {after - before} new users ({before} existed) of prefix {args.prefix!r}, "
        f"{after} in all, in {_since(started)}"
    )


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.2f} s"


def main(argv: list[str] | None = None) -> int:
    """The command line: seed or delete, then say how many and how long it took."""
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_main(args))
    except (SettingsError, ValueError, OSError, asyncpg.PostgresError) as error:
        print(f"seed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
