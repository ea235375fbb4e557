"""The async engine, its session factory, and the unit of work that services use."""

from __future__ import annotations

from types import TracebackType
from typing import Self

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


def create_engine(
    url: str, *, pool_size: int, pool_timeout: float, application_name: str
) -> AsyncEngine:
    """An engine whose pool never grows past `pool_size` connections."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        connect_args={
            "server_settings": {"application_name": application_name},
            "timeout": pool_timeout,
        },
    )


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
