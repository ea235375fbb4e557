"""AdvisoryLocks: Postgres advisory locks that keep jobs from running twice at once."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

# One key for every purge of this database, whichever instance or command runs it.
PURGE_LOCK_KEY = int.from_bytes(b"authprge")
# One key for every sender of this database's outbox: one sender per cluster.
MAIL_LOCK_KEY = int.from_bytes(b"authmail")


class AdvisoryLocks:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def try_purge(self) -> bool:
        """Take the purge lock for the rest of this transaction; False if someone holds it.

        A transaction-level lock, released by commit or rollback, so it also works
        behind PgBouncer in transaction mode (a session-level lock would not).
        """
        query = select(func.pg_try_advisory_xact_lock(PURGE_LOCK_KEY))
        return bool(await self._session.scalar(query))

    async def try_mail(self) -> bool:
        """Take the outbox sender's lock for the rest of this transaction; False if held."""
        query = select(func.pg_try_advisory_xact_lock(MAIL_LOCK_KEY))
        return bool(await self._session.scalar(query))
