"""The unit of work: one transaction with the repositories bound to it."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.audit import AuditEventRepository, NewEvent
from db.errors import POSTGRES_UNAVAILABLE, StoreUnavailable
from db.locks import AdvisoryLocks
from db.message_tokens import MessageTokenRepository
from db.mfa import MfaRepository
from db.outbox import OutboxRepository
from db.sessions import DeviceSessionRepository
from db.users import UserRepository


class Committed(Protocol):
    """Told the audit events a transaction wrote, once it committed (their log lines)."""

    def __call__(self, *events: NewEvent) -> None: ...


def unreported(*events: NewEvent) -> None:
    """Tells no one: for a database whose events nobody logs."""
    del events


class UnitOfWork:
    """One transaction with the repositories bound to it; rolled back unless committed.

    Raises:
        StoreUnavailable: Postgres could not be reached (on exit from the block).
    """

    users: UserRepository
    sessions: DeviceSessionRepository
    locks: AdvisoryLocks
    audit: AuditEventRepository
    mfa: MfaRepository
    message_tokens: MessageTokenRepository
    outbox: OutboxRepository

    def __init__(
        self, factory: async_sessionmaker[AsyncSession], committed: Committed = unreported
    ) -> None:
        self._factory = factory
        self._committed = committed
        self._recorded: list[NewEvent] = []

    async def __aenter__(self) -> Self:
        self.session = self._factory()
        self.users = UserRepository(self.session)
        # Every event its repositories write, by `record` or with a change, is reported.
        self.sessions = DeviceSessionRepository(self.session, self._recorded.append)
        self.locks = AdvisoryLocks(self.session)
        self.audit = AuditEventRepository(self.session, self._recorded.append)
        self.mfa = MfaRepository(self.session)
        self.message_tokens = MessageTokenRepository(self.session)
        self.outbox = OutboxRepository(self.session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.session.close()
        except POSTGRES_UNAVAILABLE:
            if exc is None:
                raise StoreUnavailable("postgres") from None
        if isinstance(exc, POSTGRES_UNAVAILABLE) or (
            isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
        ):
            raise StoreUnavailable("postgres") from exc

    async def record(self, *events: NewEvent) -> None:
        """Write audit events in this transaction; they are reported once it commits.

        So is an event a repository writes with its change (DeviceSessionRepository's
        rotate_refresh): the unit of work reports every event written in it.
        """
        for event in events:
            await self.audit.add(event)

    async def commit(self) -> None:
        """Commit the transaction, then report the events it recorded."""
        await self.session.commit()
        self._report()

    async def release(self) -> None:
        """End the transaction so no connection is held during slow work (password hashing).

        Rows already loaded stay usable; the next query starts a new transaction.
        """
        await self.session.commit()
        self._report()

    def _report(self) -> None:
        # Emptied in place: the repositories append to this very list.
        recorded = list(self._recorded)
        self._recorded.clear()
        if recorded:
            self._committed(*recorded)
