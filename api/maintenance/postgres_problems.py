"""Postgres refusing a command or a server's start, said in one line with the fix.

The commands (purge, create-admin) and the Hypercorn master's start-up check
(api.edge.preflight) say the same thing for the same cause: a database with no tables
yet, a database that does not exist, a refused login, nothing answering.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from sqlalchemy.exc import DBAPIError

# Postgres's SQLSTATEs for the causes a first start meets.
UNDEFINED_TABLE = "42P01"
INVALID_CATALOG_NAME = "3D000"
LOGIN_REFUSED = ("28000", "28P01")  # invalid authorization, invalid password

MIGRATE = "run `alembic upgrade head` with this DATABASE_URL"


def server_of(database_url: str) -> str:
    """Host, port and database of `database_url`: never its password."""
    parts = urlsplit(database_url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def unreachable(database_url: str) -> str:
    """Nothing answered at DATABASE_URL."""
    return (
        f"Postgres is unreachable at {server_of(database_url)} (DATABASE_URL): start it, "
        "or point DATABASE_URL at a running server"
    )


def missing_tables(database_url: str, tables: list[str]) -> str:
    """The database answers, but the schema's tables are not there."""
    return (
        f"the database at {server_of(database_url)} lacks the tables {', '.join(tables)}: {MIGRATE}"
    )


def refusal(error: DBAPIError, database_url: str) -> str:
    """What Postgres's refusal `error` means, and what to do about it."""
    where = server_of(database_url)
    reason = str(error.orig).splitlines()[0] if error.orig else type(error).__name__
    code = getattr(error.orig, "sqlstate", None)
    if code == UNDEFINED_TABLE:
        return f"the database at {where} has no tables yet ({reason}): {MIGRATE}"
    if code == INVALID_CATALOG_NAME:
        name = unquote(urlsplit(database_url).path.lstrip("/"))
        return (
            f"Postgres at {where} has no database {name!r}: create it (`createdb {name}`) "
            f"and {MIGRATE}, or fix DATABASE_URL"
        )
    if code in LOGIN_REFUSED:
        return (
            f"Postgres at {where} refused the login ({reason}): fix DATABASE_URL's user or password"
        )
    return f"Postgres at {where} refused: {reason}"
