"""Whether the database holds the schema: the tables of the models, made by Alembic."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.errors import POSTGRES_UNAVAILABLE, StoreUnavailable
from db.models import Base

_MISSING = text(
    "SELECT name FROM unnest(CAST(:names AS text[])) AS name "
    "WHERE to_regclass(quote_ident(name)) IS NULL ORDER BY name"
)


async def missing_tables(engine: AsyncEngine) -> list[str]:
    """The models' tables the database lacks (every one before `alembic upgrade head`).

    Raises:
        StoreUnavailable: Postgres could not be reached.
        sqlalchemy.exc.DBAPIError: Postgres refused (no such database, a refused login).
    """
    try:
        async with engine.connect() as connection:
            result = await connection.execute(_MISSING, {"names": sorted(Base.metadata.tables)})
            return list(result.scalars())
    except POSTGRES_UNAVAILABLE:
        raise StoreUnavailable("postgres") from None
