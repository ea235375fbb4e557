"""The async engine, its session factory, and the unit of work that services use."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any, Self

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db.errors import StoreUnavailable
from db.locks import AdvisoryLocks
from db.sessions import SessionRepository
from db.users import UserRepository

_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    OSError,
    TimeoutError,
)


ASYNCPG_STATEMENT_CACHE_SIZE = 100


def create_engine(
    url: str,
    *,
    pool_size: int,
    pool_timeout: float,
    application_name: str,
    statement_cache_size: int = ASYNCPG_STATEMENT_CACHE_SIZE,
) -> AsyncEngine:
    """An engine whose pool never grows past `pool_size` connections.

    `statement_cache_size=0` is for a pooler in transaction mode (PgBouncer before 1.21):
    each transaction may run on another server connection, where a statement prepared on
    the last one is unknown, or one of the same name already exists.
    """
    connect_args: dict[str, Any] = {
        "server_settings": {"application_name": application_name},
        "timeout": pool_timeout,
        # asyncpg's cache, then SQLAlchemy's own over it.
        "statement_cache_size": statement_cache_size,
        "prepared_statement_cache_size": statement_cache_size,
    }
    if statement_cache_size == 0:
        # asyncpg numbers its statements per connection; behind a pooler two client
        # connections would prepare the same name on one server connection.
        connect_args["prepared_statement_name_func"] = _unique_statement_name
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded rows usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


class UnitOfWork:
    """One transaction with the repositories bound to it; rolled back unless committed.

    Raises:
        StoreUnavailable: Postgres could not be reached (on exit from the block).
    """

    users: UserRepository
    sessions: SessionRepository
    locks: AdvisoryLocks

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory

    async def __aenter__(self) -> Self:
        self.session = self._factory()
        self.users = UserRepository(self.session)
        self.sessions = SessionRepository(self.session)
        self.locks = AdvisoryLocks(self.session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.session.close()
        except _UNAVAILABLE:
            if exc is None:
                raise StoreUnavailable("postgres") from None
        if isinstance(exc, _UNAVAILABLE) or (
            isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
        ):
            raise StoreUnavailable("postgres") from exc

    async def commit(self) -> None:
        """Commit the transaction."""
        await self.session.commit()

    async def release(self) -> None:
        """End the transaction so no connection is held during slow work (password hashing).

        Rows already loaded stay usable; the next query starts a new transaction.
        """
        await self.session.commit()
