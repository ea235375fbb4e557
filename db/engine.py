"""The async engine, and Postgres as the services see it (units of work and plain reads)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from db.audit import AuditEventWriter, NewEvent
from db.emails import NormalisedEmail
from db.errors import POSTGRES_UNAVAILABLE, StoreUnavailable
from db.mfa import MfaReader
from db.sessions import Opening, driver_open
from db.unit_of_work import Committed, UnitOfWork, unreported
from db.users import Credentials, UserReader, driver_credentials

ASYNCPG_STATEMENT_CACHE_SIZE = 100

# asyncpg's connection, lent for a few statements, and how to drop it from the pool when
# it broke.
LentDriver = tuple[Any, Callable[[], Awaitable[Any]]]


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
        # A failed statement's message (logged with its traceback) never carries its
        # parameters: addresses, user agents, token ids, hashes.
        hide_parameters=True,
    )


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def create_session_factory(
    bind: AsyncEngine | AsyncConnection, *, savepoints: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded rows usable after commit.

    With `savepoints`, bound to a connection whose transaction someone else owns (a test's),
    each unit of work's commit becomes a savepoint of it.
    """
    if savepoints:
        return async_sessionmaker(
            bind=bind, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
    return async_sessionmaker(bind, expire_on_commit=False)


class Statements:
    """Single statements with no transaction around them (no BEGIN, no COMMIT or ROLLBACK):
    reads, and writes that are atomic on their own."""

    def __init__(self, connection: AsyncConnection) -> None:
        # The audit events written here, on their own or with a session they record.
        self.written: list[NewEvent] = []
        self.users = UserReader(connection)
        self.audit = AuditEventWriter(connection, self.written.append)
        self.mfa = MfaReader(connection)

    async def record(self, event: NewEvent) -> None:
        """Write an audit event on its own; reported once the statements are done."""
        await self.audit.add(event)


class DriverStatements:
    """A login's statements on the driver's own connection (db.driver_statements)."""

    def __init__(self, driver: Any) -> None:
        self._driver = driver
        # The audit events written here, with the session they record.
        self.written: list[NewEvent] = []

    async def credentials(self, email: NormalisedEmail) -> Credentials | None:
        """What a login checks of the user with this address, if there is one."""
        return await driver_credentials(self._driver, email)

    async def open_session(self, opening: Opening, event: NewEvent, user_version: int) -> bool:
        """Open the session and record `event` with it, if the user still exists, is not
        disabled and is at `user_version` (db.sessions.driver_open); whether it was."""
        opened = await driver_open(self._driver, opening, event, user_version)
        if opened:
            self.written.append(event)
        return opened


class Database:
    """Postgres for the services: a unit of work for transactions, `statements()` for one-offs."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        committed: Committed | None = None,
        *,
        lend_driver: Callable[[], AbstractAsyncContextManager[LentDriver]],
        pooled_transactions: bool = False,
    ) -> None:
        self._sessions = sessions
        self._connect = connect
        self._committed = committed or unreported
        self._pooled_transactions = pooled_transactions
        self._lend_driver = lend_driver

    def reporting_to(self, committed: Committed) -> Database:
        """This database, telling `committed` the audit events each transaction wrote."""
        return Database(
            self._sessions,
            self._connect,
            committed,
            pooled_transactions=self._pooled_transactions,
            lend_driver=self._lend_driver,
        )

    @classmethod
    def on_engine(cls, engine: AsyncEngine, *, pooled_transactions: bool = False) -> Database:
        """The database of a served worker: single statements on autocommit connections.

        `pooled_transactions`: behind a pooler in transaction mode (PgBouncer), outside a
        transaction each message of a statement may reach another server connection, where
        the statement it prepared does not exist: single statements then run in one.
        """
        lend_driver = functools.partial(_lend_from_pool, engine)
        if pooled_transactions:
            return cls(
                create_session_factory(engine),
                engine.begin,
                pooled_transactions=True,
                lend_driver=lend_driver,
            )
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        return cls(create_session_factory(engine), autocommit.connect, lend_driver=lend_driver)

    @classmethod
    def on_connection(cls, connection: AsyncConnection) -> Database:
        """Everything inside a transaction someone else owns and rolls back (tests)."""

        @asynccontextmanager
        async def borrowed() -> AsyncIterator[AsyncConnection]:
            yield connection

        return cls(
            create_session_factory(connection, savepoints=True),
            borrowed,
            lend_driver=functools.partial(_driver_under, borrowed),
        )

    def unit_of_work(self) -> UnitOfWork:
        """A transaction with the repositories, for one service call."""
        return UnitOfWork(self._sessions, self._committed)

    @asynccontextmanager
    async def statements(self) -> AsyncIterator[Statements]:
        """A connection for statements that need no transaction; the audit events they
        wrote are reported once it is given back (committed, behind a pooler too).

        Raises:
            StoreUnavailable: Postgres could not be reached.
        """
        with _postgres_errors():
            async with self._connect() as connection:
                statements = Statements(connection)
                yield statements
            if statements.written:
                self._committed(*statements.written)

    @asynccontextmanager
    async def driver_statements(self) -> AsyncIterator[DriverStatements]:
        """A login's statements on the driver's connection; the audit events they wrote are
        reported once it is given back, as `statements()` reports them.

        Raises:
            StoreUnavailable: Postgres could not be reached, or the connection broke.
        """
        async with self.driver_connection() as driver:
            statements = DriverStatements(driver)
            yield statements
        if statements.written:
            self._committed(*statements.written)

    @asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[Any]:
        """The driver's own (asyncpg) connection from the pool, for a fixed read that skips
        SQLAlchemy's execution layer: no BEGIN or COMMIT around it, except behind a pooler
        in transaction mode, where its two messages (prepare, execute) must reach one server
        connection (see `on_engine`).

        Raises:
            StoreUnavailable: Postgres could not be reached, or the connection broke.
        """
        with _postgres_errors():
            async with self._lend_driver() as (driver, invalidate):
                try:
                    if self._pooled_transactions:
                        async with driver.transaction():
                            yield driver
                    else:
                        yield driver
                # InternalClientError: a backend that was terminated while the
                # connection sat in the pool can leave asyncpg's protocol mid-state.
                except (
                    asyncpg.InterfaceError,
                    asyncpg.InternalClientError,
                    OSError,
                    TimeoutError,
                ):
                    await invalidate()
                    raise StoreUnavailable("postgres") from None
                except asyncpg.PostgresError:
                    # What SQLAlchemy counts as a disconnect: the driver closed it.
                    if not driver.is_closed():
                        raise
                    await invalidate()
                    raise StoreUnavailable("postgres") from None


@asynccontextmanager
async def _driver_under(
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
) -> AsyncIterator[LentDriver]:
    """The driver's connection under the AsyncConnection `connect` gives: a test's, which
    its other statements share."""
    async with connect() as connection:
        pooled = await connection.get_raw_connection()
        # SQLAlchemy's adapter runs one statement at a time on a connection under this lock;
        # a connection shared by concurrent requests (a test's borrowed one) must take turns
        # with it, or asyncpg refuses the second at once.
        async with pooled.dbapi_connection._execute_mutex:  # type: ignore[union-attr]
            yield pooled.driver_connection, connection.invalidate


@asynccontextmanager
async def _lend_from_pool(engine: AsyncEngine) -> AsyncIterator[LentDriver]:
    """The driver's connection checked out of the engine's pool alone: building and closing
    the Connection SQLAlchemy wraps around it (its events, its isolation level) was 9 % of
    a bearer login's instructions on the event loop (callgrind, in-process: 6.44 M a login
    through the Connection, 5.88 M without)."""
    pooled = await engine.raw_connection()
    try:
        yield pooled.driver_connection, functools.partial(greenlet_spawn, pooled.invalidate)
    finally:
        # An invalidated connection is already out of the pool: this only counts it back.
        await greenlet_spawn(pooled.close)


@contextmanager
def _postgres_errors() -> Iterator[None]:
    """Postgres out of reach, or a connection it dropped, as StoreUnavailable."""
    try:
        yield
    except POSTGRES_UNAVAILABLE:
        raise StoreUnavailable("postgres") from None
    except sa_exc.DBAPIError as error:
        if error.connection_invalidated:
            raise StoreUnavailable("postgres") from None
        raise
